"""`cdc-tui validate`: row counts and checksums of every table, source against target."""

from __future__ import annotations

import time

import psycopg

from cdc_tui.engines.embedded.position import read_position
from cdc_tui.pgconn import connect
from cdc_tui.runner.steps import load_plans
from cdc_tui.services.context import AppContext
from cdc_tui.services.control import live_runner_pid
from cdc_tui.services.pipelines import refuse_mssql_verb
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.validation import ValidationReport, validate_tables

CATCH_UP_TIMEOUT_S = 60.0


def validate_pipeline(ctx: AppContext, name: str) -> ValidationReport:
    """Compare each table at a consistent point: when a runner streams, the target is first
    allowed to catch up with the source's position, and differing ranges are re-checked."""
    repo = PipelineRepository(ctx.store)
    pipeline = repo.get(name)
    refuse_mssql_verb(pipeline, "validate")
    source = ctx.pg_params(pipeline.source, "cdc-tui validate")
    target = ctx.pg_params(pipeline.target, "cdc-tui validate")
    tables = [t.table for t in pipeline.tables]
    plans = load_plans(source, name, tables, pipeline.target_schema)
    streaming = live_runner_pid(ctx, name) is not None

    def wait_for_target(lsn: int) -> bool:
        if not streaming:
            return True  # a stopped pipeline's target will not move: compare it as it is
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        with connect(target) as conn:
            while time.monotonic() < deadline:
                try:
                    applied = read_position(conn, name)
                except psycopg.errors.UndefinedTable:
                    return False
                if applied is not None and applied >= lsn:
                    return True
                time.sleep(0.2)
        return False

    return validate_tables(source, target, plans, wait_for_target=wait_for_target)
