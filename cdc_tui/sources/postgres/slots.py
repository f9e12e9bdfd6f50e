"""Reading replication slots from `pg_replication_slots`, one slot or a batch of them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

# One column list for both readers, in SlotInfo's field order, so they can never drift apart.
SLOT_COLUMNS = sql.SQL("""slot_name,
       active,
       active_pid,
       wal_status,
       safe_wal_size,
       restart_lsn::text,
       confirmed_flush_lsn::text,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,
       pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint""")

SLOT_QUERY = sql.SQL("SELECT {} FROM pg_replication_slots WHERE slot_name = %s").format(
    SLOT_COLUMNS
)
SLOTS_QUERY = sql.SQL(
    "SELECT {} FROM pg_replication_slots WHERE slot_name = ANY(%s::name[])"
).format(SLOT_COLUMNS)


@dataclass(frozen=True)
class SlotInfo:
    """One row of `pg_replication_slots`, plus the bytes retained and not yet confirmed."""

    name: str
    active: bool
    active_pid: int | None
    wal_status: str | None
    safe_wal_size: int | None
    restart_lsn: str | None
    confirmed_flush_lsn: str | None
    retained_bytes: int | None
    lag_bytes: int | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_slot(conn: psycopg.Connection[Any], slot_name: str) -> SlotInfo | None:
    """The slot's row, or None when no slot of that name exists."""
    row = conn.execute(SLOT_QUERY, (slot_name,)).fetchone()
    if row is None:
        return None
    return SlotInfo(*row)


def read_slots(conn: psycopg.Connection[Any], slot_names: Iterable[str]) -> dict[str, SlotInfo]:
    """The rows of several slots in one query.

    Args:
        conn: a connection to the source cluster (slots are per cluster, not per database).
        slot_names: the slots wanted; duplicates are harmless.

    Returns:
        SlotInfo by slot name; a slot that does not exist is absent from the dict. No query is
        sent when `slot_names` is empty.
    """
    names = sorted(set(slot_names))
    if not names:
        return {}
    rows = conn.execute(SLOTS_QUERY, (names,)).fetchall()
    return {info.name: info for info in (SlotInfo(*row) for row in rows)}
