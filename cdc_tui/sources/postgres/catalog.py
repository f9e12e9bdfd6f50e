"""Reading table definitions from a PostgreSQL source catalog: columns, types, keys, identity.

Every lookup is by exact catalog name passed as a parameter; no identifier is ever formatted
into SQL text here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql

from cdc_tui.domain.spec import TableRef


class TypeKind(StrEnum):
    """`pg_type.typtype`, with arrays (of anything) singled out as `a`."""

    BASE = "b"
    ENUM = "e"
    DOMAIN = "d"
    COMPOSITE = "c"
    RANGE = "r"
    MULTIRANGE = "m"
    PSEUDO = "p"
    ARRAY = "a"


# The primary-key columns of pg_class row `c`, in key order (empty without a key).
PRIMARY_KEY_COLUMNS = sql.SQL("""ARRAY(SELECT a.attname::text
               FROM pg_catalog.pg_index AS i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_catalog.pg_attribute AS a
                 ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary
              ORDER BY k.ord)""")

# Tables by exact (schema, name); a view or sequence of that name is reported as missing.
TABLES_QUERY = sql.SQL("""
WITH wanted AS (
    SELECT w.schema_name, w.table_name
      FROM unnest(%(schemas)s::text[], %(names)s::text[]) AS w(schema_name, table_name)
)
SELECT w.schema_name,
       w.table_name,
       c.oid::int8,
       c.relkind::text,
       c.relreplident::text,
       pg_catalog.pg_get_userbyid(c.relowner),
       CASE WHEN c.relkind = 'p' THEN
            (SELECT sum(greatest(pc.reltuples, 0))::int8
               FROM pg_catalog.pg_partition_tree(c.oid) AS pt
               JOIN pg_catalog.pg_class AS pc ON pc.oid = pt.relid
              WHERE pt.isleaf)
       ELSE CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END
       END,
       {primary_key},
       ARRAY(SELECT a.attname::text
               FROM pg_catalog.pg_index AS i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_catalog.pg_attribute AS a
                 ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisreplident
              ORDER BY k.ord),
       ARRAY(SELECT ic.relname::text
               FROM pg_catalog.pg_index AS i
               JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid
              WHERE i.indrelid = c.oid
                AND i.indisunique AND i.indimmediate AND i.indisvalid
                AND i.indpred IS NULL AND i.indexprs IS NULL
                AND NOT EXISTS (
                    SELECT 1
                      FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                      JOIN pg_catalog.pg_attribute AS a
                        ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                     WHERE k.ord <= i.indnkeyatts AND NOT a.attnotnull)
              ORDER BY ic.relname)
  FROM wanted AS w
  JOIN pg_catalog.pg_namespace AS n ON n.nspname = w.schema_name
  JOIN pg_catalog.pg_class AS c
    ON c.relnamespace = n.oid AND c.relname = w.table_name AND c.relkind IN ('r', 'p')
