"""`cdc-tui plan`: the Step 0 DDL for the target, from the source catalog alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from cdc_tui.errors import OperationError, SourceError
from cdc_tui.pgconn import connect
from cdc_tui.pgerrors import short_reason
from cdc_tui.services.context import AppContext
from cdc_tui.sources.postgres.catalog import read_tables
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.targets.postgres.ddl import TablePlan, plan_tables, plan_to_json, render_plan


@dataclass(frozen=True)
class PlanResult:
    plans: list[TablePlan]
    sql: str

    def to_json(self) -> dict[str, Any]:
        return plan_to_json(self.plans)


def plan_pipeline(ctx: AppContext, name: str) -> PlanResult:
    """Read the source catalog and render the target DDL; connects to no target."""
    pipeline = PipelineRepository(ctx.store).get(name)
    refs = [t.table for t in pipeline.tables]
    params = ctx.pg_params(pipeline.source, application_name="cdc-tui plan")
    try:
        with connect(params) as conn:
            defs = read_tables(conn, refs)
    except psycopg.OperationalError as exc:
        raise SourceError(
            f"Cannot read the source catalog of pipeline {name!r}: "
            f"{short_reason(exc, [params.password])}; "
            f"run `cdc-tui check {name}` for details."
        ) from exc
    missing = [str(ref) for ref, d in defs.items() if d is None]
    if missing:
        raise OperationError(
            f"Table(s) {', '.join(missing)} of pipeline {name!r} do not exist on the source; "
            "create them or recreate the pipeline without them."
        )
    plans = plan_tables(
        [d for d in defs.values() if d is not None], target_schema=pipeline.target_schema
    )
    return PlanResult(plans, render_plan(plans))
