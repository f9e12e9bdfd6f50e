"""Reading the pipeline's replication slot from `pg_replication_slots`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

SLOT_QUERY = """
SELECT active,
       active_pid,
       wal_status,
       safe_wal_size,
       restart_lsn::text,
       confirmed_flush_lsn::text,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,
       pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
  FROM pg_replication_slots
 WHERE slot_name = %s
"""


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
    return SlotInfo(slot_name, *row)
