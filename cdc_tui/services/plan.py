"""`cdc-tui plan`: the Step 0 DDL for the target, from the source catalog alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from cdc_tui.domain.spec import TableRef
from cdc_tui.errors import SourceError
from cdc_tui.pgconn import PgParams
from cdc_tui.pgerrors import short_reason
from cdc_tui.runner.mssql_target import load_mssql_plans
from cdc_tui.runner.steps import load_plans
from cdc_tui.services.context import AppContext
from cdc_tui.services.pipelines import numeric_policy
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.targets.mssql import ddl as mssql_ddl
from cdc_tui.targets.mssql.types import NumericPolicy
from cdc_tui.targets.postgres.ddl import TablePlan, plan_to_json, render_plan


@dataclass(frozen=True)
class MssqlPlanResult:
    """The T-SQL of Step 0 for a SQL Server target (batches separated by GO)."""

    plans: list[mssql_ddl.TablePlan]
    sql: str

    def to_json(self) -> dict[str, Any]:
        return {"target_kind": "mssql", **mssql_ddl.plan_to_json(self.plans)}


@contextmanager
def _reading_catalog(params: PgParams, name: str) -> Iterator[None]:
    """A source that cannot be reached becomes one sentence pointing at `cdc-tui check`."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise SourceError(
            f"Cannot read the source catalog of pipeline {name!r}: "
            f"{short_reason(exc, [params.password])}; run `cdc-tui check {name}` for details."
        ) from exc


def plan_mssql(
    params: PgParams,
    name: str,
    tables: list[TableRef],
    target_schema: str | None,
    policy: NumericPolicy,
) -> MssqlPlanResult:
    with _reading_catalog(params, name):
        pairs, _labels = load_mssql_plans(params, name, tables, target_schema, policy)
    plans = [p for _, p in pairs]
    return MssqlPlanResult(plans, mssql_ddl.render_script(plans))


@dataclass(frozen=True)
class PlanResult:
    plans: list[TablePlan]
    sql: str

    def to_json(self) -> dict[str, Any]:
        return plan_to_json(self.plans)


def plan_pipeline(ctx: AppContext, name: str) -> PlanResult | MssqlPlanResult:
    """Read the source catalog and render the target DDL; connects to no target."""
    pipeline = PipelineRepository(ctx.store).get(name)
    params = ctx.pg_params(pipeline.source, application_name="cdc-tui plan")
    tables = [t.table for t in pipeline.tables]
    if pipeline.target.kind == "mssql":
        return plan_mssql(params, name, tables, pipeline.target_schema, numeric_policy(pipeline))
    with _reading_catalog(params, name):
        pairs = load_plans(params, name, tables, pipeline.target_schema)
    plans = [p for _, p in pairs]
    return PlanResult(plans, render_plan(plans))
