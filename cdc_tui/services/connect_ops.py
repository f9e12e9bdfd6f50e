"""Operator actions on the kafka_connect engine's objects: connectors, offsets, source helpers,
and the per-table resync through a Debezium incremental snapshot."""

from __future__ import annotations

import logging

import httpx
import psycopg
from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import CdcStatus, Engine, TableState
from cdc_tui.engines.kafka_connect.endpoints import remove_secrets
from cdc_tui.engines.kafka_connect.lifecycle import remove_connectors, stop_connectors
from cdc_tui.engines.kafka_connect.naming import ConnectNames, heartbeat_table
from cdc_tui.engines.kafka_connect.rest import ConnectClient
from cdc_tui.errors import OperationError, SourceError, TargetError, UsageError
from cdc_tui.pgconn import connect
from cdc_tui.pgerrors import short_reason
from cdc_tui.services.context import AppContext
from cdc_tui.services.mssql_ops import truncate_mssql_table
from cdc_tui.sources.postgres.debezium_objects import (
    decode_changes,
    drop_helper_tables,
    request_incremental_snapshot,
    restore_identity,
)
from cdc_tui.store.records import EventKind, PipelineRecord
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.targets.postgres.housekeeping import TABLE_EXISTS, target_ref

log = logging.getLogger(__name__)


def is_kafka(pipeline: PipelineRecord) -> bool:
    return pipeline.engine == Engine.KAFKA_CONNECT


def names_of(pipeline: PipelineRecord) -> ConnectNames:
    """The one place a pipeline's connector, topic and generation names come from."""
    return ConnectNames.of(pipeline.name, pipeline.created_at, pipeline.generation)


def client_for(pipeline: PipelineRecord, timeout: float | None = None) -> ConnectClient:
    """A REST client on the pipeline's Connect URL (the runner passes its request timeout)."""
    if not pipeline.connect_url:
        raise UsageError(
            f"Pipeline {pipeline.name!r} has no Kafka Connect URL; set one with "
            f"`cdc-tui pipeline edit {pipeline.name} --connect-url URL`."
        )
    if timeout is None:
        return ConnectClient(pipeline.connect_url)
    return ConnectClient(pipeline.connect_url, timeout=httpx.Timeout(timeout, connect=3.0))


def stop_pipeline_connectors(pipeline: PipelineRecord) -> list[str]:
    """PUT /stop on both connectors (idempotent; offsets stay so start resumes them)."""
    with client_for(pipeline) as client:
        return stop_connectors(client, names_of(pipeline).connectors)


def remove_pipeline_connectors(pipeline: PipelineRecord) -> list[str]:
    """Delete both connectors and their offsets (resync and drop)."""
    with client_for(pipeline) as client:
        return remove_connectors(client, names_of(pipeline).connectors)


def clean_kafka_source(ctx: AppContext, pipeline: PipelineRecord) -> list[str]:
    """Drop the signal and heartbeat tables and put back the replica identities we changed."""
    params = ctx.pg_params(pipeline.source, application_name="cdc-tui drop")
    done: list[str] = []
    try:
        with connect(params) as conn:
            done += drop_helper_tables(conn, pipeline.name)
            for change in decode_changes(pipeline.replica_identity_changes):
                try:
                    with conn.transaction():
                        restore_identity(conn, change)
                    done.append(f"restored the replica identity of {change.table}")
                except psycopg.errors.UndefinedTable:
                    log.info("%s no longer exists; its replica identity needs no restoring",
                             change.table)  # fmt: skip
    except psycopg.Error as exc:
        raise SourceError(
            f"Cannot clean up the source of pipeline {pipeline.name!r}: "
            f"{short_reason(exc, [params.password])}; fix access and run the command again."
        ) from exc
    if remove_secrets(ctx.settings, pipeline.name):
        done.append("removed its Connect secrets file")
    return done


def drop_target_heartbeat(conn: psycopg.Connection[object], pipeline: PipelineRecord) -> bool:
    ref = target_ref(pipeline, heartbeat_table(pipeline.name))
    if conn.execute(TABLE_EXISTS, (ref.schema, ref.name)).fetchone() is None:
        return False
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(ref.schema, ref.name)))
    return True


def truncate_pg_table(ctx: AppContext, pipeline: PipelineRecord, table: TableRef) -> TableRef:
    """Empty one PostgreSQL target table (a table resync); its name."""
    target = target_ref(pipeline, table)
    tparams = ctx.pg_params(pipeline.target, application_name="cdc-tui resync")
    try:
        with connect(tparams) as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(target.schema, target.name)))
    except psycopg.Error as exc:
        raise TargetError(
            f"Cannot truncate target table {target} of pipeline {pipeline.name!r}: "
            f"{short_reason(exc, [tparams.password])}; fix access and run the resync again."
        ) from exc
    return target


def next_generation(ctx: AppContext, pipeline: PipelineRecord) -> int:
    """A resync starts new connectors, so the old offsets can never be resumed."""
    generation = pipeline.generation + 1
    PipelineRepository(ctx.store).update(pipeline.name, generation=generation)
    return generation


def resync_table(ctx: AppContext, pipeline: PipelineRecord, table: TableRef) -> list[str]:
    """Empty the target table, then ask Debezium for an incremental snapshot of it while the
    other tables stream; the runner marks the table COMPLETED when the snapshot ends."""
    name = pipeline.name
    if table not in {t.table for t in pipeline.tables}:
        raise UsageError(
            f"Table {table} is not part of pipeline {name!r}; see `cdc-tui status {name}`."
        )
    if pipeline.cdc_status != CdcStatus.RUNNING:
        raise OperationError(
            f"Pipeline {name!r} is not streaming (CDC is {pipeline.cdc_status}); a table resync "
            f"runs through the source connector: `cdc-tui start {name}` first."
        )
    repo = PipelineRepository(ctx.store)
    if pipeline.target.kind == "mssql":
        target = truncate_mssql_table(ctx, pipeline, table)
    else:
        target = str(truncate_pg_table(ctx, pipeline, table))
    reason = f"resync of {table} requested"
    current = next(t for t in pipeline.tables if t.table == table)
    if current.state != TableState.PENDING:
        repo.transition_table(name, table, TableState.PENDING, reason=reason, actor=ctx.actor)
    repo.transition_table(name, table, TableState.COPYING, reason=reason, actor=ctx.actor)
    sparams = ctx.pg_params(pipeline.source, application_name="cdc-tui resync")
    try:
        with connect(sparams) as conn:
            signal_id, lsn = request_incremental_snapshot(conn, name, table)
    except psycopg.Error as exc:
        repo.transition_table(name, table, TableState.FAILED, reason="signal refused",
                              actor=ctx.actor, error=str(exc))  # fmt: skip
        raise SourceError(
            f"Cannot signal the incremental snapshot of {table} for pipeline {name!r}: "
            f"{short_reason(exc, [sparams.password])}; the target table was emptied: fix the "
            "cause and run the resync again."
        ) from exc
    repo.set_table_resync_lsn(name, table, lsn)
    done = [
        f"truncated target table {target}",
        f"requested an incremental snapshot of {table} (signal {signal_id}, committed by {lsn})",
    ]
    repo.record_event(
        name, kind=EventKind.ACTION, reason="resync: " + "; ".join(done), actor=ctx.actor
    )
    return done
