"""The Step 0 plan, executed on a real target: weird names survive quoting, types map as planned."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.sources.postgres.catalog import read_tables
from cdc_tui.targets.postgres.ddl import TablePlan, plan_tables, plan_to_json, render_plan
from tests.pg import Database

pytestmark = pytest.mark.integration

SCHEMA = "Weird Schema"
LONG_NAME = "l" * 63
LONG_UTF8 = "é" * 31 + "x"  # 63 bytes: the longest name PostgreSQL keeps intact
WEIRD_NAMES = [
    "Mixed Case",
    'weird"quote',
    "brack]et",
    "semi;colon",
    "order",
    LONG_NAME,
    LONG_UTF8,
    'x"; DROP TABLE y; --',
]

# (column, source type, expected target format_type, not null)
TYPED_COLUMNS = [
    ("id", "serial", "integer", True),
    ("ident", "bigint GENERATED ALWAYS AS IDENTITY", "bigint", True),
    ("amount", "numeric(12,2)", "numeric(12,2)", False),
    ("n", "numeric", "numeric", False),
    ("at", "timestamptz", "timestamp with time zone", False),
    ("doc", "jsonb", "jsonb", False),
    ("ints", "int[]", "integer[]", False),
    ("u", "uuid", "uuid", False),
    ("b", "bytea", "bytea", False),
    ("mood", '"Weird Schema"."Mood ""Type"""', "text", False),
    ("moods", '"Weird Schema"."Mood ""Type"""[]', "text[]", False),
    ("price", '"Weird Schema".price', "numeric(10,3)", False),
    ("pair", '"Weird Schema".pair', "text", False),
    ("label", "text NOT NULL", "text", True),
    ("twice", "int GENERATED ALWAYS AS (id * 2) STORED", "integer", False),
]

TARGET_COLUMNS_QUERY = """
SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull
  FROM pg_catalog.pg_attribute AS a
  JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

TARGET_KEY_QUERY = """
SELECT array_agg(a.attname::text ORDER BY k.ord)
  FROM pg_catalog.pg_index AS i
  JOIN pg_catalog.pg_class AS c ON c.oid = i.indrelid
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = k.attnum
 WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary
"""


def _build_source(db: Database) -> list[TableRef]:
    schema = sql.Identifier(SCHEMA)
    with db.admin() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        conn.execute(
            sql.SQL("CREATE TYPE {} AS ENUM ('happy', 'sad')").format(
                sql.Identifier(SCHEMA, 'Mood "Type"')
            )
        )
        conn.execute(
            sql.SQL("CREATE DOMAIN {}.price AS numeric(10,3) CHECK (VALUE >= 0)").format(schema)
        )
        conn.execute(sql.SQL("CREATE TYPE {}.pair AS (x int, y text)").format(schema))
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(type_sql))
            for name, type_sql, _, _ in TYPED_COLUMNS
        )
        conn.execute(
            sql.SQL("CREATE TABLE {}.typed ({}, PRIMARY KEY (id, ident))").format(schema, columns)
        )
        for name in WEIRD_NAMES:
            weird_cols = sql.SQL(", ").join(
                sql.SQL("{} text").format(sql.Identifier(other)) for other in WEIRD_NAMES
            )
            conn.execute(
                sql.SQL("CREATE TABLE {} ({} int PRIMARY KEY, {})").format(
                    sql.Identifier(SCHEMA, name), sql.Identifier("Key Col"), weird_cols
                )
            )
    return [TableRef(SCHEMA, "typed"), *(TableRef(SCHEMA, n) for n in WEIRD_NAMES)]


def _plans(source_db: Database, refs: list[TableRef], target_schema: str | None) -> list[TablePlan]:
    with source_db.admin() as conn:
        defs = read_tables(conn, refs)
    assert all(defs.values()), defs
    return plan_tables([d for d in defs.values() if d is not None], target_schema=target_schema)


def _execute(db: Database, script: str) -> None:
    with db.admin() as conn:
        conn.execute(script.encode())  # the script under test, as a user would run it


def _target_columns(conn: psycopg.Connection[Any], ref: TableRef) -> list[tuple[Any, ...]]:
    return conn.execute(TARGET_COLUMNS_QUERY, (ref.schema, ref.name)).fetchall()


@pytest.mark.parametrize("target_schema", [None, 'replica "x" schema'])
def test_plan_creates_matching_tables_on_the_target(
    source_db: Database, target_db: Database, target_schema: str | None
) -> None:
    refs = _build_source(source_db)
    plans = _plans(source_db, refs, target_schema)
    script = render_plan(plans, None)
    with source_db.admin() as conn:
        assert render_plan(plans, conn) == script  # no connection needed to render
    _execute(target_db, "CREATE TABLE public.y (id int)")
    _execute(target_db, script)
    _execute(target_db, script)  # IF NOT EXISTS: running Step 0 twice is harmless
    assert target_db.scalar("SELECT to_regclass('public.y') IS NOT NULL") is True
    with target_db.admin() as conn:
        for plan in plans:
            assert plan.target == TableRef(target_schema or SCHEMA, plan.source.name)
            expected = [(c.name, c.target_type, not c.nullable) for c in plan.columns]
            assert _target_columns(conn, plan.target) == expected
            key = conn.execute(TARGET_KEY_QUERY, (plan.target.schema, plan.target.name))
            assert key.fetchone() == (list(plan.primary_key),)
        typed = TableRef(target_schema or SCHEMA, "typed")
        assert _target_columns(conn, typed) == [(n, t, nn) for n, _, t, nn in TYPED_COLUMNS]
        weird = _target_columns(conn, TableRef(target_schema or SCHEMA, 'x"; DROP TABLE y; --'))
        assert [row[0] for row in weird][1:] == WEIRD_NAMES
    assert "DEFAULT" not in script and "nextval" not in script and "GENERATED" not in script


def test_plan_json_describes_each_mapping(source_db: Database) -> None:
    refs = _build_source(source_db)
    data = plan_to_json(_plans(source_db, refs[:1], None))
    assert data["target_kind"] == "postgresql"
    [table] = data["tables"]
    assert table["source"] == table["target"] == '"Weird Schema".typed'
    assert table["primary_key"] == ["id", "ident"]
    by_name = {c["name"]: c for c in table["columns"]}
    assert by_name["mood"]["target_type"] == "text" and "enum" in by_name["mood"]["note"]
    assert by_name["price"]["source_type"] == '"Weird Schema".price'
    assert "domain" in by_name["price"]["note"]
    assert by_name["id"]["nullable"] is False and "sequence" in by_name["id"]["note"]
    assert table["ddl"].startswith('CREATE SCHEMA IF NOT EXISTS "Weird Schema";')


def test_partitioned_table_counts_as_a_table(source_db: Database, target_db: Database) -> None:
    source_db.execute(
        "CREATE TABLE public.events (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)"
    )
    source_db.execute(
        "CREATE TABLE public.events_2026 PARTITION OF public.events "
        "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"
    )
    source_db.execute("INSERT INTO public.events VALUES (1, '2026-05-01'), (2, '2026-06-01')")
    source_db.execute("ANALYZE public.events_2026")
    ref = TableRef("public", "events")
    with source_db.admin() as conn:
        td = read_tables(conn, [ref])[ref]
    assert td is not None and td.relkind == "p" and td.estimated_rows == 2
    _execute(target_db, render_plan(plan_tables([td], target_schema=None)))
    with target_db.admin() as conn:
        assert _target_columns(conn, ref) == [("id", "integer", True), ("at", "date", True)]
