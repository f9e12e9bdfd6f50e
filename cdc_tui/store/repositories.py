"""Pipelines in the metadata DB: creation, status transitions, progress, events and logs."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import Select, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.domain.spec import (
    TableRef,
    publication_name_for,
    slot_name_for,
    validate_pipeline_name,
)
from cdc_tui.domain.status import (
    ENUM_OF,
    CdcStatus,
    Engine,
    Mode,
    PipelineStatus,
    StatusField,
    TableState,
    check_transition,
    initial_full_load_status,
)
from cdc_tui.errors import NotFoundError, UsageError
from cdc_tui.store.db import Clock, Store
from cdc_tui.store.leases import LeaseRepository
from cdc_tui.store.logs import StepLogRepository
from cdc_tui.store.models import Connection, Event, Pipeline, PipelineTable
from cdc_tui.store.queries import execute_dml, lock_pipeline, not_found, now_from, pipeline_record
from cdc_tui.store.records import (
    ConnectionRole,
    EventKind,
    EventRecord,
    LogRecord,
    PipelineRecord,
)

__all__ = ["LeaseRepository", "PipelineRepository", "StepLogRepository"]

PIPELINE_STATUS_FIELDS = frozenset(
    {StatusField.STATUS, StatusField.FULL_LOAD_STATUS, StatusField.CDC_STATUS}
)
# Columns update() may set; status columns change only through transition().
UPDATABLE_FIELDS = frozenset(
    {
        "target_schema",
        "connect_url",
        "generation",
        "full_load_lsn",
        "full_load_started_at",
        "full_load_completed_at",
        "applied_lsn",
        "changes_applied",
        "last_applied_at",
        "lag_seconds",
        "last_error",
        "stop_requested_at",
        "replica_identity_changes",
        "stalled_since",
        "numeric_policy",
    }
)


class PipelineRepository:
    """Every read and write of pipelines; each public method is one transaction."""

    def __init__(self, store: Store, *, clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock or store.clock
        self._logs = StepLogRepository(store, clock=self._clock)

    def create(
        self,
        *,
        name: str,
        engine: Engine,
        mode: Mode,
        source: ConnectionRef,
        target: ConnectionRef,
        tables: Sequence[TableRef],
        target_schema: str | None,
        connect_url: str | None,
        actor: str,
        numeric_policy: str | None = None,
    ) -> PipelineRecord:
        """Insert a STOPPED pipeline with its connections, PENDING tables and a created event."""
        validate_pipeline_name(name)
        _check_connection(source, ConnectionRole.SOURCE)
        _check_connection(target, ConnectionRole.TARGET)
        _check_tables(tables)
        now = now_from(self._clock)
        mode = Mode(mode)
        pipeline = Pipeline(
            name=name,
            engine=Engine(engine).value,
            mode=mode.value,
            target_schema=target_schema,
            connect_url=connect_url,
            numeric_policy=numeric_policy,
            slot_name=slot_name_for(name),
            publication_name=publication_name_for(name),
            generation=1,
            status=PipelineStatus.STOPPED.value,
            full_load_status=initial_full_load_status(mode).value,
            cdc_status=CdcStatus.NOT_STARTED.value,
            changes_applied=0,
            created_at=now,
            updated_at=now,
        )
        pipeline.connections = [
            _connection_row(source, ConnectionRole.SOURCE),
            _connection_row(target, ConnectionRole.TARGET),
        ]
        pipeline.tables = [_table_row(position, ref, now) for position, ref in enumerate(tables)]
        try:
            with self._store.begin() as session:
                session.add(pipeline)
                session.flush()
                _add_event(session, pipeline, now, EventKind.ACTION, "created", actor, "created")
                return pipeline_record(pipeline)
        except IntegrityError as e:
            raise UsageError(
                f"Pipeline '{name}' already exists; choose another name or drop it first with "
                f"`cdc-tui drop {name}`."
            ) from e

    def replace_spec(
        self,
        name: str,
        *,
        mode: Mode,
        source: ConnectionRef,
        target: ConnectionRef,
        tables: Sequence[TableRef],
        target_schema: str | None,
        reason: str,
        actor: str,
    ) -> PipelineRecord:
        """Store an edited pipeline's settings in one transaction, with one event saying why.

        Kept tables keep their rows (state and progress); new ones are PENDING; dropped ones
        are forgotten. A mode change moves the initial full load status with it (only a
        pipeline that never ran may change mode here: the caller resyncs the others).
        """
        _check_connection(source, ConnectionRole.SOURCE)
        _check_connection(target, ConnectionRole.TARGET)
        _check_tables(tables)
        with self._store.begin() as session:
            pipeline = lock_pipeline(session, name)
            now = now_from(self._clock)
            for conn in pipeline.connections:
                ref = source if conn.role == ConnectionRole.SOURCE.value else target
                conn.name, conn.url, conn.kind = ref.name, ref.url, ref.kind
                conn.password_env, conn.password_file = ref.password_env, ref.password_file
            kept = {(row.schema_name, row.table_name): row for row in pipeline.tables}
            wanted = {(t.schema, t.name) for t in tables}
            for key, row in kept.items():
                if key not in wanted:
                    session.delete(row)
            for position, table in enumerate(tables):
                existing = kept.get((table.schema, table.name))
                if existing is None:
                    session.add(_table_row(position, table, now, pipeline_id=pipeline.id))
                else:
                    existing.position = position
            old_mode = Mode(pipeline.mode)
            if Mode(mode) != old_mode:
                pipeline.mode = Mode(mode).value
                before, after = pipeline.full_load_status, initial_full_load_status(mode).value
                if before != after:
                    pipeline.full_load_status = after
                    _add_event(
                        session, pipeline, now, EventKind.TRANSITION, reason, actor, after,
                        field=StatusField.FULL_LOAD_STATUS.value, from_value=before,
                    )  # fmt: skip
            pipeline.target_schema = target_schema
            pipeline.updated_at = now
            _add_event(session, pipeline, now, EventKind.ACTION, reason, actor, "edited")
        return self.get(name)

    def find(self, name: str) -> PipelineRecord | None:
        """The pipeline called `name`, or None."""
        statement = _with_children(select(Pipeline).where(Pipeline.name == name))
        with self._store.session() as session:
            row = session.scalars(statement).one_or_none()
            return None if row is None else pipeline_record(row)

    def get(self, name: str) -> PipelineRecord:
        """The pipeline called `name`; NotFoundError when there is none."""
        record = self.find(name)
        if record is None:
            raise not_found(name)
        return record

    def list(self) -> builtins.list[PipelineRecord]:
        """Every pipeline ordered by name, in three queries whatever their number."""
        statement = _with_children(select(Pipeline).order_by(Pipeline.name))
        with self._store.session() as session:
            return [pipeline_record(row) for row in session.scalars(statement)]

    def delete(self, name: str, *, actor: str, reason: str) -> None:
        """Remove the pipeline with its connections, tables, logs and lease; keep its events."""
        with self._store.begin() as session:
            pipeline = lock_pipeline(session, name, for_delete=True)
            now = now_from(self._clock)
            _add_event(session, pipeline, now, EventKind.ACTION, reason, actor, "dropped")
            session.flush()
            # The database cascades to the children and sets events.pipeline_id to NULL.
            session.execute(
                delete(Pipeline).where(Pipeline.id == pipeline.id),
                execution_options={"synchronize_session": False},
            )
            session.expunge_all()

    def transition(
        self,
        name: str,
        field: StatusField,
        new: str,
        *,
        reason: str,
        actor: str,
        error: str | None = None,
    ) -> PipelineRecord:
        """Move one status column to `new` and record the event, in one locked transaction.

        Raises IllegalTransitionError (writing nothing) when TRANSITIONS forbids the move; a
        move to the current value writes nothing. `error`, when given, becomes `last_error`.
        """
        if field not in PIPELINE_STATUS_FIELDS:
            raise ValueError(f"{field} is not a pipeline status column; use transition_table()")
        with self._store.begin() as session:
            pipeline = lock_pipeline(session, name)
            current: str = getattr(pipeline, field.value)
            if current != new:
                check_transition(field, current, new)
                now = now_from(self._clock)
                setattr(pipeline, field.value, ENUM_OF[field](new).value)
                pipeline.updated_at = now
                if error is not None:
                    pipeline.last_error = error
                _add_event(
                    session, pipeline, now, EventKind.TRANSITION, reason, actor,
                    ENUM_OF[field](new).value, field=field.value, from_value=current,
                )  # fmt: skip
            return pipeline_record(pipeline)

    def transition_table(
        self,
        name: str,
        table: TableRef,
        new: TableState,
        *,
        reason: str,
        actor: str,
        error: str | None = None,
    ) -> PipelineRecord:
        """Move one table's copy state, with the same guarantees as transition()."""
        with self._store.begin() as session:
            pipeline = lock_pipeline(session, name)
            row = _table_of(session, pipeline, table)
            current = row.state
            if current != new:
                check_transition(StatusField.TABLE_STATE, current, new)
                now = now_from(self._clock)
                _apply_table_state(row, TableState(new), now, error)
                pipeline.updated_at = now
                _add_event(
                    session, pipeline, now, EventKind.TRANSITION, reason, actor, row.state,
                    field=StatusField.TABLE_STATE.value, from_value=current, table=str(table),
                )  # fmt: skip
            return pipeline_record(pipeline)

    def update(self, name: str, /, **fields: object) -> None:
        """Set non-status columns (positions, counters, timestamps, last_error) and updated_at."""
        status = fields.keys() & {f.value for f in PIPELINE_STATUS_FIELDS}
        if status:
            raise ValueError(f"{sorted(status)} must change through transition(), not update()")
        unknown = fields.keys() - UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"update() cannot set {sorted(unknown)}")
        naive = sorted(k for k, v in fields.items() if isinstance(v, datetime) and v.tzinfo is None)
        if naive:
            raise ValueError(f"{naive} must be timezone-aware datetimes, not naive ones")
        statement = (
            update(Pipeline)
            .where(Pipeline.name == name)
            .values(**fields, updated_at=now_from(self._clock))
        )
        with self._store.begin() as session:
            if execute_dml(session, statement) != 1:
                raise not_found(name)

    def update_table_progress(
        self, name: str, table: TableRef, *, rows_copied: int, rows_estimated: int | None
    ) -> None:
        """Record how far the copy of `table` has got."""
        pipeline_id = select(Pipeline.id).where(Pipeline.name == name).scalar_subquery()
        statement = (
            update(PipelineTable)
            .where(PipelineTable.pipeline_id == pipeline_id)
            .where(PipelineTable.schema_name == table.schema)
            .where(PipelineTable.table_name == table.name)
            .values(
                rows_copied=rows_copied,
                rows_estimated=rows_estimated,
                updated_at=now_from(self._clock),
            )
        )
        with self._store.begin() as session:
            if execute_dml(session, statement) != 1:
                _table_of(session, lock_pipeline(session, name), table)

    def set_table_resync_lsn(self, name: str, table: TableRef, lsn: str | None) -> None:
        """Remember (or forget) where a table's incremental-snapshot resync was requested."""
        pipeline_id = select(Pipeline.id).where(Pipeline.name == name).scalar_subquery()
        statement = (
            update(PipelineTable)
            .where(PipelineTable.pipeline_id == pipeline_id)
            .where(PipelineTable.schema_name == table.schema)
            .where(PipelineTable.table_name == table.name)
            .values(resync_lsn=lsn, updated_at=now_from(self._clock))
        )
        with self._store.begin() as session:
            if execute_dml(session, statement) != 1:
                _table_of(session, lock_pipeline(session, name), table)

    def record_event(
        self, name: str, *, kind: EventKind, reason: str, actor: str, action: str | None = None
    ) -> EventRecord:
        """Append an operator action, error or info to the history; `action` names the verb."""
        if EventKind(kind) == EventKind.TRANSITION:
            raise ValueError("transition events are written by transition(), not record_event()")
        with self._store.begin() as session:
            pipeline = lock_pipeline(session, name)
            now = now_from(self._clock)
            event = _add_event(session, pipeline, now, EventKind(kind), reason, actor, action)
            session.flush()
            return _event_record(event)

    def events(self, name: str, limit: int = 100) -> builtins.list[EventRecord]:
        """The newest `limit` events of `name`, newest first; kept after the pipeline is dropped."""
        statement = (
            select(Event).where(Event.pipeline_name == name).order_by(Event.id.desc()).limit(limit)
        )
        with self._store.session() as session:
            return [_event_record(row) for row in session.scalars(statement)]

    def append_log(self, name: str, step: int, level: str, message: str) -> LogRecord:
        """Persist one step log line (step 0, 1 or 2)."""
        return self._logs.append(name, step, level, message)

    def logs(
        self, name: str, *, step: int | None = None, after_id: int = 0, limit: int = 500
    ) -> builtins.list[LogRecord]:
        """Log lines after `after_id`, ascending; pass the last id seen to tail."""
        return self._logs.tail(name, step=step, after_id=after_id, limit=limit)


