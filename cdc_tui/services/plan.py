"""`cdc-tui plan`: the Step 0 DDL for the target, from the source catalog alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from cdc_tui.domain.spec import TableRef
from cdc_tui.errors import OperationError, SourceError
from cdc_tui.pgconn import PgParams, connect
from cdc_tui.pgerrors import short_reason
from cdc_tui.runner.steps import load_plans
from cdc_tui.services.context import AppContext
from cdc_tui.services.pipelines import numeric_policy
from cdc_tui.sources.postgres.catalog import read_tables
from cdc_tui.sources.postgres.enums import read_enum_labels
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


def plan_mssql(
    params: PgParams,
    name: str,
    tables: list[TableRef],
    target_schema: str | None,
    policy: NumericPolicy,
) -> MssqlPlanResult:
    try:
        with connect(params) as conn:
            defs = read_tables(conn, tables)
            labels = read_enum_labels(conn, [d for d in defs.values() if d is not None])
    except psycopg.OperationalError as exc:
        raise SourceError(
            f"Cannot read the source catalog of pipeline {name!r}: "
            f"{short_reason(exc, [params.password])}; run `cdc-tui check {name}` for details."
        ) from exc
    missing = [str(ref) for ref, d in defs.items() if d is None]
    if missing:
        raise OperationError(
            f"Table(s) {', '.join(missing)} of pipeline {name!r} do not exist on the source; "
            "restore them or edit the pipeline's tables."
        )
    plans = mssql_ddl.plan_tables(
        [d for d in defs.values() if d is not None],
        target_schema=target_schema, numeric_policy=policy, enum_labels=labels,
    )  # fmt: skip
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
    try:
        pairs = load_plans(params, name, tables, pipeline.target_schema)
    except psycopg.OperationalError as exc:
        raise SourceError(
            f"Cannot read the source catalog of pipeline {name!r}: "
            f"{short_reason(exc, [params.password])}; run `cdc-tui check {name}` for details."
        ) from exc
    plans = [p for _, p in pairs]
    return PlanResult(plans, render_plan(plans))
