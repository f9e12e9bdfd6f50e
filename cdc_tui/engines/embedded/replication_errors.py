"""What can go wrong on a replication connection, and which failures a runner may retry.

Every class has a `retriable` flag: True means "reconnect with backoff and resume from the
acknowledged position"; False means the operator must act (usually: resync the pipeline).
"""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg import pq

from cdc_tui.errors import SourceError

# SQLSTATEs of a server that went away, is shutting down or cannot take a connection yet.
_LOST_STATES: Final = frozenset({"57P01", "57P02", "57P03", "53300"})
# Texts PostgreSQL 13-18 use for an invalidated slot (wal_status = lost, or a recovery conflict).
_INVALIDATED_TEXTS: Final = (
    "can no longer get changes from replication slot",
    "can no longer access replication slot",
    "cannot read from logical replication slot",
    "has been invalidated",
)
# Connect failures that retrying cannot fix: wrong credentials, missing role or database.
_PERMANENT_CONNECT_TEXTS: Final = (
    "password",
    "authentication",
    "pg_hba.conf",
    "does not exist",
    "permission denied",
    "must be superuser",
    "replication role",
)
# SET TRANSACTION SNAPSHOT's answer once the exporting connection has gone.
LOST_SNAPSHOT_SQLSTATE: Final = "22023"


class ReplicationError(SourceError):
    """The source's walsender refused a command or the replication stream failed."""

    default_title = "Replication error"
    retriable = False


class SlotExistsError(ReplicationError):
    """CREATE_REPLICATION_SLOT found a slot of that name already."""

    default_title = "Replication slot exists"


class SlotMissingError(ReplicationError):
    """The slot does not exist (dropped behind our back, or never created)."""

    default_title = "Replication slot missing"


class SlotInvalidatedError(ReplicationError):
    """The server invalidated the slot (it lost WAL the slot needed): resync required."""

    default_title = "Replication slot invalidated"


class SlotInUseError(ReplicationError):
    """Another walsender still holds the slot, typically our own previous, dying session."""

    default_title = "Replication slot in use"
    retriable = True


class ReplicationConnectionLost(ReplicationError):
    """The connection broke (walsender killed, server restarted, network): reconnect and resume."""

    default_title = "Replication connection lost"
    retriable = True


def server_failure(
    sqlstate: str | None, primary: str, detail: str | None, *, doing: str, slot: str | None
) -> ReplicationError:
    """The exception for a server error while `doing` something, classified by SQLSTATE/text."""
    text = f"{primary} {detail or ''}".lower()
    reason = primary.rstrip(".")
    if slot is not None and sqlstate == "42710":
        return SlotExistsError(
            f'Replication slot "{slot}" already exists on the source; drop it if no pipeline '
            "owns it, or choose another pipeline name."
        )
    if slot is not None and sqlstate == "42704" and "replication slot" in text:
        return SlotMissingError(
            f'Replication slot "{slot}" does not exist on the source ({reason}); resync required.'
        )
    if slot is not None and any(t in text for t in _INVALIDATED_TEXTS):
        return SlotInvalidatedError(
            f'Replication slot "{slot}" was invalidated by the source ({reason}); resync required.'
        )
    if slot is not None and sqlstate == "55006":
        return SlotInUseError(
            f'Replication slot "{slot}" is in use by another process ({reason}); retry once '
            "that session has ended, and check that no other runner uses this pipeline."
        )
    if sqlstate is None or sqlstate in _LOST_STATES or sqlstate.startswith("08"):
        return ReplicationConnectionLost(
            f"The replication connection failed while {doing}: {reason}."
        )
    return ReplicationError(f"The source refused {doing}: {reason} (SQLSTATE {sqlstate}).")


def result_failure(result: pq.abc.PGresult, *, doing: str, slot: str | None) -> ReplicationError:
    """Classify a FATAL_ERROR result returned by the walsender."""
    sqlstate = _field(result, pq.DiagnosticField.SQLSTATE)
    primary = _field(result, pq.DiagnosticField.MESSAGE_PRIMARY)
    if primary is None:
        primary = result.get_error_message().strip() or "no reason given"
    detail = _field(result, pq.DiagnosticField.MESSAGE_DETAIL)
    return server_failure(sqlstate, primary, detail, doing=doing, slot=slot)


def connection_lost(exc: BaseException | str, *, doing: str) -> ReplicationConnectionLost:
    """A retriable failure from a libpq-level error (closed socket, failed send)."""
    first = str(exc).strip().splitlines()
    reason = first[0].rstrip(".") if first else type(exc).__name__
    return ReplicationConnectionLost(f"The replication connection failed while {doing}: {reason}.")


def connect_failure(where: str, reason: str) -> ReplicationError:
    """Opening failed: permanent for credentials/privileges/names, retriable otherwise."""
    message = f"Cannot open a replication connection to the source at {where}: {reason}."
    if any(t in reason.lower() for t in _PERMANENT_CONNECT_TEXTS):
        return ReplicationError(message)
    return ReplicationConnectionLost(message)


def is_lost_snapshot_error(exc: BaseException) -> bool:
    """True when `SET TRANSACTION SNAPSHOT` failed because the exported snapshot is gone.

    A full-load worker that sees this must not continue: the slot is dropped and Step 1 starts
    again on a new slot (RELIABILITY row 12).
    """
    return (
        isinstance(exc, psycopg.Error)
        and exc.sqlstate == LOST_SNAPSHOT_SQLSTATE
        and "snapshot" in str(exc).lower()
    )


def _field(result: pq.abc.PGresult, field: pq.DiagnosticField) -> str | None:
    value = result.error_field(field)
    return None if value is None else value.decode("utf-8", "replace")
