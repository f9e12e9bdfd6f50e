"""`validate` against real clusters: PostgreSQL 15 source, PostgreSQL 16 target."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.lsn import lsn_to_int
from cdc_tui.pgconn import PgParams
from cdc_tui.sources.postgres.catalog import TableDef, read_tables
from cdc_tui.targets.postgres.ddl import TablePlan, plan_tables
from cdc_tui.validation import DifferingRange, ValidationReport, validate_tables
from cdc_tui.validation.checksum import apply_session_settings, column_expr
from tests.pg import Database

pytestmark = pytest.mark.integration

Tables = list[tuple[TableDef, TablePlan]]

TYPES_DDL = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE typed (
    region text, n int,
    amount numeric(12,4), big numeric, f float8, at timestamptz, day date, span interval,
    doc jsonb, ints int[], words text[], m mood, moods mood[], b bytea, u uuid, note text,
    PRIMARY KEY (region, n)
);
INSERT INTO typed
SELECT CASE WHEN i % 3 = 0 THEN 'new york' WHEN i % 3 = 1 THEN 'Zürich' ELSE 'a,b"c' END, i,
       i * 1.2345, 123456789012345678901234567890.000000001 * i, 0.1 * i + 1e-300,
       timestamptz '2024-03-31 01:30:00+02' + i * interval '17 hours 3 seconds',
       date '2024-02-28' + i, make_interval(days => i, secs => i * 0.000001),
       jsonb_build_object('k', i, 'nested', jsonb_build_array(1.50, 'x', NULL, true)),
       ARRAY[i, NULL, -i], ARRAY['a b', 'c,d', '"q"', NULL, '😀'],
       (enum_range(NULL::mood))[i % 3 + 1], enum_range(NULL::mood),
       decode(md5(i::text), 'hex') || '\\x00'::bytea, md5(i::text)::uuid,
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'ñ 😀 🐘 ' || repeat('x', i % 7) END
  FROM generate_series(1, 60) AS i;
"""

NUMBERS_DDL = """
CREATE TABLE numbers (id int PRIMARY KEY, v text);
INSERT INTO numbers SELECT i, 'v' || i FROM generate_series(1, 100) AS i;
"""


TARGET_DEFAULTS = [
    ("timezone", "Asia/Kolkata"),
    ("datestyle", "SQL, DMY"),
    ("intervalstyle", "iso_8601"),
    ("extra_float_digits", "-2"),
    ("bytea_output", "escape"),
]


def _params(db: Database) -> PgParams:
    return PgParams(db.url(), password=db.superuser_password)


def _replicate(source_db: Database, target_db: Database, ddl: str, names: Sequence[str]) -> Tables:
    """Create and fill the source, then Step 0 and a plain COPY to the target: a mini pipeline."""
    source_db.execute(ddl)
    with source_db.admin() as src, target_db.admin() as tgt:
        defs = read_tables(src, [TableRef("public", n) for n in names])
        table_defs = [d for d in defs.values() if d is not None]
        plans = plan_tables(table_defs, target_schema="replica")
        tgt.execute("CREATE SCHEMA replica")
        apply_session_settings(src)
        apply_session_settings(tgt)
        for plan in plans:
            tgt.execute(plan.create_table)
            columns = sql.SQL(", ").join(column_expr(c) for c in plan.columns)
            copy_out = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(
                columns, sql.Identifier(plan.source.schema, plan.source.name)
            )
            copy_in = sql.SQL("COPY {} FROM STDIN").format(
                sql.Identifier(plan.target.schema, plan.target.name)
            )
            with src.cursor().copy(copy_out) as out, tgt.cursor().copy(copy_in) as into:
                for data in out:
                    into.write(data)
    return list(zip(table_defs, plans, strict=True))


def _validate(
    source_db: Database, target_db: Database, tables: Tables, **kw: Any
) -> ValidationReport:
    return validate_tables(_params(source_db), _params(target_db), tables, **kw)


def test_equal_tables_of_many_types_with_a_composite_key_are_ok(
    source_db: Database, target_db: Database
) -> None:
    tables = _replicate(source_db, target_db, TYPES_DDL + NUMBERS_DDL, ["typed", "numbers"])
    assert source_db.cluster.binaries.major < target_db.cluster.binaries.major
    # Validation pins how values print, whatever the sessions would default to.
    with target_db.admin() as conn:
        for setting, value in TARGET_DEFAULTS:
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(target_db.name), sql.Identifier(setting), sql.Literal(value)
                )
            )
    messages: list[str] = []
    report = _validate(source_db, target_db, tables, chunk_rows=7, progress=messages.append)
    assert report.ok, report.to_json()
    typed, numbers = report.tables
    assert (typed.table, typed.target_table) == ("public.typed", "replica.typed")
    assert (typed.source_rows, typed.target_rows, typed.chunks_compared) == (60, 60, 9)
    assert (numbers.source_rows, numbers.target_rows, numbers.chunks_compared) == (100, 100, 15)
    assert typed.note is None and not typed.differing_ranges
    assert "public.typed: round 1: 0 chunk(s) differ" in messages
    assert report.to_json()["tables"][1]["differing_ranges"] == []


