"""Enum labels read from a real PostgreSQL catalog, then rendered by the SQL Server planner.

The source is the session's throwaway cluster; the T-SQL is only rendered (no SQL Server runs
here), so this proves the labels, their order and the CHECK text, not that SQL Server accepts it.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from cdc_tui.domain.spec import TableRef
from cdc_tui.sources.postgres.catalog import TableDef, read_tables
from cdc_tui.sources.postgres.enums import read_enum_labels
from cdc_tui.targets.mssql.ddl import plan_tables, render_script
from cdc_tui.targets.mssql.types import KEY_COLLATION
from tests.pg import Database

pytestmark = pytest.mark.integration

STATUS = '"Sales Ops"."Order ""Status"" x"'
# Each statement on its own: ALTER TYPE ... ADD VALUE may not run inside a transaction block
# on older servers.
SETUP = [
    'CREATE SCHEMA "Sales Ops"',
    "CREATE SCHEMA other",
    f"CREATE TYPE {STATUS} AS ENUM ('new', 'it''s shipped', 'naïve', '😀 done', 'a\"b]c')",
    f"ALTER TYPE {STATUS} ADD VALUE 'held' BEFORE 'it''s shipped'",
    f"ALTER TYPE {STATUS} ADD VALUE 'first' BEFORE 'new'",
    f"ALTER TYPE {STATUS} ADD VALUE 'mid' AFTER 'held'",
    f"ALTER TYPE {STATUS} ADD VALUE 'last'",
    f'CREATE DOMAIN "Sales Ops"."status dom" AS {STATUS} CHECK (VALUE <> \'first\')',
    'CREATE DOMAIN other.status_dd AS "Sales Ops"."status dom"',
    "CREATE TYPE other.mood AS ENUM ('sad', 'ok')",
    "CREATE TYPE public.mood AS ENUM ('meh')",
    "CREATE TYPE other.only_in_arrays AS ENUM ('x')",
    "CREATE TYPE other.empty AS ENUM ()",
    "CREATE DOMAIN other.moods AS other.mood[]",
    f"""CREATE TABLE "Sales Ops"."Orders" (
        st {STATUS} NOT NULL,
        id int NOT NULL,
        sd "Sales Ops"."status dom",
        sdd other.status_dd,
        m other.mood,
        pm public.mood,
        arr other.only_in_arrays[],
        ms other.moods,
        e other.empty,
        t text,
        PRIMARY KEY (st, id)
    )""",
    "CREATE TABLE public.plain (id int PRIMARY KEY, t text)",
]
STATUS_LABELS = [
    "first", "new", "held", "mid", "it's shipped", "naïve", "😀 done", 'a"b]c', "last",
]  # fmt: skip
ORDERS = TableRef("Sales Ops", "Orders")
PLAIN = TableRef("public", "plain")


def _defs(db: Database) -> dict[TableRef, TableDef]:
    for statement in SETUP:
        db.execute(statement)
    with db.admin() as conn:
        found = read_tables(conn, [ORDERS, PLAIN])
    return {ref: td for ref, td in found.items() if td is not None}


def test_labels_come_keyed_as_the_planner_looks_them_up_in_sort_order(source_db: Database) -> None:
    defs = _defs(source_db)
    with source_db.admin() as conn:
        labels = read_enum_labels(conn, [defs[ORDERS]])
        # PostgreSQL's own order of the labels, independent of the query under test.
        row = conn.execute(f"SELECT enum_range(NULL::{STATUS})::text[]".encode()).fetchone()
    assert row is not None and row[0] == STATUS_LABELS
    # format_type() qualifies a type outside the search_path and quotes odd names; the
    # domain columns share their base enum's key; arrays (and domains over them) need none.
    assert labels == {
        STATUS: STATUS_LABELS,
        "other.mood": ["sad", "ok"],
        "mood": ["meh"],
        "other.empty": [],
    }
    types = {c.name: c.type_sql for c in defs[ORDERS].columns}
    assert types["st"] == STATUS and types["pm"] == "mood" and types["m"] == "other.mood"


def test_plan_tables_renders_the_check_from_the_labels(source_db: Database) -> None:
    defs = _defs(source_db)
    with source_db.admin() as conn:
        labels = read_enum_labels(conn, list(defs.values()))
    plans = plan_tables([defs[ORDERS], defs[PLAIN]], target_schema="stage", enum_labels=labels)
    columns = {c.name: c for c in plans[0].columns}

    allowed = (
        "N'first', N'new', N'held', N'mid', N'it''s shipped', N'naïve', N'😀 done', "
        "N'a\"b]c', N'last'"
    )
    # "it's shipped" is the longest label (12 UTF-16 units; the emoji one counts 7).
    assert (columns["st"].target_type, columns["st"].collation) == ("nvarchar(12)", KEY_COLLATION)
    for name in ("st", "sd", "sdd"):
        assert columns[name].check == f"[{name}] IN ({allowed})", name
    assert columns["sd"].collation is None and columns["sd"].target_type == "nvarchar(12)"
    assert (columns["m"].target_type, columns["m"].check) == (
        "nvarchar(3)",
        "[m] IN (N'sad', N'ok')",
    )
    assert columns["pm"].check == "[pm] IN (N'meh')"
    assert (columns["e"].target_type, columns["e"].check) == ("nvarchar(1)", None)
    assert columns["arr"].target_type == columns["ms"].target_type == "nvarchar(max)"

    script = render_script(plans)
    assert f"[st] nvarchar(12) COLLATE {KEY_COLLATION} NOT NULL CHECK ([st] IN ({allowed}))" in (
        script
    )
    assert "enum labels not read" not in " ".join(str(c.note) for c in plans[0].columns)

    # Without the labels the same columns fall back to nvarchar(63) and no CHECK.
    unlabelled = {c.name: c for c in plan_tables([defs[ORDERS]])[0].columns}
    assert (unlabelled["st"].target_type, unlabelled["st"].check) == ("nvarchar(63)", None)


def test_tables_without_enums_read_nothing(source_db: Database) -> None:
    defs = _defs(source_db)

    class NoQueries:
        def execute(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("no enum column, so no catalog query")

    assert read_enum_labels(cast(Any, NoQueries()), [defs[PLAIN]]) == {}
    assert read_enum_labels(cast(Any, NoQueries()), []) == {}
