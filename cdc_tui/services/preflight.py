"""`cdc-tui check`: preflight of a stored pipeline's source and target, reading only."""

from __future__ import annotations

from cdc_tui.domain.findings import Finding, Severity
from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import CdcStatus, Engine, FullLoadStatus
from cdc_tui.errors import CdcTuiError
from cdc_tui.pgconn import PgParams
from cdc_tui.services.context import AppContext
from cdc_tui.services.pipelines import numeric_policy
from cdc_tui.services.plan import plan_mssql
from cdc_tui.sources.postgres.preflight import run_source_preflight
from cdc_tui.store.records import PipelineRecord
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.targets.mssql.preflight import run_mssql_preflight
from cdc_tui.targets.mssql.types import NumericPolicy
from cdc_tui.targets.postgres.preflight import run_target_preflight


def has_started(pipeline: PipelineRecord) -> bool:
    """The pipeline has run before, so a slot of its name is its own, not a stranger's."""
    return (
        pipeline.full_load_status not in (FullLoadStatus.NOT_STARTED, FullLoadStatus.SKIPPED)
        or pipeline.cdc_status != CdcStatus.NOT_STARTED
    )


def check_pipeline(ctx: AppContext, name: str) -> tuple[PipelineRecord, list[Finding]]:
    """Run every source and target rule; a failing rule is a finding, never an exception."""
    pipeline = PipelineRepository(ctx.store).get(name)
    tables = [t.table for t in pipeline.tables]
    source = ctx.pg_params(pipeline.source, application_name="cdc-tui check")
    findings = run_source_preflight(
        source, tables, pipeline=pipeline.name, mode=str(pipeline.mode),
        owns_slot=has_started(pipeline),
    )  # fmt: skip
    if pipeline.target.kind == "mssql":
        findings += _mssql_findings(ctx, pipeline, tables)
    else:
        target = ctx.pg_params(pipeline.target, application_name="cdc-tui check")
        findings += run_target_preflight(
            target, target_schema=pipeline.target_schema, tables=tables
        )
    if pipeline.engine == Engine.KAFKA_CONNECT:
        from cdc_tui.services.connect_preflight import ConnectSubject, run_connect_preflight

        findings += run_connect_preflight(ctx, ConnectSubject.of(pipeline))
    return pipeline, findings


def _mssql_findings(
    ctx: AppContext, pipeline: PipelineRecord, tables: list[TableRef]
) -> list[Finding]:
    params = ctx.mssql_params(pipeline.target, application_name="cdc-tui check")
    findings = run_mssql_preflight(
        params, target_schema=pipeline.target_schema, tables=tables,
        identity_insert=pipeline.engine == Engine.KAFKA_CONNECT,
    )  # fmt: skip
    source = ctx.pg_params(pipeline.source, application_name="cdc-tui check")
    plan = mssql_plan_finding(source, pipeline.name, tables, pipeline.target_schema,
                              numeric_policy(pipeline))  # fmt: skip
    return [*findings, plan]


def mssql_plan_finding(
    source: PgParams,
    name: str,
    tables: list[TableRef],
    target_schema: str | None,
    policy: NumericPolicy,
) -> Finding:
    """Step 0's T-SQL planned now, so a column SQL Server cannot hold is found before start."""
    try:
        result = plan_mssql(source, name, tables, target_schema, policy)
    except CdcTuiError as exc:
        fix = f"see `cdc-tui plan {name}` and docs/sqlserver.md"
        return Finding("target.plan", Severity.ERROR, "target", exc.message, fix)
    return Finding("target.plan", Severity.OK, "target",
                   f"Step 0 maps {len(result.plans)} table(s) to SQL Server with numeric policy "
                   f"{policy}; `cdc-tui plan {name}` prints the T-SQL.")  # fmt: skip