def test_changed_missing_and_extra_rows_are_reported_in_their_chunks(
    source_db: Database, target_db: Database
) -> None:
    tables = _replicate(source_db, target_db, NUMBERS_DDL, ["numbers"])
    target_db.execute("UPDATE replica.numbers SET v = 'changed' WHERE id = 15")
    target_db.execute("DELETE FROM replica.numbers WHERE id = 42")
    target_db.execute("INSERT INTO replica.numbers VALUES (0, 'extra'), (1000, 'extra')")
    report = _validate(source_db, target_db, tables, chunk_rows=10)
    assert not report.ok
    (table,) = report.tables
    assert (table.source_rows, table.target_rows, table.chunks_compared) == (100, 101, 11)
    assert table.differing_ranges == [
        DifferingRange(None, "10", 10, 11),
        DifferingRange("10", "20", 10, 10),
        DifferingRange("40", "50", 10, 9),
        DifferingRange("100", None, 0, 1),
    ]
    assert report.to_json()["tables"][0]["differing_ranges"][2] == {
        "from": "40",
        "to": "50",
        "source_rows": 10,
        "target_rows": 9,
    }


def test_a_differing_composite_key_range_prints_as_postgresql_does(
    source_db: Database, target_db: Database
) -> None:
    tables = _replicate(source_db, target_db, TYPES_DDL, ["typed"])
    target_db.execute("UPDATE replica.typed SET doc = doc || '{\"k\": 0}' WHERE n = 30")
    report = _validate(source_db, target_db, tables, chunk_rows=20)
    (table,) = report.tables
    # In the clusters' C locale keys sort ("Zürich", 1..58), ("a,b""c", 2..59), ("new york", 3..60).
    assert table.differing_ranges == [DifferingRange('("a,b""c",59)', '("new york",60)', 20, 20)]


def test_a_table_without_a_primary_key_compares_counts_and_an_unordered_checksum(
    source_db: Database, target_db: Database
) -> None:
    ddl = "CREATE TABLE log (line text); INSERT INTO log VALUES ('a'), ('a'), ('b'), (NULL);"
    tables = _replicate(source_db, target_db, ddl, ["log"])
    equal = _validate(source_db, target_db, tables).tables[0]
    assert equal.equal and equal.chunks_compared == 1
    assert equal.note is not None and "no primary key" in equal.note
    target_db.execute("DELETE FROM replica.log WHERE ctid = (SELECT min(ctid) FROM replica.log)")
    target_db.execute("INSERT INTO replica.log VALUES ('c')")
    differ = _validate(source_db, target_db, tables).tables[0]
    assert differ.differing_ranges == [DifferingRange(None, None, 4, 4)]


ENUM_KEY_DDL = """
CREATE TYPE animal AS ENUM ('zebra', 'mole', 'ant');
CREATE DOMAIN weight AS numeric(8,2) CHECK (VALUE > 0);
CREATE TABLE zoo (kind animal, n int, kinds animal[], w weight, PRIMARY KEY (kind, n));
INSERT INTO zoo SELECT k, n, ARRAY[k, 'ant'], n + 0.5
  FROM unnest(enum_range(NULL::animal)) AS k, generate_series(1, 5) AS n;
"""


def test_an_enum_key_that_became_text_compares_equal_and_narrows_a_difference(
    source_db: Database, target_db: Database
) -> None:
    tables = _replicate(source_db, target_db, ENUM_KEY_DDL, ["zoo"])
    types = {c.name: (c.source_type, c.target_type) for c in tables[0][1].columns}
    assert types["kind"] == ("animal", "text") and types["kinds"] == ("animal[]", "text[]")
    # Enum order (zebra, mole, ant) is not text order: chunks must use one order on both sides.
    report = _validate(source_db, target_db, tables, chunk_rows=4)
    assert report.ok, report.to_json()
    assert report.tables[0].chunks_compared == 4
    target_db.execute("UPDATE replica.zoo SET w = 9 WHERE kind = 'mole' AND n = 2")
    (table,) = _validate(source_db, target_db, tables, chunk_rows=4).tables
    assert table.differing_ranges == [DifferingRange("(ant,4)", "(mole,3)", 4, 4)]


