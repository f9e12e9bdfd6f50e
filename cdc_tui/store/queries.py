"""Lookups the repositories share: finding and locking a pipeline row, the clock, row → record."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, Update, select
from sqlalchemy.orm import Session

from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import (
    CdcStatus,
    Engine,
    FullLoadStatus,
    Mode,
    PipelineStatus,
    TableState,
)
from cdc_tui.errors import NotFoundError
from cdc_tui.store.db import Clock
from cdc_tui.store.models import Connection, Pipeline, PipelineTable
from cdc_tui.store.records import (
    ConnectionRole,
    PipelineRecord,
    TableStateRecord,
)


def not_found(name: str) -> NotFoundError:
    """The error for a pipeline name that is not in the metadata DB."""
    return NotFoundError(
        f"Pipeline '{name}' does not exist; run `cdc-tui list` to see the pipelines."
    )


def now_from(clock: Clock) -> datetime:
    """Read `clock`, refusing naive datetimes so every stored time is unambiguous UTC."""
    now = clock()
    if now.tzinfo is None:
        raise ValueError("the store clock returned a naive datetime; it must be timezone-aware")
    return now


def lock_pipeline(session: Session, name: str, *, for_delete: bool = False) -> Pipeline:
    """Load pipeline `name`, row-locked on PostgreSQL until the transaction ends.

    SQLite ignores the clause: Store.begin() already holds the database write lock. FOR NO KEY
    UPDATE (not FOR UPDATE) lets concurrent inserts referencing the row proceed.
    """
    statement = select(Pipeline).where(Pipeline.name == name)
    statement = statement.with_for_update(key_share=not for_delete)
    pipeline = session.scalars(statement).one_or_none()
    if pipeline is None:
        raise not_found(name)
    return pipeline


def pipeline_id_of(session: Session, name: str) -> int:
    """The id of pipeline `name`, without locking it."""
    pipeline_id = session.scalar(select(Pipeline.id).where(Pipeline.name == name))
    if pipeline_id is None:
        raise not_found(name)
    return pipeline_id


def execute_dml(session: Session, statement: Update | Delete) -> int:
    """Run an UPDATE or DELETE and return how many rows it touched."""
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount


def connection_record(row: Connection) -> ConnectionRef:
    return ConnectionRef(
        url=row.url,
        kind=row.kind,
        name=row.name,
        password_env=row.password_env,
        password_file=row.password_file,
    )


def table_record(row: PipelineTable) -> TableStateRecord:
    return TableStateRecord(
        table=TableRef(row.schema_name, row.table_name),
        state=TableState(row.state),
        rows_copied=row.rows_copied,
        rows_estimated=row.rows_estimated,
        started_at=row.started_at,
        completed_at=row.completed_at,
        updated_at=row.updated_at,
        last_error=row.last_error,
        resync_lsn=row.resync_lsn,
    )


def pipeline_record(row: Pipeline) -> PipelineRecord:
    """Build the record while the session is open (connections and tables load lazily)."""
    by_role = {c.role: connection_record(c) for c in row.connections}
    return PipelineRecord(
        id=row.id,
        name=row.name,
        engine=Engine(row.engine),
        mode=Mode(row.mode),
        target_schema=row.target_schema,
        connect_url=row.connect_url,
        slot_name=row.slot_name,
        publication_name=row.publication_name,
        generation=row.generation,
        status=PipelineStatus(row.status),
        full_load_status=FullLoadStatus(row.full_load_status),
        cdc_status=CdcStatus(row.cdc_status),
        full_load_lsn=row.full_load_lsn,
        full_load_started_at=row.full_load_started_at,
        full_load_completed_at=row.full_load_completed_at,
        applied_lsn=row.applied_lsn,
        changes_applied=row.changes_applied,
        last_applied_at=row.last_applied_at,
        lag_seconds=row.lag_seconds,
        last_error=row.last_error,
        stop_requested_at=row.stop_requested_at,
        replica_identity_changes=row.replica_identity_changes,
        stalled_since=row.stalled_since,
        numeric_policy=row.numeric_policy,
        created_at=row.created_at,
        updated_at=row.updated_at,
        source=by_role[ConnectionRole.SOURCE],
        target=by_role[ConnectionRole.TARGET],
        tables=tuple(table_record(t) for t in row.tables),
    )
