"""Step 0 on a real target: creates what is missing, keeps what fits, refuses what does not."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.errors import OperationError, TargetError
from cdc_tui.pgconn import PgParams, connect
from cdc_tui.sources.postgres.catalog import read_tables
from cdc_tui.targets.postgres.ddl import TablePlan, plan_tables
from cdc_tui.targets.postgres.schema import SchemaIncompatibleError, apply_step0
from tests.pg import Database

pytestmark = pytest.mark.integration

SOURCE_SCHEMA = "Src Schema"
TARGET_SCHEMA = 'Target "Schema"'
HOSTILE_NAMES = ["Mixed Case", 'weird"quote', 'x"; DROP TABLE y; --']

TYPED_COLUMNS = """
    id serial PRIMARY KEY, amount numeric(12,2), at timestamptz, doc jsonb, ints int[], u uuid,
    b bytea, mood {schema}.mood, moods {schema}.mood[], price {schema}.price,
    pair {schema}.pair, label text NOT NULL
"""

TARGET_COLUMNS_QUERY = """
SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull
  FROM pg_catalog.pg_attribute AS a
 WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

TARGET_KEY_QUERY = """
SELECT array_agg(a.attname::text ORDER BY k.ord)
  FROM pg_catalog.pg_index AS i
 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indrelid = %s::regclass AND i.indisprimary
"""


def _params(db: Database) -> PgParams:
    return PgParams(db.url(), password=db.superuser_password)


def _regclass(ref: TableRef) -> str:
    return sql.Identifier(ref.schema, ref.name).as_string()


def _plans(db: Database, refs: list[TableRef], target_schema: str | None) -> list[TablePlan]:
    with db.admin() as conn:
        defs = read_tables(conn, refs)
    return plan_tables([defs[r] for r in refs if defs[r] is not None], target_schema=target_schema)


def _build_typed_source(db: Database) -> list[TableRef]:
    schema = sql.Identifier(SOURCE_SCHEMA)
    with db.admin() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        conn.execute(sql.SQL("CREATE TYPE {}.mood AS ENUM ('happy', 'sad')").format(schema))
        conn.execute(sql.SQL("CREATE DOMAIN {}.price AS numeric(10,3)").format(schema))
        conn.execute(sql.SQL("CREATE TYPE {}.pair AS (x int, y text)").format(schema))
        conn.execute(
            sql.SQL("CREATE TABLE {schema}.typed (" + TYPED_COLUMNS + ")").format(schema=schema)
        )
        for name in HOSTILE_NAMES:
            conn.execute(
                sql.SQL("CREATE TABLE {} ({} int PRIMARY KEY, {} text)").format(
                    sql.Identifier(SOURCE_SCHEMA, name),
                    sql.Identifier("Key Col"),
                    sql.Identifier(name),
                )
            )
    return [TableRef(SOURCE_SCHEMA, "typed"), *(TableRef(SOURCE_SCHEMA, n) for n in HOSTILE_NAMES)]


def _columns(conn: psycopg.Connection[Any], ref: TableRef) -> list[tuple[Any, ...]]:
    return conn.execute(TARGET_COLUMNS_QUERY, (_regclass(ref),)).fetchall()


def test_step0_creates_typed_and_hostile_tables_then_keeps_them(
    source_db: Database, target_db: Database
) -> None:
    plans = _plans(source_db, _build_typed_source(source_db), TARGET_SCHEMA)
    target_db.execute("CREATE TABLE public.y (id int)")
    logged: list[str] = []
    with connect(_params(target_db)) as conn:
        lines = apply_step0(conn, plans, logged.append)
        assert lines == logged
        assert lines[0] == 'Step 0: created schema "Target ""Schema"""'
        assert [line.split(" (")[0] for line in lines[1:]] == [
            f"Step 0: created table {p.target}" for p in plans
        ]
        for plan in plans:
            expected = [(c.name, c.target_type, not c.nullable) for c in plan.columns]
            assert _columns(conn, plan.target) == expected
            key = conn.execute(TARGET_KEY_QUERY, (_regclass(plan.target),)).fetchone()
            assert key == (list(plan.primary_key),)
        typed = dict((n, t) for n, t, _ in _columns(conn, plans[0].target))
        assert (typed["mood"], typed["moods"], typed["price"], typed["pair"]) == (
            "text",
            "text[]",
            "numeric(10,3)",
            "text",
        )
        assert target_db.scalar("SELECT to_regclass('public.y') IS NOT NULL") is True

        # A second run, with an extra nullable column added meanwhile, changes nothing.
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN note text").format(
                sql.Identifier(TARGET_SCHEMA, "Mixed Case")
            )
        )
        again = apply_step0(conn, plans, lambda _line: None)
    assert [line.split(": compatible")[0] for line in again] == [
        f"Step 0: kept existing table {p.target}" for p in plans
    ]
    assert again[1] == (
        'Step 0: kept existing table "Target ""Schema"""."Mixed Case": compatible, '
        "1 extra column ignored"
    )


