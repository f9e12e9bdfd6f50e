"""`cdc-tui plan`: the Step 0 DDL for the target, from the source catalog alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from cdc_tui.errors import SourceError
from cdc_tui.pgerrors import short_reason
from cdc_tui.runner.steps import load_plans
from cdc_tui.services.context import AppContext
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.targets.postgres.ddl import TablePlan, plan_to_json, render_plan


@dataclass(frozen=True)
class PlanResult:
    plans: list[TablePlan]
    sql: str

    def to_json(self) -> dict[str, Any]:
        return plan_to_json(self.plans)


def plan_pipeline(ctx: AppContext, name: str) -> PlanResult:
    """Read the source catalog and render the target DDL; connects to no target."""
    pipeline = PipelineRepository(ctx.store).get(name)
    params = ctx.pg_params(pipeline.source, application_name="cdc-tui plan")
    tables = [t.table for t in pipeline.tables]
    try:
        pairs = load_plans(params, name, tables, pipeline.target_schema)
    except psycopg.OperationalError as exc:
        raise SourceError(
            f"Cannot read the source catalog of pipeline {name!r}: "
            f"{short_reason(exc, [params.password])}; run `cdc-tui check {name}` for details."
        ) from exc
    plans = [p for _, p in pairs]
    return PlanResult(plans, render_plan(plans))