def _with_children(statement: Select[Pipeline]) -> Select[Pipeline]:
    return statement.options(selectinload(Pipeline.connections), selectinload(Pipeline.tables))


def _check_connection(connection: ConnectionRef, role: ConnectionRole) -> None:
    # Secrets never enter the metadata DB: they come from password_env, password_file or libpq.
    parts = urlsplit(connection.url)
    if parts.password is not None or "password" in parse_qs(parts.query):
        raise UsageError(
            f"The {role} URL contains a password; remove it and set password_env or "
            "password_file for the connection in the config file (or use PGPASSFILE)."
        )


def _check_tables(tables: Sequence[TableRef]) -> None:
    if not tables:
        raise UsageError("No tables given; pass --tables schema.table[,schema.table...].")
    if len(set(tables)) != len(tables):
        raise UsageError("A table is listed twice; list each table once.")


def _connection_row(record: ConnectionRef, role: ConnectionRole) -> Connection:
    return Connection(
        role=role.value,
        name=record.name,
        url=record.url,
        password_env=record.password_env,
        password_file=record.password_file,
        kind=record.kind,
    )


def _table_row(
    position: int, ref: TableRef, now: datetime, *, pipeline_id: int | None = None
) -> PipelineTable:
    return PipelineTable(
        pipeline_id=pipeline_id,
        position=position,
        schema_name=ref.schema,
        table_name=ref.name,
        state=TableState.PENDING.value,
        rows_copied=0,
        updated_at=now,
    )


