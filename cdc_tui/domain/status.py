"""Status enums and the one transition table every status change is checked against."""

from __future__ import annotations

from enum import StrEnum

from cdc_tui.errors import IllegalTransitionError


class PipelineStatus(StrEnum):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    ERROR = "ERROR"


class FullLoadStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class CdcStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    RECONNECTING = "RECONNECTING"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


class TableState(StrEnum):
    PENDING = "PENDING"
    COPYING = "COPYING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILED = "failed"


class Engine(StrEnum):
    EMBEDDED = "embedded"
    KAFKA_CONNECT = "kafka_connect"


class Mode(StrEnum):
    FULL_LOAD_AND_CDC = "full_load_and_cdc"
    FULL_LOAD_ONLY = "full_load_only"
    CDC_ONLY = "cdc_only"


class StatusField(StrEnum):
    """The three stored status columns of a pipeline, plus the per-table copy state."""

    STATUS = "status"
    FULL_LOAD_STATUS = "full_load_status"
    CDC_STATUS = "cdc_status"
    TABLE_STATE = "table_state"


_P = PipelineStatus
_F = FullLoadStatus
_C = CdcStatus
_T = TableState

# The only place legal transitions are listed; ERROR/FAILED are reachable from every state.
TRANSITIONS: dict[StatusField, dict[str, frozenset[str]]] = {
    StatusField.STATUS: {
        _P.STOPPED: frozenset({_P.STARTING}),
        _P.STARTING: frozenset({_P.RUNNING, _P.STOPPING, _P.STOPPED}),
        _P.RUNNING: frozenset({_P.STOPPING, _P.STOPPED}),
        _P.STOPPING: frozenset({_P.STOPPED}),
        _P.ERROR: frozenset({_P.STARTING, _P.STOPPED}),
    },
    StatusField.FULL_LOAD_STATUS: {
        _F.NOT_STARTED: frozenset({_F.IN_PROGRESS, _F.SKIPPED}),
        _F.IN_PROGRESS: frozenset({_F.COMPLETED, _F.NOT_STARTED}),
        _F.COMPLETED: frozenset({_F.NOT_STARTED}),
        _F.FAILED: frozenset({_F.IN_PROGRESS, _F.NOT_STARTED}),
        _F.SKIPPED: frozenset({_F.NOT_STARTED}),
    },
    StatusField.CDC_STATUS: {
        _C.NOT_STARTED: frozenset({_C.STARTING}),
        _C.STARTING: frozenset({_C.RUNNING, _C.STOPPED, _C.RECONNECTING}),
        _C.RUNNING: frozenset({_C.PAUSED, _C.STOPPED, _C.RECONNECTING}),
        _C.RECONNECTING: frozenset({_C.RUNNING, _C.STOPPED}),
        _C.PAUSED: frozenset({_C.STARTING, _C.STOPPED, _C.NOT_STARTED}),
        _C.STOPPED: frozenset({_C.STARTING, _C.NOT_STARTED}),
        _C.FAILED: frozenset({_C.STARTING, _C.STOPPED, _C.NOT_STARTED}),
    },
    StatusField.TABLE_STATE: {
        _T.PENDING: frozenset({_T.COPYING}),
        _T.COPYING: frozenset({_T.COMPLETED, _T.PENDING}),
        _T.COMPLETED: frozenset({_T.PENDING}),
        _T.FAILED: frozenset({_T.PENDING, _T.COPYING}),
    },
}

# Failure states any state may enter: a fault can strike at any moment.
FAILURE_STATE: dict[StatusField, str] = {
    StatusField.STATUS: _P.ERROR,
    StatusField.FULL_LOAD_STATUS: _F.FAILED,
    StatusField.CDC_STATUS: _C.FAILED,
    StatusField.TABLE_STATE: _T.FAILED,
}

ENUM_OF: dict[StatusField, type[StrEnum]] = {
    StatusField.STATUS: PipelineStatus,
    StatusField.FULL_LOAD_STATUS: FullLoadStatus,
    StatusField.CDC_STATUS: CdcStatus,
    StatusField.TABLE_STATE: TableState,
}


def is_legal(field: StatusField, current: str, new: str) -> bool:
    """True when `field` may go from `current` to `new` according to TRANSITIONS."""
    enum = ENUM_OF[field]
    if current not in enum.__members__ or new not in enum.__members__:
        return False
    if new == FAILURE_STATE[field] and current != new:
        return True
    return new in TRANSITIONS[field].get(current, frozenset())


def check_transition(field: StatusField, current: str, new: str) -> None:
    """Raise IllegalTransitionError unless `field` may go from `current` to `new`."""
    if not is_legal(field, current, new):
        raise IllegalTransitionError(
            f"{field} cannot go from {current} to {new}; this is a bug in cdc-tui, please report it"
        )


def initial_full_load_status(mode: Mode) -> FullLoadStatus:
    """`cdc_only` pipelines never copy, so their full load starts (and stays) SKIPPED."""
    return FullLoadStatus.SKIPPED if mode == Mode.CDC_ONLY else FullLoadStatus.NOT_STARTED
