"""Comparing whole tables between databases: row count plus an md5 of every row in key order."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from tests.pg import Database

# The row's text form: enum, domain and composite values print the same as their text copies.
CHECKSUM_QUERY = (
    "SELECT count(*), coalesce(md5(string_agg(t::text, ',' ORDER BY {keys})), '') FROM {table} AS t"
)


def table_checksum(
    db: Database, schema: str, table: str, key_cols: Sequence[str]
) -> tuple[int, str]:
    """(row count, md5 of all rows ordered by `key_cols`) of `schema.table` in `db`."""
    query = sql.SQL(CHECKSUM_QUERY).format(
        keys=sql.SQL(", ").join(sql.Identifier("t", k) for k in key_cols),
        table=sql.Identifier(schema, table),
    )
    with db.admin() as conn:
        # Text forms must not depend on each cluster's defaults.
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET extra_float_digits = 3")
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])
