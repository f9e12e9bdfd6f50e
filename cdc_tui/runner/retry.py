"""Which faults the runner retries (with backoff) and which stop the pipeline."""

from __future__ import annotations

import psycopg
from psycopg import errors

from cdc_tui.errors import CdcTuiError

# SQLSTATEs that mean "try again later": the server went away, is starting, or rolled us back.
RETRIABLE_SQLSTATES = frozenset({
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now
    "53300",  # too_many_connections
    "08000", "08003", "08006", "08001", "08004",  # connection exceptions
})  # fmt: skip


# Connection failures libpq reports without a SQLSTATE that no retry will fix.
PERMANENT_CONNECT_MARKERS = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "permission denied",
    "no password supplied",
    "certificate",
)


def is_retriable(exc: BaseException) -> bool:
    """True for faults that heal by themselves: unreachable servers, killed sessions, deadlocks."""
    flag = getattr(exc, "retriable", None)
    if isinstance(flag, bool):
        return flag
    if isinstance(exc, psycopg.Error):
        if exc.sqlstate in RETRIABLE_SQLSTATES:
            return True
        if isinstance(exc, errors.InsufficientPrivilege | errors.InvalidPassword):
            return False
        if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
            text = str(exc).lower()
            return not any(marker in text for marker in PERMANENT_CONNECT_MARKERS)
        return False
    if isinstance(exc, CdcTuiError):
        return False
    return isinstance(exc, ConnectionError | TimeoutError)
