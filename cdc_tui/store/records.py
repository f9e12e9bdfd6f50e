"""Immutable records the repositories return: ORM objects never leave a session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

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


class EventKind(StrEnum):
    """What an event in a pipeline's history records."""

    TRANSITION = "transition"
    ACTION = "action"
    ERROR = "error"
    INFO = "info"


class ConnectionRole(StrEnum):
    SOURCE = "source"
    TARGET = "target"


@dataclass(frozen=True)
class TableStateRecord:
    """Copy state and progress of one table of a pipeline."""

    table: TableRef
    state: TableState
    rows_copied: int
    rows_estimated: int | None
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    last_error: str | None
    resync_lsn: str | None = None


@dataclass(frozen=True)
class PipelineRecord:
    """A pipeline as stored, with its two connections and its tables in order."""

    id: int
    name: str
    engine: Engine
    mode: Mode
    target_schema: str | None
    connect_url: str | None
    slot_name: str
    publication_name: str
    generation: int
    status: PipelineStatus
    full_load_status: FullLoadStatus
    cdc_status: CdcStatus
    full_load_lsn: str | None
    full_load_started_at: datetime | None
    full_load_completed_at: datetime | None
    applied_lsn: str | None
    changes_applied: int
    last_applied_at: datetime | None
    lag_seconds: float | None
    last_error: str | None
    stop_requested_at: datetime | None
    replica_identity_changes: str | None
    stalled_since: datetime | None
    created_at: datetime
    updated_at: datetime
    source: ConnectionRef
    target: ConnectionRef
    tables: tuple[TableStateRecord, ...]
    # SQL Server targets: what to do with numerics wider than decimal(38) (None: error).
    numeric_policy: str | None = None


@dataclass(frozen=True)
class EventRecord:
    """One entry of a pipeline's history; it outlives the pipeline for audit."""

    id: int
    pipeline_name: str
    at: datetime
    kind: EventKind
    field: str | None
    table: str | None
    from_value: str | None
    to_value: str | None
    reason: str
    actor: str


@dataclass(frozen=True)
class LogRecord:
    """One step log line (step 0, 1 or 2)."""

    id: int
    step: int
    level: str
    at: datetime
    message: str


@dataclass(frozen=True)
class LeaseRecord:
    """The runner lease of a pipeline: who runs it and until when the claim holds."""

    pipeline_name: str
    owner: str
    pid: int
    host: str
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime

    def is_fresh(self, now: datetime) -> bool:
        """True while the holder's last heartbeat still covers `now`."""
        return now < self.expires_at
