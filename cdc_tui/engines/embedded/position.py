"""The applied position on the target: written in the same transaction as the data it covers.

One row per pipeline in `cdc_tui.applied_position`. `end_lsn` is the end of the commit record of
the last source transaction applied; after a restart every transaction whose commit lies below it
is skipped, so a transaction the slot re-sends is never applied twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, LiteralString

import psycopg

from cdc_tui.lsn import lsn_to_int, lsn_to_str

POSITION_SCHEMA = "cdc_tui"
POSITION_TABLE = "applied_position"

_SCHEMA_EXISTS = "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'cdc_tui'"
# Only run when the schema is missing: even with IF NOT EXISTS PostgreSQL checks CREATE first.
_CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS cdc_tui"
_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS cdc_tui.applied_position (
    pipeline text PRIMARY KEY,
    commit_lsn pg_lsn NOT NULL,
    end_lsn pg_lsn NOT NULL,
    commit_time timestamptz,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
_READ_POSITION = "SELECT end_lsn::text FROM cdc_tui.applied_position WHERE pipeline = %s"
_UPSERT_POSITION = """
INSERT INTO cdc_tui.applied_position AS p (pipeline, commit_lsn, end_lsn, commit_time)
VALUES (%s, %s::pg_lsn, %s::pg_lsn, %s)
ON CONFLICT (pipeline) DO UPDATE
   SET commit_lsn = EXCLUDED.commit_lsn, end_lsn = EXCLUDED.end_lsn,
       commit_time = EXCLUDED.commit_time, applied_at = now()
"""
_DELETE_POSITION = "DELETE FROM cdc_tui.applied_position WHERE pipeline = %s"


def ensure_position_table(conn: psycopg.Connection[Any]) -> None:
    """Create schema `cdc_tui` and the position table when missing (runs in the caller's txn)."""
    if conn.execute(_SCHEMA_EXISTS).fetchone() is None:
        conn.execute(_CREATE_SCHEMA)
    conn.execute(_CREATE_TABLE)


def read_position(conn: psycopg.Connection[Any], pipeline: str) -> int | None:
    """The end LSN of the last source transaction applied for `pipeline`, None before any."""
    row = conn.execute(_READ_POSITION, (pipeline,)).fetchone()
    return None if row is None else lsn_to_int(str(row[0]))


def upsert_position_args(
    pipeline: str, commit_lsn: int, end_lsn: int, commit_time: datetime | None
) -> tuple[LiteralString, tuple[object, ...]]:
    """The statement and parameters that record a position (for a cursor or a pipeline)."""
    return _UPSERT_POSITION, (pipeline, lsn_to_str(commit_lsn), lsn_to_str(end_lsn), commit_time)


def write_position(
    conn: psycopg.Connection[Any],
    pipeline: str,
    commit_lsn: int,
    end_lsn: int,
    commit_time: datetime | None,
) -> None:
    """Record the position in the caller's open transaction."""
    statement, params = upsert_position_args(pipeline, commit_lsn, end_lsn, commit_time)
    conn.execute(statement, params)


def delete_position(conn: psycopg.Connection[Any], pipeline: str) -> None:
    """Forget the pipeline's position (drop, or a resync that starts from a new full load)."""
    conn.execute(_DELETE_POSITION, (pipeline,))
