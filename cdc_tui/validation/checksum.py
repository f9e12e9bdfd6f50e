"""The SQL that validation runs on both sides: session settings, key boundaries, chunk checksums.

Both sides run the very same expressions, built from the Step 0 plan: each column cast to its
target type (a no-op on the target), so a source enum and the target's text print alike.
Identifiers are composed with `sql.Identifier`; type names are the source's `format_type`
output carried by the plan, as in Step 0's DDL.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.targets.postgres.ddl import ColumnPlan, TablePlan
from cdc_tui.validation.chunks import Chunk, KeyBound

# Every output function whose text depends on a setting is pinned, so equal values print alike.
SESSION_SETTINGS_QUERY = """
SELECT set_config('timezone', 'UTC', false),
       set_config('datestyle', 'ISO', false),
       set_config('intervalstyle', 'postgres', false),
       set_config('extra_float_digits', '3', false),
       set_config('bytea_output', 'hex', false),
       set_config('lc_monetary', 'C', false)
"""

# The insert position, not the write position: a commit visible in the snapshot may not be
# written yet under synchronous_commit=off, but it is always inserted.
CURRENT_LSN_QUERY = "SELECT pg_catalog.pg_current_wal_insert_lsn()::text"

# Columns of one table with what decides their sort order (a non-collatable column cast to text
# sorts under the database default); pg_database columns differ between versions
# (datlocprovider 15+, daticulocale 15-16, datlocale 17+), hence to_jsonb.
TABLE_COLUMNS_QUERY = """
SELECT a.attname::text,
       a.attcollation <> 0,
       coalesce(co.collname::text, 'default'),
       coalesce(to_jsonb(d) ->> 'datlocprovider', 'c'),
       coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale'),
       d.datcollate::text
  FROM pg_catalog.pg_attribute AS a
  JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_collation AS co ON co.oid = a.attcollation
  JOIN pg_catalog.pg_database AS d ON d.datname = current_database()
 WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p')
   AND a.attnum > 0 AND NOT a.attisdropped
"""

ROW_HASH = sql.SQL("md5(ROW({columns})::text)")

# Hashing UTF-8 bytes keeps a source and a target in different server encodings comparable.
ROW_HASH_UTF8 = sql.SQL("md5(convert_to(ROW({columns})::text, 'UTF8'))")

# A sum of 64-bit row hashes needs no ordering (so no sort), and since each row's text includes
# its key, moving a value between rows changes the sum as surely as an ordered digest would.
CHECKSUM_QUERY = sql.SQL(
    "SELECT count(*), sum(('x' || left({row_hash}, 16))::bit(64)::int8)::text"
    " FROM {table} WHERE {where}"
)

SERVER_ENCODING_QUERY = "SELECT current_setting('server_encoding')"

# One pass over the key: every `every`-th key in order ends a chunk.
BOUNDARIES_QUERY = sql.SQL(
    "SELECT {display}, {parts} FROM ("
    "SELECT {aliased}, row_number() OVER (ORDER BY {keys}) AS rn FROM {table}"
    ") AS s WHERE s.rn %% %(every)s::int8 = 0 ORDER BY s.rn"
)

LOWER_BOUND = sql.SQL("ROW({keys}) > ROW({values})")
UPPER_BOUND = sql.SQL("ROW({keys}) <= ROW({values})")
CAST = sql.SQL("{}::{}")
COLLATE_C = sql.SQL('({}) COLLATE "C"')


@dataclass(frozen=True)
class ColumnOrder:
    """Whether a column is collatable and the collation it sorts under once cast to text.

    For a collatable column that is its own collation, for any other the database default:
    an enum cast to text sorts like text of the database's default collation.
    """

    collatable: bool
    collation: str


@dataclass(frozen=True)
class ChunkSum:
    """One side's row count and checksum for one chunk; `digest` is None for no rows."""

    rows: int
    digest: str | None


@dataclass(frozen=True)
class TableSql:
    """The expressions both sides evaluate for one table; `keys` is empty for a keyless table."""

    columns: tuple[sql.Composable, ...]
    keys: tuple[sql.Composable, ...]
    key_types: tuple[str, ...]
    hash_utf8: bool = False

    @property
    def row_hash(self) -> sql.Composed:
        """The per-row hash of the plan's columns in plan order."""
        template = ROW_HASH_UTF8 if self.hash_utf8 else ROW_HASH
        return template.format(columns=sql.SQL(", ").join(self.columns))


def column_expr(col: ColumnPlan) -> sql.Composable:
    """The column as the target stores it: cast to the target type when the plan changes it."""
    if col.source_type == col.target_type:
        return sql.Identifier(col.name)
    return CAST.format(sql.Identifier(col.name), sql.SQL(col.target_type))