""").format(primary_key=PRIMARY_KEY_COLUMNS)

# Columns of all found tables; `chain` walks domains down to the type they are built on.
COLUMNS_QUERY = """
WITH RECURSIVE cols AS (
    SELECT a.attrelid, a.attnum, a.attname, a.atttypid, a.atttypmod, a.attnotnull,
           a.attidentity, a.attgenerated, ad.adbin, ad.adrelid,
           t.typtype,
           (t.typelem <> 0 AND t.typlen = -1) AS is_array,
           CASE WHEN t.typelem <> 0 AND t.typlen = -1 THEN t.typelem ELSE t.oid END AS scalar_oid
      FROM pg_catalog.pg_attribute AS a
      JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
      LEFT JOIN pg_catalog.pg_attrdef AS ad
        ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE a.attrelid = ANY(%(oids)s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
),
chain AS (
    SELECT t.oid AS start_oid, t.oid, t.typtype, t.typbasetype, t.typtypmod AS typmod,
           t.typarray
      FROM pg_catalog.pg_type AS t
     WHERE t.oid IN (SELECT scalar_oid FROM cols)
    UNION ALL
    SELECT ch.start_oid, b.oid, b.typtype, b.typbasetype,
           CASE WHEN ch.typmod <> -1 THEN ch.typmod ELSE b.typtypmod END, b.typarray
      FROM chain AS ch
      JOIN pg_catalog.pg_type AS b ON b.oid = ch.typbasetype
     WHERE ch.typtype = 'd'
)
SELECT cols.attrelid::int8,
       cols.attname::text,
       pg_catalog.format_type(cols.atttypid, cols.atttypmod),
       cols.atttypid::int8,
       CASE WHEN cols.is_array THEN 'a' ELSE cols.typtype::text END,
       s.typtype::text,
       sn.nspname::text,
       cols.attnotnull,
       pg_catalog.pg_get_expr(cols.adbin, cols.adrelid),
       cols.attidentity::text,
       cols.attgenerated::text,
       CASE WHEN s.typtype <> 'd' THEN NULL
            WHEN cols.is_array THEN pg_catalog.format_type(base.typarray, base.typmod)
            ELSE pg_catalog.format_type(base.oid, base.typmod) END,
       base.typtype::text
  FROM cols
  JOIN pg_catalog.pg_type AS s ON s.oid = cols.scalar_oid
  JOIN pg_catalog.pg_namespace AS sn ON sn.oid = s.typnamespace
  JOIN chain AS base ON base.start_oid = cols.scalar_oid AND base.typtype <> 'd'
 ORDER BY cols.attrelid, cols.attnum
"""

TABLE_PRIVILEGES_QUERY = """
SELECT c.oid::int8,
       has_table_privilege(c.oid, 'SELECT'),
       pg_has_role(c.relowner, 'USAGE')
  FROM pg_catalog.pg_class AS c
 WHERE c.oid = ANY(%(oids)s::oid[])
"""

PUBLICATION_QUERY = """
SELECT p.puballtables,
       p.pubinsert AND p.pubupdate AND p.pubdelete,
       to_regclass('pg_catalog.pg_publication_namespace') IS NOT NULL
  FROM pg_catalog.pg_publication AS p
 WHERE p.pubname = %(name)s
"""

PUBLICATION_TABLES_QUERY = """
SELECT n.nspname::text, c.relname::text
  FROM pg_catalog.pg_publication_rel AS pr
  JOIN pg_catalog.pg_publication AS p ON p.oid = pr.prpubid
  JOIN pg_catalog.pg_class AS c ON c.oid = pr.prrelid
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE p.pubname = %(name)s
"""

# PostgreSQL 15+ can publish whole schemas; such a publication is never "exactly these tables".
PUBLICATION_SCHEMAS_QUERY = """
SELECT count(*)::int
  FROM pg_catalog.pg_publication_namespace AS pn
  JOIN pg_catalog.pg_publication AS p ON p.oid = pn.pnpubid
 WHERE p.pubname = %(name)s
"""


# Quotes names with the server's own rules (reserved words of its version included).
QUOTE_IDENTS_QUERY = """
SELECT n, pg_catalog.quote_ident(n) FROM unnest(%(names)s::text[]) AS n
"""


@dataclass(frozen=True)
class ColumnDef:
    """One source column as the catalog describes it.

    `type_kind` is the column type's kind (`a` for any array); `scalar_kind` is the kind of the
    type itself or, for arrays, of the element type. For domains (and arrays of domains)
    `base_type_sql` is the underlying non-domain type with the domain's modifier and `base_kind`
    its kind.
    """

    name: str
    type_sql: str
    type_oid: int
    type_kind: TypeKind
    not_null: bool
    default_sql: str | None
    identity: str
    generated: bool
    scalar_kind: TypeKind = TypeKind.BASE
    type_schema: str = "pg_catalog"
    base_type_sql: str | None = None
    base_kind: TypeKind = TypeKind.BASE


@dataclass(frozen=True)
class TableDef:
    """A source table: its columns in order, its keys and its replica identity.

    `replica_identity` is `pg_class.relreplident` (`d` default, `n` nothing, `f` full, `i` index);
    `unique_not_null_indexes` lists indexes that could serve as `REPLICA IDENTITY USING INDEX`.
    """

    ref: TableRef
    columns: tuple[ColumnDef, ...]
    primary_key: tuple[str, ...]
    replica_identity: str
    replica_identity_index_columns: tuple[str, ...]
    relkind: str
    estimated_rows: int | None
    oid: int = 0
    owner: str = ""
    unique_not_null_indexes: tuple[str, ...] = ()


def read_tables(
    conn: psycopg.Connection[Any], refs: Sequence[TableRef]
) -> dict[TableRef, TableDef | None]:
    """Read the definitions of `refs` in two catalog queries; a missing table maps to None.

    Plain and partitioned tables count; views, sequences and the like are reported as missing.
    """
    result: dict[TableRef, TableDef | None] = dict.fromkeys(refs)
    if not refs:
        return result
    params = {"schemas": [r.schema for r in refs], "names": [r.name for r in refs]}
    rows = conn.execute(TABLES_QUERY, params).fetchall()
    by_oid: dict[int, tuple[Any, ...]] = {row[2]: row for row in rows}
    columns = _read_columns(conn, list(by_oid))
    for oid, row in by_oid.items():
        ref = TableRef(row[0], row[1])
        result[ref] = TableDef(
            ref=ref,
            columns=tuple(columns.get(oid, [])),
            primary_key=tuple(row[7]),
            replica_identity=row[4],
            replica_identity_index_columns=tuple(row[8]),
            relkind=row[3],
            estimated_rows=row[6],
            oid=oid,
            owner=row[5],
            unique_not_null_indexes=tuple(row[9]),
        )
    return result


def _read_columns(conn: psycopg.Connection[Any], oids: list[int]) -> dict[int, list[ColumnDef]]:
    columns: dict[int, list[ColumnDef]] = {}
    if not oids:
        return columns
    for row in conn.execute(COLUMNS_QUERY, {"oids": oids}).fetchall():
        columns.setdefault(row[0], []).append(
            ColumnDef(
                name=row[1],
                type_sql=row[2],
                type_oid=row[3],
                type_kind=TypeKind(row[4]),
                not_null=row[7],
                default_sql=row[8],
                identity=row[9],
                generated=row[10] != "",
                scalar_kind=TypeKind(row[5]),
                type_schema=row[6],
                base_type_sql=row[11],
                base_kind=TypeKind(row[12]),
            )
        )
    return columns


def quote_idents(conn: psycopg.Connection[Any], names: Iterable[str]) -> dict[str, str]:
    """Quote identifiers exactly as the server's `quote_ident` would, in one round trip."""
    unique = sorted(set(names))
    if not unique:
        return {}
    rows = conn.execute(QUOTE_IDENTS_QUERY, {"names": unique}).fetchall()
    return {row[0]: row[1] for row in rows}


def is_serial_default(column: ColumnDef) -> bool:
    """True when the column's default draws from a sequence (`serial` or a hand-made one)."""
    return column.default_sql is not None and column.default_sql.startswith("nextval(")


@dataclass(frozen=True)
class PublicationDef:
    """An existing publication: what it publishes and which actions."""

    name: str
    all_tables: bool
    by_schema: bool
    all_actions: bool
    tables: frozenset[TableRef]

    def exactly(self, refs: Iterable[TableRef]) -> bool:
        """True when it publishes inserts, updates and deletes of exactly `refs`, nothing else."""
        return (
            not self.all_tables
            and not self.by_schema
            and self.all_actions
            and self.tables == frozenset(refs)
        )


def read_publication(conn: psycopg.Connection[Any], name: str) -> PublicationDef | None:
    """The publication called `name`, or None when there is none."""
    row = conn.execute(PUBLICATION_QUERY, {"name": name}).fetchone()
    if row is None:
        return None
    all_tables, all_actions, has_schema_catalog = row
    rows = conn.execute(PUBLICATION_TABLES_QUERY, {"name": name}).fetchall()
    by_schema = False
    if has_schema_catalog:
        count = conn.execute(PUBLICATION_SCHEMAS_QUERY, {"name": name}).fetchone()
        by_schema = count is not None and count[0] > 0
    tables = frozenset(TableRef(schema, rel) for schema, rel in rows)
    return PublicationDef(name, all_tables, by_schema, all_actions, tables)


def read_table_privileges(
    conn: psycopg.Connection[Any], defs: dict[TableRef, TableDef | None]
) -> dict[int, tuple[bool, bool]]:
    """(current role may SELECT, current role owns) per table oid, in one query."""
    oids = [td.oid for td in defs.values() if td is not None]
    if not oids:
        return {}
    rows = conn.execute(TABLE_PRIVILEGES_QUERY, {"oids": oids}).fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}
