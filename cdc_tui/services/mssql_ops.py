"""resync and drop on a SQL Server target: empty its tables, forget the applied position."""

from __future__ import annotations

import logging

from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import Engine
from cdc_tui.engines.kafka_connect.naming import heartbeat_table
from cdc_tui.errors import TargetError
from cdc_tui.services.context import AppContext
from cdc_tui.store.records import PipelineRecord
from cdc_tui.targets.mssql.admin import drop_table, forget_position, target_name, truncate_tables
from cdc_tui.targets.mssql.connection import connect
from cdc_tui.targets.mssql.server_errors import DRIVER_ERRORS, describe_mssql_error

log = logging.getLogger(__name__)


def empty_mssql_target(ctx: AppContext, pipeline: PipelineRecord) -> None:
    """TRUNCATE the pipeline's target tables and delete its position, in one transaction."""
    params = ctx.mssql_params(pipeline.target, application_name="cdc-tui resync")
    try:
        conn = connect(params)
        try:
            cursor = conn.cursor()
            truncate_tables(cursor, (t.table for t in pipeline.tables), pipeline.target_schema)
            forget_position(cursor, pipeline.name)
            conn.commit()
        finally:
            conn.close()
    except DRIVER_ERRORS as exc:
        raise TargetError(
            f"Cannot empty the SQL Server target tables of pipeline {pipeline.name!r} on "
            f"{params.display}: {describe_mssql_error(exc, params.password)}; fix access and "
            "run resync again."
        ) from exc


def truncate_mssql_table(ctx: AppContext, pipeline: PipelineRecord, table: TableRef) -> str:
    """Empty one target table (a kafka_connect table resync); its bracketed name."""
    params = ctx.mssql_params(pipeline.target, application_name="cdc-tui resync")
    name = target_name(table, pipeline.target_schema)
    try:
        conn = connect(params)
        try:
            truncate_tables(conn.cursor(), [table], pipeline.target_schema)
            conn.commit()
        finally:
            conn.close()
    except DRIVER_ERRORS as exc:
        raise TargetError(
            f"Cannot truncate target table {name} of pipeline {pipeline.name!r}: "
            f"{describe_mssql_error(exc, params.password)}; fix access and run the resync again."
        ) from exc
    return name


def forget_mssql_position(ctx: AppContext, pipeline: PipelineRecord) -> list[str]:
    """Delete the position row (and kafka_connect's heartbeat table); an unreachable target is
    reported, not fatal, as for PostgreSQL."""
    params = ctx.mssql_params(pipeline.target, application_name="cdc-tui drop")
    done = []
    try:
        conn = connect(params)
        try:
            cursor = conn.cursor()
            forget_position(cursor, pipeline.name)
            if pipeline.engine == Engine.KAFKA_CONNECT:
                beat = target_name(heartbeat_table(pipeline.name), pipeline.target_schema)
                if drop_table(cursor, beat):
                    done.append("dropped the target heartbeat table")
            conn.commit()
        finally:
            conn.close()
    except DRIVER_ERRORS as exc:
        log.warning(
            "could not forget the SQL Server position of %s: %s",
            pipeline.name,
            describe_mssql_error(exc, params.password),
        )
        return ["target unreachable: its [cdc_tui].[applied_position] row was left"]
    return done
