"""Step 1 failures, and which database errors are worth retrying."""

from __future__ import annotations

import psycopg
from psycopg import errors as pge

from cdc_tui.errors import OperationError

# Connection failures that no retry can cure: wrong password, unknown role or database.
_PERMANENT_CONNECT_MARKERS = ("authentication failed", "pg_hba.conf", "does not exist")


class FullLoadError(OperationError):
    """A table (or one key range of it) could not be copied; the load stopped."""

    default_title = "Full load failed"


class SnapshotLostError(OperationError):
    """The exported snapshot is gone: the slot must be dropped and Step 1 restarted on a new one.

    PostgreSQL removes an exported snapshot when the replication connection that created the
    slot closes; a copy continued without it would not match the slot's starting point.
    """

    default_title = "Snapshot lost"


def is_retriable(exc: BaseException) -> bool:
    """True for failures a fresh attempt can cure: a lost connection, a deadlock, a conflict."""
    if isinstance(exc, pge.TransactionRollback):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    if exc.sqlstate is None:
        text = str(exc).lower()
        return not any(marker in text for marker in _PERMANENT_CONNECT_MARKERS)
    # Class 08 (connection), 53 (resources), 57 (shutdown, cancel), 55 (lock not available).
    return exc.sqlstate[:2] in ("08", "53", "55", "57")


def is_snapshot_missing(exc: BaseException) -> bool:
    """True when SET TRANSACTION SNAPSHOT failed because the exporting transaction is gone."""
    return isinstance(exc, (pge.InvalidParameterValue, pge.ObjectNotInPrerequisiteState))
