"""Source objects the kafka_connect engine needs besides the slot and publication.

- `cdc_tui.<pipeline>_signal`: Debezium's signal table; an INSERT asks for an incremental
  snapshot of one table (a per-table resync while the rest stream).
- `cdc_tui.<pipeline>_heartbeat`: one row Debezium's heartbeat query and the runner update, so the
  slot moves while the replicated tables are idle, and so the runner can see how long a change
  takes to reach the target.
- `REPLICA IDENTITY FULL` on tables with TOAST-able columns: pgoutput then sends the old row,
  from which Debezium fills a column an UPDATE left unchanged instead of sending a placeholder.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.kafka_connect.naming import HELPER_SCHEMA, heartbeat_table, signal_table

log = logging.getLogger(__name__)

CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS {}"
CREATE_SIGNAL = (
    "CREATE TABLE IF NOT EXISTS {} (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, "
    "data varchar(2048))"
)
CREATE_HEARTBEAT = (
    "CREATE TABLE IF NOT EXISTS {} (id integer PRIMARY KEY, beat_at timestamptz NOT NULL)"
)
BEAT = (
    "INSERT INTO {} (id, beat_at) VALUES (1, now()) "
    "ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at"
)
INSERT_SIGNAL = "INSERT INTO {} (id, type, data) VALUES (%s, %s, %s)"
DROP_TABLE = "DROP TABLE IF EXISTS {}"
DROP_SCHEMA_IF_EMPTY = "DROP SCHEMA IF EXISTS {}"
# Tables with a column PostgreSQL may store out of line, and their replica identity now.
TOASTABLE = """
SELECT n.nspname::text, c.relname::text, c.relreplident::text, ri.relname::text
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_index AS i ON i.indrelid = c.oid AND i.indisreplident
  LEFT JOIN pg_catalog.pg_class AS ri ON ri.oid = i.indexrelid
 WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  AND a.attstorage <> 'p')
"""
CURRENT_WAL_LSN = "SELECT pg_catalog.pg_current_wal_lsn()::text"


@dataclass(frozen=True)
class IdentityChange:
    """A replica identity cdc-tui changed: `previous` is 'd', 'n' or 'i:<index>'."""

    table: TableRef
    previous: str


def _table(ref: TableRef) -> sql.Identifier:
    return sql.Identifier(ref.schema, ref.name)


def heartbeat_query(pipeline: str) -> str:
    """Debezium's `heartbeat.action.query`: the same upsert the runner runs."""
    return sql.SQL(BEAT).format(_table(heartbeat_table(pipeline))).as_string(None)


def ensure_helper_tables(conn: psycopg.Connection[Any], pipeline: str) -> None:
    conn.execute(sql.SQL(CREATE_SCHEMA).format(sql.Identifier(HELPER_SCHEMA)))
    conn.execute(sql.SQL(CREATE_SIGNAL).format(_table(signal_table(pipeline))))
    conn.execute(sql.SQL(CREATE_HEARTBEAT).format(_table(heartbeat_table(pipeline))))
    beat(conn, pipeline)


def beat(conn: psycopg.Connection[Any], pipeline: str) -> None:
    conn.execute(sql.SQL(BEAT).format(_table(heartbeat_table(pipeline))))


def drop_helper_tables(conn: psycopg.Connection[Any], pipeline: str) -> list[str]:
    """Drop both tables, and the schema when nothing else is left in it."""
    done = []
    for ref in (signal_table(pipeline), heartbeat_table(pipeline)):
        if _exists(conn, ref):
            conn.execute(sql.SQL(DROP_TABLE).format(_table(ref)))
            done.append(f"dropped {ref}")
    try:
        with conn.transaction():
            conn.execute(sql.SQL(DROP_SCHEMA_IF_EMPTY).format(sql.Identifier(HELPER_SCHEMA)))
    except psycopg.errors.DependentObjectsStillExist:
        log.info("schema %s still holds other pipelines' tables; kept", HELPER_SCHEMA)
    return done


def _exists(conn: psycopg.Connection[Any], ref: TableRef) -> bool:
    row = conn.execute("SELECT pg_catalog.to_regclass(%s)", (_table(ref).as_string(conn),))
    found = row.fetchone()
    return found is not None and found[0] is not None


def request_incremental_snapshot(
    conn: psycopg.Connection[Any], pipeline: str, table: TableRef
) -> tuple[str, str]:
    """Insert (and commit, `conn` is in autocommit) Debezium's execute-snapshot signal for
    `table`; returns (signal id, WAL position after its commit): a transaction the connector
    reads with a commit position at or past it was committed after the signal."""
    signal_id = f"cdc-tui-{uuid.uuid4()}"
    data = json.dumps({"data-collections": [f"{table.schema}.{table.name}"], "type": "incremental"})
    conn.execute(
        sql.SQL(INSERT_SIGNAL).format(_table(signal_table(pipeline))),
        (signal_id, "execute-snapshot", data),
    )
    row = conn.execute(CURRENT_WAL_LSN).fetchone()
    assert row is not None
    return signal_id, str(row[0])


def tables_needing_full_identity(
    conn: psycopg.Connection[Any], tables: Sequence[TableRef]
) -> list[IdentityChange]:
    """Tables with TOAST-able columns whose replica identity is not FULL yet."""
    rows = conn.execute(
        TOASTABLE, ([t.schema for t in tables], [t.name for t in tables])
    ).fetchall()
    out = []
    for schema, name, ident, index in rows:
        if ident != "f":
            out.append(
                IdentityChange(TableRef(schema, name), f"i:{index}" if ident == "i" else ident)
            )
    return out


def set_full_identity(conn: psycopg.Connection[Any], table: TableRef) -> None:
    conn.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(_table(table)))


def restore_identity(conn: psycopg.Connection[Any], change: IdentityChange) -> None:
    """Put back the replica identity a table had before cdc-tui made it FULL."""
    clause: sql.Composable
    if change.previous.startswith("i:"):
        clause = sql.SQL("USING INDEX {}").format(sql.Identifier(change.previous[2:]))
    else:
        clause = sql.SQL({"d": "DEFAULT", "n": "NOTHING", "f": "FULL"}[change.previous])
    conn.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY {}").format(_table(change.table), clause))


def encode_changes(changes: Sequence[IdentityChange]) -> str:
    return json.dumps([[c.table.schema, c.table.name, c.previous] for c in changes])


def decode_changes(text: str | None) -> list[IdentityChange]:
    if not text:
        return []
    return [IdentityChange(TableRef(s, t), p) for s, t, p in json.loads(text)]