def build_table_sql(
    plan: TablePlan, collate_c: Collection[str] = (), *, hash_utf8: bool = False
) -> TableSql:
    """The expressions for `plan`; key columns in `collate_c` sort byte-wise on both sides.

    `hash_utf8` hashes each row's UTF-8 bytes: needed only when the server encodings differ.
    """
    by_name = {c.name: c for c in plan.columns}
    keys: list[sql.Composable] = []
    for name in plan.primary_key:
        expr = column_expr(by_name[name])
        keys.append(COLLATE_C.format(expr) if name in collate_c else expr)
    return TableSql(
        columns=tuple(column_expr(c) for c in plan.columns),
        keys=tuple(keys),
        key_types=tuple(by_name[name].target_type for name in plan.primary_key),
        hash_utf8=hash_utf8,
    )


def effective_collation(collname: str, provider: str, locale: str | None, datcollate: str) -> str:
    """A comparable name for a collation; "C" and "POSIX" sort alike and are merged."""
    if collname != "default":
        name = collname
    elif provider == "c":
        name = datcollate
    else:
        name = f"{provider}:{locale}"
    return "C" if name in ("C", "POSIX") else name


def apply_session_settings(conn: psycopg.Connection[Any]) -> None:
    """Pin the settings that change how values print (time zone, date style, float digits...)."""
    conn.execute(SESSION_SETTINGS_QUERY)


def read_column_orders(conn: psycopg.Connection[Any], ref: TableRef) -> dict[str, ColumnOrder]:
    """The table's columns and how each sorts; empty when the table does not exist."""
    rows = conn.execute(TABLE_COLUMNS_QUERY, {"schema": ref.schema, "table": ref.name}).fetchall()
    return {
        row[0]: ColumnOrder(row[1], effective_collation(row[2], row[3], row[4], row[5]))
        for row in rows
    }


def current_lsn(conn: psycopg.Connection[Any]) -> str:
    """The WAL insert position, as `X/Y` text."""
    row = conn.execute(CURRENT_LSN_QUERY).fetchone()
    assert row is not None  # a SELECT without FROM always returns one row
    return str(row[0])


def _table(ref: TableRef) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(ref.schema), sql.Identifier(ref.name))


def read_boundaries(
    conn: psycopg.Connection[Any], ref: TableRef, tsql: TableSql, every: int
) -> list[KeyBound]:
    """Every `every`-th key of the table in key order, in one pass."""
    aliases = [sql.Identifier(f"k{i}") for i in range(len(tsql.keys))]
    parts = [CAST.format(sql.SQL("s.{}").format(a), sql.SQL("text")) for a in aliases]
    if len(aliases) == 1:
        display: sql.Composable = parts[0]
    else:
        display = CAST.format(
            sql.SQL("ROW({})").format(
                sql.SQL(", ").join(sql.SQL("s.{}").format(a) for a in aliases)
            ),
            sql.SQL("text"),
        )
    query = BOUNDARIES_QUERY.format(
        display=display,
        parts=sql.SQL(", ").join(parts),
        aliased=sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(k, a) for k, a in zip(tsql.keys, aliases, strict=True)
        ),
        keys=sql.SQL(", ").join(tsql.keys),
        table=_table(ref),
    )
    rows = conn.execute(query, {"every": every}).fetchall()
    return [KeyBound(row[0], tuple(row[1:])) for row in rows]


def _bound(template: sql.SQL, tsql: TableSql) -> sql.Composed:
    values = [CAST.format(sql.Placeholder(), sql.SQL(t)) for t in tsql.key_types]
    return template.format(keys=sql.SQL(", ").join(tsql.keys), values=sql.SQL(", ").join(values))


def chunk_where(tsql: TableSql, chunk: Chunk) -> tuple[sql.Composable, list[str]]:
    """The predicate selecting the chunk's rows, with its parameters."""
    conditions: list[sql.Composable] = []
    params: list[str] = []
    if chunk.lower is not None:
        conditions.append(_bound(LOWER_BOUND, tsql))
        params.extend(chunk.lower.parts)
    if chunk.upper is not None:
        conditions.append(_bound(UPPER_BOUND, tsql))
        params.extend(chunk.upper.parts)
    if not conditions:
        return sql.SQL("TRUE"), params
    return sql.SQL(" AND ").join(conditions), params


def chunk_checksum(
    conn: psycopg.Connection[Any], ref: TableRef, tsql: TableSql, chunk: Chunk
) -> ChunkSum:
    """Row count and checksum of one chunk (the whole table for a table without a key)."""
    where, params = chunk_where(tsql, chunk)
    query = CHECKSUM_QUERY.format(row_hash=tsql.row_hash, table=_table(ref), where=where)
    row = conn.execute(query, params).fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return ChunkSum(int(row[0]), row[1])


def server_encoding(conn: psycopg.Connection[Any]) -> str:
    """The database's encoding, which decides the bytes md5 sees."""
    row = conn.execute(SERVER_ENCODING_QUERY).fetchone()
    assert row is not None  # a SELECT without FROM always returns one row
    return str(row[0])