def _table_of(session: Session, pipeline: Pipeline, table: TableRef) -> PipelineTable:
    row = session.scalars(
        select(PipelineTable)
        .where(PipelineTable.pipeline_id == pipeline.id)
        .where(PipelineTable.schema_name == table.schema)
        .where(PipelineTable.table_name == table.name)
    ).one_or_none()
    if row is None:
        raise NotFoundError(
            f"Table {table} is not part of pipeline '{pipeline.name}'; run "
            f"`cdc-tui status {pipeline.name}` to see its tables."
        )
    return row


def _apply_table_state(
    row: PipelineTable, new: TableState, now: datetime, error: str | None
) -> None:
    """Set the state and the timestamps it implies; back to PENDING starts the copy over."""
    row.state = new.value
    row.updated_at = now
    if new == TableState.COPYING:
        row.started_at, row.completed_at = now, None
    elif new == TableState.COMPLETED:
        row.completed_at = now
    elif new == TableState.PENDING:
        row.started_at, row.completed_at, row.rows_copied = None, None, 0
    row.last_error = error if new == TableState.FAILED or error is not None else None


def _add_event(
    session: Session,
    pipeline: Pipeline,
    now: datetime,
    kind: EventKind,
    reason: str,
    actor: str,
    to_value: str | None,
    *,
    field: str | None = None,
    from_value: str | None = None,
    table: str | None = None,
) -> Event:
    event = Event(
        pipeline_id=pipeline.id,
        pipeline_name=pipeline.name,
        at=now,
        kind=kind.value,
        field=field,
        table_name=table,
        from_value=from_value,
        to_value=to_value,
        reason=reason,
        actor=actor,
    )
    session.add(event)
    return event


def _event_record(row: Event) -> EventRecord:
    return EventRecord(
        id=row.id,
        pipeline_name=row.pipeline_name,
        at=row.at,
        kind=EventKind(row.kind),
        field=row.field,
        table=row.table_name,
        from_value=row.from_value,
        to_value=row.to_value,
        reason=row.reason,
        actor=row.actor,
    )
