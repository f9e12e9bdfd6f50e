"""The source objects a pipeline owns: its publication and its replication slot."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from cdc_tui.domain.spec import TableRef

log = logging.getLogger(__name__)

PUBLICATION_EXISTS = "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = %s"
PUBLICATION_TABLES = """
SELECT schemaname::text, tablename::text
  FROM pg_catalog.pg_publication_tables
 WHERE pubname = %s
"""
SLOT_ROW = """
SELECT plugin, slot_type, database, active, active_pid, wal_status,
       confirmed_flush_lsn::text, restart_lsn::text
  FROM pg_catalog.pg_replication_slots
 WHERE slot_name = %s
"""
TERMINATE_SLOT_USER = "SELECT pg_terminate_backend(%s)"
DROP_SLOT = "SELECT pg_catalog.pg_drop_replication_slot(%s)"
CURRENT_WAL_LSN = "SELECT pg_catalog.pg_current_wal_lsn()::text"


def publication_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return conn.execute(PUBLICATION_EXISTS, (name,)).fetchone() is not None


def publication_tables(conn: psycopg.Connection[Any], name: str) -> set[TableRef]:
    """The tables a publication publishes (leaf partitions appear as their root when published
    with publish_via_partition_root)."""
    return {TableRef(s, t) for s, t in conn.execute(PUBLICATION_TABLES, (name,)).fetchall()}


def create_publication(
    conn: psycopg.Connection[Any], name: str, tables: Sequence[TableRef]
) -> None:
    """CREATE PUBLICATION for exactly these tables; partitioned tables publish via their root."""
    targets = sql.SQL(", ").join(
        sql.SQL("{}.{}").format(sql.Identifier(t.schema), sql.Identifier(t.name)) for t in tables
    )
    conn.execute(
        sql.SQL(
            "CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true)"
        ).format(sql.Identifier(name), targets)
    )
    log.info("created publication %s for %d tables", name, len(tables))


def drop_publication(conn: psycopg.Connection[Any], name: str) -> bool:
    """Drop the publication if it exists; True when something was dropped."""
    if not publication_exists(conn, name):
        return False
    conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(name)))
    return True


def slot_row(conn: psycopg.Connection[Any], name: str) -> dict[str, Any] | None:
    """The slot's row of pg_replication_slots, or None."""
    cur = conn.execute(SLOT_ROW, (name,))
    row = cur.fetchone()
    if row is None:
        return None
    columns = [d.name for d in cur.description or ()]
    return dict(zip(columns, row, strict=True))


def drop_slot(conn: psycopg.Connection[Any], name: str) -> bool:
    """Drop the slot if it exists, ending a walsender still attached to it; True if dropped."""
    row = slot_row(conn, name)
    if row is None:
        return False
    if row["active"] and row["active_pid"]:
        conn.execute(TERMINATE_SLOT_USER, (row["active_pid"],))
    for _ in range(50):
        try:
            conn.execute(DROP_SLOT, (name,))
            return True
        except psycopg.errors.ObjectInUse:
            # The terminated walsender takes a moment to let the slot go.
            conn.execute("SELECT pg_sleep(0.1)")
    conn.execute(DROP_SLOT, (name,))
    return True


def current_wal_lsn(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(CURRENT_WAL_LSN).fetchone()
    assert row is not None
    return str(row[0])
