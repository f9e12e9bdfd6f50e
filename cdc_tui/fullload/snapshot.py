"""Source connections that read inside the replication slot's exported snapshot (DESIGN §3)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from cdc_tui.fullload.errors import SnapshotLostError, is_snapshot_missing
from cdc_tui.pgconn import PgParams, connect

BEGIN_SNAPSHOT_TRANSACTION = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
# A utility statement: it takes no bind parameters, so the name is composed as a literal.
SET_TRANSACTION_SNAPSHOT = "SET TRANSACTION SNAPSHOT {}"


def import_snapshot(conn: psycopg.Connection[Any], snapshot_name: str) -> None:
    """Start a read-only repeatable-read transaction on `conn` that sees `snapshot_name`.

    `conn` must be in autocommit mode with no transaction open.

    Raises:
        SnapshotLostError: the snapshot no longer exists (its exporting connection closed).
    """
    conn.execute(BEGIN_SNAPSHOT_TRANSACTION)
    try:
        conn.execute(sql.SQL(SET_TRANSACTION_SNAPSHOT).format(sql.Literal(snapshot_name)))
    except psycopg.Error as exc:
        conn.rollback()
        if is_snapshot_missing(exc):
            raise SnapshotLostError(
                f"The exported snapshot {snapshot_name} no longer exists (the replication "
                "connection that created the slot closed); drop the slot and restart Step 1 "
                "on a new one."
            ) from exc
        raise


def open_snapshot_connection(params: PgParams, snapshot_name: str) -> psycopg.Connection[Any]:
    """A new source connection already inside the exported snapshot; the caller closes it."""
    conn = connect(params, autocommit=True)
    try:
        import_snapshot(conn, snapshot_name)
    except BaseException:
        conn.close()
        raise
    return conn