def test_a_target_that_catches_up_between_rounds_converges(
    source_db: Database, target_db: Database
) -> None:
    tables = _replicate(source_db, target_db, NUMBERS_DDL, ["numbers"])
    target_db.execute("UPDATE replica.numbers SET v = 'in flight' WHERE id = 77")
    before = _lsn(source_db)
    seen: list[int] = []

    def wait(lsn: int) -> bool:
        seen.append(lsn)
        if len(seen) == 2:  # the change is "applied" while round 2 waits
            target_db.execute("UPDATE replica.numbers SET v = 'v77' WHERE id = 77")
        return True

    report = _validate(source_db, target_db, tables, chunk_rows=10, wait_for_target=wait)
    assert report.ok, report.to_json()
    assert len(seen) == 2 and before <= seen[0] <= seen[1]
    assert report.tables[0].source_rows == report.tables[0].target_rows == 100


def test_a_difference_that_persists_is_reported_after_every_round(
    source_db: Database, target_db: Database
) -> None:
    tables = _replicate(source_db, target_db, NUMBERS_DDL, ["numbers"])
    target_db.execute("UPDATE replica.numbers SET v = 'stuck' WHERE id = 77")
    seen: list[int] = []
    report = _validate(
        source_db, target_db, tables, chunk_rows=10, rounds=3, wait_for_target=_record(seen)
    )
    assert len(seen) == 3
    assert report.tables[0].differing_ranges == [DifferingRange("70", "80", 10, 10)]

    def wait_then_give_up(_lsn: int) -> bool:
        # The source moves on after round 1; round 2 then times out before reading the target.
        seen.append(_lsn)
        source_db.execute("DELETE FROM numbers WHERE id = 75")
        return len(seen) == 4

    late = _validate(
        source_db, target_db, tables, chunk_rows=10, wait_for_target=wait_then_give_up
    ).tables[0]
    assert late.differing_ranges == [DifferingRange("70", "80", 10, 10)]
    assert late.note == (
        "target did not catch up with the source in round 2; "
        "the differing ranges are those of round 1"
    )


def test_a_target_that_does_not_catch_up_is_not_compared(
    source_db: Database, target_db: Database
) -> None:
    tables = _replicate(source_db, target_db, NUMBERS_DDL, ["numbers"])
    report = _validate(source_db, target_db, tables, wait_for_target=lambda _lsn: False)
    assert not report.ok
    (table,) = report.tables
    assert table.note is not None and "did not catch up" in table.note
    assert (table.target_rows, table.chunks_compared, table.differing_ranges) == (None, 0, [])


def test_a_missing_target_table_is_reported_not_raised(
    source_db: Database, target_db: Database
) -> None:
    tables = _replicate(source_db, target_db, NUMBERS_DDL, ["numbers"])
    target_db.execute("DROP TABLE replica.numbers")
    (table,) = _validate(source_db, target_db, tables).tables
    assert not table.equal and table.note is not None and "does not exist" in table.note


def _record(seen: list[int]) -> Callable[[int], bool]:
    def wait(lsn: int) -> bool:
        seen.append(lsn)
        return True

    return wait


def _lsn(db: Database) -> int:
    return lsn_to_int(str(db.scalar("SELECT pg_current_wal_insert_lsn()::text")))


def test_a_key_whose_collation_differs_on_the_target_is_chunked_in_one_order(
    source_db: Database, target_db: Database
) -> None:
    if not source_db.scalar("SELECT count(*) FROM pg_collation WHERE collname = 'und-x-icu'"):
        pytest.skip("the source server was built without ICU")
    # ICU sorts a < B < c; the target's C locale sorts B < a < c: boundaries must mean the same.
    ddl = """
    CREATE TABLE words (w text COLLATE "und-x-icu" PRIMARY KEY);
    INSERT INTO words SELECT chr(65 + i) || x FROM generate_series(0, 25) AS i,
        unnest(ARRAY['', 'a', 'B']) AS x;
    INSERT INTO words SELECT lower(chr(65 + i)) || 'z' FROM generate_series(0, 25) AS i;
    """
    tables = _replicate(source_db, target_db, ddl, ["words"])
    report = _validate(source_db, target_db, tables, chunk_rows=10)
    assert report.ok, report.to_json()
    assert report.tables[0].chunks_compared == 11
    target_db.execute("DELETE FROM replica.words WHERE w = 'bz'")
    (table,) = _validate(source_db, target_db, tables, chunk_rows=10).tables
    assert [(r.source_rows, r.target_rows) for r in table.differing_ranges] == [(10, 9)]