def test_step0_skips_create_schema_without_database_create(
    source_db: Database, target_db: Database
) -> None:
    source_db.execute("CREATE TABLE public.items (id bigint PRIMARY KEY, name text)")
    plans = _plans(source_db, [TableRef("public", "items")], "app")
    role, password = f"writer_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    target_db.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
        .format(sql.Identifier(role), sql.Literal(password))
        .as_string()
    )
    writer = PgParams(target_db.url(user=role), password=password)
    try:
        # Without CREATE on the database, a missing schema is a clear error and nothing is made.
        with connect(writer) as conn, pytest.raises(TargetError) as missing:
            apply_step0(conn, plans, lambda _line: None)
        assert "Step 0 failed on target table app.items" in missing.value.message
        assert "permission denied for database" in missing.value.message
        target_db.execute(
            sql.SQL("CREATE SCHEMA app AUTHORIZATION {}").format(sql.Identifier(role)).as_string()
        )
        with connect(writer) as conn:
            lines = apply_step0(conn, plans, lambda _line: None)
        assert lines == ["Step 0: created table app.items (2 columns, primary key: id)"]
    finally:
        with target_db.admin() as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


INCOMPATIBLE = [
    (
        "CREATE TABLE public.orders (id int PRIMARY KEY, total integer)",
        "Target table public.orders is not compatible: column total is integer, expected "
        "numeric(12,2); drop or fix the target table, or choose another --target-schema.",
    ),
    ("CREATE TABLE public.orders (id int PRIMARY KEY)", "column total is missing"),
    (
        "CREATE TABLE public.orders (id int NOT NULL, total numeric(12,2))",
        "primary key is none, expected (id)",
    ),
    (
        "CREATE TABLE public.orders (id int PRIMARY KEY, total numeric(12,2), x int NOT NULL)",
        "extra column x is NOT NULL without a default",
    ),
    (
        "CREATE TABLE public.orders (id int PRIMARY KEY, total numeric(12,2) NOT NULL)",
        "column total is NOT NULL but the source allows NULL",
    ),
    ("CREATE VIEW public.orders AS SELECT 1 AS id", "it is a view"),
]


def test_step0_refuses_incompatible_tables_and_creates_nothing(
    source_db: Database, target_db: Database
) -> None:
    source_db.execute("CREATE SCHEMA sales")
    source_db.execute("CREATE TABLE sales.first (id int PRIMARY KEY)")
    source_db.execute("CREATE TABLE public.orders (id int PRIMARY KEY, total numeric(12,2))")
    plans = _plans(source_db, [TableRef("sales", "first"), TableRef("public", "orders")], None)
    logged: list[str] = []
    with connect(_params(target_db)) as conn:
        for ddl, expected in INCOMPATIBLE:
            conn.execute(ddl.encode())
            with pytest.raises(SchemaIncompatibleError) as refused:
                apply_step0(conn, plans, logged.append)
            assert expected in refused.value.message
            assert isinstance(refused.value, OperationError)
            # sales.first came first in the plan: its schema and table were rolled back.
            assert conn.execute("SELECT to_regnamespace('sales')").fetchone() == (None,)
            conn.execute(
                b"DROP VIEW public.orders" if "VIEW" in ddl else b"DROP TABLE public.orders"
            )
    assert logged == []
