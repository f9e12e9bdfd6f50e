"""Enum labels from the source catalog, for the SQL Server planner's CHECK (col IN (...)).

One query per call, by type oid: a domain (or a domain over a domain) is walked down to the enum
it is built on, and labels come back in `enumsortorder`, the order PostgreSQL compares them in,
which `ALTER TYPE ... ADD VALUE ... BEFORE` keeps by giving the new label a fractional position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from cdc_tui.sources.postgres.catalog import ColumnDef, TableDef, TypeKind

# Labels per starting type oid; types that are not (domains over) enums yield no row.
ENUM_LABELS_QUERY = """
WITH RECURSIVE chain AS (
    SELECT t.oid AS start_oid, t.oid, t.typtype, t.typbasetype
      FROM pg_catalog.pg_type AS t
     WHERE t.oid = ANY(%(oids)s::oid[])
    UNION ALL
    SELECT ch.start_oid, b.oid, b.typtype, b.typbasetype
      FROM chain AS ch
      JOIN pg_catalog.pg_type AS b ON b.oid = ch.typbasetype
     WHERE ch.typtype = 'd'
)
SELECT ch.start_oid::int8,
       ARRAY(SELECT e.enumlabel::text
               FROM pg_catalog.pg_enum AS e
              WHERE e.enumtypid = ch.oid
              ORDER BY e.enumsortorder)
  FROM chain AS ch
 WHERE ch.typtype = 'e'
"""


def enum_type_key(col: ColumnDef) -> str | None:
    """The key `plan_tables(enum_labels=...)` looks the column up by, or None when it needs no
    labels: the enum as the catalog spelled it (`type_sql`), a domain's `base_type_sql`.

    Arrays of enums become JSON on SQL Server, so they need none.
    """
    if col.type_kind == TypeKind.ARRAY:
        return None
    if col.scalar_kind == TypeKind.ENUM:
        return col.type_sql
    if col.scalar_kind == TypeKind.DOMAIN and col.base_kind == TypeKind.ENUM:
        return col.base_type_sql
    return None


def read_enum_labels(
    conn: psycopg.Connection[Any], defs: Sequence[TableDef]
) -> dict[str, list[str]]:
    """The labels of every enum a column of `defs` holds, directly or through domains.

    Keyed as `cdc_tui.targets.mssql.ddl.plan_tables` expects; labels in `enumsortorder`. Reads
    nothing when no column is an enum. `conn` must reach the database `defs` were read from:
    the lookup is by type oid.
    """
    keys: dict[int, str] = {}
    for td in defs:
        for col in td.columns:
            key = enum_type_key(col)
            if key is not None:
                keys[col.type_oid] = key
    if not keys:
        return {}
    rows = conn.execute(ENUM_LABELS_QUERY, {"oids": sorted(keys)}).fetchall()
    return {keys[oid]: list(labels) for oid, labels in rows}
