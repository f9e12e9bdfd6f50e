"""The SQL Server value converters fed with PostgreSQL's real text output, not our idea of it.

Each column type the mapping accepts is stored in a real source database, read back as text
under the source sessions' settings, and converted; where PostgreSQL can compute the expected
result itself (array_to_json, hstore_to_json, intervalstyle=iso_8601, to_char in UTC) it is the
oracle. No SQL Server runs here: what pymssql sends is pinned in tests/unit/test_mssql_values.py.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.localpg import LocalCluster
from cdc_tui.sources.postgres.catalog import TableDef, read_tables
from cdc_tui.targets.mssql.ddl import TablePlan, plan_tables
from cdc_tui.targets.mssql.errors import ValueRejected
from cdc_tui.targets.mssql.types import NumericPolicy
from cdc_tui.targets.mssql.values import converter_for, row_converter
from tests.pg import Database, create_database, drop_database

pytestmark = pytest.mark.integration

SCHEMA = "vals"
# The settings of every source session: replication stream and full-load COPY alike.
SESSION_SETTINGS = (
    "SET datestyle = ISO",
    "SET intervalstyle = postgres",
    "SET timezone = UTC",
    "SET extra_float_digits = 3",
    "SET bytea_output = hex",
    "SET client_encoding = UTF8",
)
SETUP = f"""
CREATE SCHEMA {SCHEMA};
SET search_path = {SCHEMA}, public;
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN price AS numeric(10,3);
CREATE TYPE pair AS (x int, y text, z numeric);
CREATE TYPE textrange AS RANGE (subtype = text, collation = "C");
"""


def f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


@dataclass(frozen=True)
class Refused:
    """The value is refused; `reason` is what follows `column "name": `."""

    reason: str


# column -> (type, [(input literal, expected converted value)])
Cases = dict[str, tuple[str, list[tuple[str, object]]]]

SCALARS: Cases = {
    "i2": ("smallint", [("-32768", -32768), ("32767", 32767)]),
    "i4": ("integer", [("-2147483648", -2147483648), ("2147483647", 2147483647)]),
    "i8": ("bigint", [("-9223372036854775808", -(2**63)), ("9223372036854775807", 2**63 - 1)]),
    "flag": ("boolean", [("true", 1), ("false", 0)]),
    "r4": ("real", [
        ("3.4028235e38", f32(3.4028235e38)), ("-1.1754944e-38", f32(-1.1754944e-38)),
        ("1e-45", f32(1e-45)), ("0.1", f32(0.1)), ("-0", -0.0),
        ("NaN", Refused("real NaN is not a finite number, the only kind real holds")),
        ("Infinity", Refused("real Infinity is not a finite number, the only kind real holds")),
    ]),
    "r8": ("double precision", [
        ("1.7976931348623157e308", 1.7976931348623157e308), ("5e-324", 5e-324), ("0.1", 0.1),
        ("-Infinity", Refused(
            "double precision -Infinity is not a finite number, the only kind float(53) holds")),
    ]),
    "money2": ("numeric(10,2)", [
        ("-12345678.90", Decimal("-12345678.90")), ("0", Decimal("0.00")),
        ("0.005", Decimal("0.01")),  # PostgreSQL itself rounds on the way in
        ("NaN", Refused("numeric NaN is not a finite number, the only kind decimal(10,2) holds")),
    ]),
    "n38": ("numeric(38,0)", [("9" * 38, Decimal("9" * 38)),
                              ("-" + "9" * 38, Decimal("-" + "9" * 38))]),
    "n3838": ("numeric(38,38)", [("0." + "1" * 38, Decimal("0." + "1" * 38))]),
    "price": ("price", [("1.5", Decimal("1.500"))]),
    "at_tz": ("timestamp with time zone", [
        ("0001-01-01 00:00:00+00", "0001-01-01 00:00:00.000000 +00:00"),
        ("9999-12-31 23:59:59.999999+00", "9999-12-31 23:59:59.999999 +00:00"),
        ("2024-01-02 03:04:05.123456+05:30", "2024-01-01 21:34:05.123456 +00:00"),
        ("2024-01-02 03:04:05.5-03:00:15", "2024-01-02 06:04:20.500000 +00:00"),
        ("10000-01-01 00:00:00+00", Refused("timestamp with time zone 10000-01-01 00:00:00+00 "
                                            "is after 9999-12-31, the last day SQL Server holds")),
        ("0001-12-31 23:59:59+00 BC", Refused("timestamp with time zone 0001-12-31 23:59:59+00 BC "
                                              "is before 0001-01-01, the first day SQL Server "
                                              "holds")),
        ("infinity", Refused("timestamp with time zone infinity is after 9999-12-31, the last day "
                             "SQL Server holds")),
        ("-infinity", Refused("timestamp with time zone -infinity is before 0001-01-01, the first "
                              "day SQL Server holds")),
    ]),
    "at": ("timestamp without time zone", [
        ("0001-01-01 00:00:00", "0001-01-01 00:00:00.000000"),
        ("9999-12-31 23:59:59.999999", "9999-12-31 23:59:59.999999"),
        ("2024-02-29 12:00:00.5", "2024-02-29 12:00:00.500000"),
        ("4713-01-01 00:00:00 BC", Refused("timestamp 4713-01-01 00:00:00 BC is before "
                                           "0001-01-01, the first day SQL Server holds")),
        ("294276-12-31 23:59:59.999999", Refused("timestamp 294276-12-31 23:59:59.999999 is after "
                                                 "9999-12-31, the last day SQL Server holds")),
    ]),
    "born": ("date", [
        ("0001-01-01", "0001-01-01"), ("9999-12-31", "9999-12-31"),
        ("10000-01-01", Refused("date 10000-01-01 is after 9999-12-31, the last day SQL Server "
                                "holds")),
        ("0001-01-01 BC", Refused("date 0001-01-01 BC is before 0001-01-01, the first day SQL "
                                  "Server holds")),
        ("5874897-12-31", Refused("date 5874897-12-31 is after 9999-12-31, the last day SQL "
                                  "Server holds")),
    ]),
    "tod": ("time without time zone", [
        ("00:00:00", "00:00:00.000000"), ("23:59:59.999999", "23:59:59.999999"),
        ("12:34:56.789", "12:34:56.789000"),
        ("24:00:00", Refused("time 24:00:00 is after 23:59:59.999999, the last time of day SQL "
                             "Server holds")),
    ]),
    "todz": ("time with time zone", [
        ("13:45:00.5+05:30", "13:45:00.5+05:30"), ("24:00:00-15:59", "24:00:00-15:59"),
    ]),
    "gap": ("interval day to second(3)", [("1 day 02:03:04.5678", "P1DT2H3M4.568S")]),
    "u": ("uuid", [("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
                    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")]),
    "blob": ("bytea", [("\\x", b""), ("\\x" + bytes(range(256)).hex(), bytes(range(256)))]),
    "body": ("text", [("O'Brien 😀 \t\n", "O'Brien 😀 \t\n"), ("", "")]),
    "short": ("character varying(3)", [
        ("a😀", "a😀"),
        ("😀😀😀", Refused("text 😀😀😀 is 6 UTF-16 units long, longer than the 3 nvarchar(3) "
                           "holds")),
    ]),
    "code": ("character(3)", [("a", "a  ")]),
    "feel": ("mood", [("happy", "happy")]),
    "doc": ("json", [('{"b": 1,  "a": [1, 2]}', '{"b": 1,  "a": [1, 2]}')]),
    "docb": ("jsonb", [('{"b":1,"a":[1,2]}', '{"a": [1, 2], "b": 1}')]),
}  # fmt: skip

WIDE: Cases = {
    "big": ("numeric(40,10)", [
        ("1.1234567850", Decimal("1.12345678")), ("1.1234567950", Decimal("1.12345680")),
        ("-1.1234567851", Decimal("-1.12345679")),
        ("9" * 30 + ".9999999999", Refused(
            f"numeric {'9' * 30}.{'9' * 8}… has 31 integer digits once rounded, more than the 30 "
            "decimal(38,8) holds")),
    ]),
}  # fmt: skip

LOOSE: Cases = {
    "any_num": ("numeric", [
        ("NaN", "NaN"), ("-12345.678900", "-12345.678900"), ("1e-5", "0.00001"),
        ("1" * 100, "1" * 100),
        ("1" * 101, Refused(f"numeric {'1' * 39}… is 101 UTF-16 units long, longer than the 100 "
                            "nvarchar(100) holds")),
    ]),
}  # fmt: skip

# column -> (type, literals, oracle: SQL giving the expected JSON from column {c})
_ARRAY_ORACLE = "array_to_json({c})"
_TEXT_ARRAY_ORACLE = "array_to_json({c}::text[])"
_RANGE_OBJECT = (
    "CASE WHEN isempty({r}) THEN json_build_object('empty', true) ELSE json_build_object("
    "'lower', lower({r})::text, 'upper', upper({r})::text, "
    "'lower_inc', lower_inc({r}), 'upper_inc', upper_inc({r})) END"
)
SHAPES: dict[str, tuple[str, list[str], str]] = {
    "ints": ("integer[]", ["{1,2,NULL}", "{{1,2},{3,4}}", "[0:1]={5,6}", "{}",
                           "{{{1},{2}},{{3},{NULL}}}", "[-2:-1][3:4]={{1,2},{3,4}}"],
             _ARRAY_ORACLE),
    "nums": ("numeric[]", ["{1.50,NaN,NULL,-0.0001}", "{}"], _ARRAY_ORACLE),
    "doubles": ("double precision[]", ["{1e30,-1.5e-7,NaN,-Infinity,0.1,5e-324}"], _ARRAY_ORACLE),
    "reals": ("real[]", ["{3.4028235e38,Infinity,0.1}"], _ARRAY_ORACLE),
    "flags": ("boolean[]", ["{t,f,NULL}"], _ARRAY_ORACLE),
    "texts": ("text[]", ['{"a b","c\\"d","\\\\",NULL,"NULL","","{}",",","😀"," x "}',
                         '{{"a",NULL},{"b c","d"}}', "{null,Null,nULL}"], _ARRAY_ORACLE),
    "docs": ("jsonb[]", ['{"{\\"a\\": 1}","[1, 2]",NULL,"\\"s\\"","3"}'], _ARRAY_ORACLE),
    "docs_json": ("json[]", ['{"{\\"k\\": \\"v,w\\"}","[ 1 ]"}'], _ARRAY_ORACLE),
    "moments": ("timestamp with time zone[]", ['{"2024-01-02 03:04:05+00",infinity}'],
                _TEXT_ARRAY_ORACLE),
    "blobs": ("bytea[]", ['{"\\\\x0aff","\\\\x"}'], _TEXT_ARRAY_ORACLE),
    "moods": ("mood[]", ["{sad,happy,NULL}"], _TEXT_ARRAY_ORACLE),
    "pairs": ("pair[]", ['{"(1,\\"a b\\",)",NULL}'], _TEXT_ARRAY_ORACLE),
    "prices": ("price[]", ["{1.5,NULL}"], _ARRAY_ORACLE),
    "boxes": ("box[]", ["{(1,1),(0,0);(2,2),(1,1)}"], _TEXT_ARRAY_ORACLE),
    "spans": ("int4range[]", ['{"[1,5)",empty}'], _TEXT_ARRAY_ORACLE),
    "pair": ("pair", ['(1,"a b",)', '(,"",1.5)', '(2,"say ""hi"" \\\\ back",0)', "(,,)",
                      '(3,"(x,y)",-1e-3)'],
             "(SELECT json_agg(value) FROM json_each_text(to_json({c})))"),
    "r": ("int4range", ["[1,5)", "empty", "(,5]", "[3,)", "(,)"], _RANGE_OBJECT.format(r="{c}")),
    "tr": ("tstzrange", ['["2024-01-01 00:00:00+00",infinity)', "(,2024-01-01)"],
           _RANGE_OBJECT.format(r="{c}")),
    "txr": ("textrange", ['["a\\"b","c d")', '["",z]', '("(",")"]'],
            _RANGE_OBJECT.format(r="{c}")),
}  # fmt: skip
MULTIRANGES: dict[str, tuple[str, list[str], str]] = {
    "mr": ("int4multirange", ["{[1,3),[5,7]}", "{}", "{(,2),[4,)}"],
           "(SELECT coalesce(json_agg(" + _RANGE_OBJECT.format(r="u.r") + " ORDER BY u.n), "
           "'[]'::json) FROM unnest({c}) WITH ORDINALITY AS u(r, n))"),
}  # fmt: skip

INTERVALS = [
    "1 year 2 months 3 days 04:05:06.5", "1 year 2 months 3 days -04:05:06.5",
    "-1 days +02:00:00", "0", "0.000001 seconds", "-0.5 seconds", "-1 year -2 months",
    "1 year -1 month", "1000 hours 1 second", "-178000000 years", "178000000 years",
    "2562047788 hours 54.775807 seconds", "-2562047788 hours -54.775807 seconds",
    "1 mon -1 days", "-1 mons +1 days -00:00:01", "13 months", "-0.25 days", "59 minutes",
    "1 day 24:00:00", "3 days 100:00:00.000001",
]  # fmt: skip

MOMENTS = [
    "0001-01-01 00:00:00+00", "0001-01-01 12:00:00+00", "1900-06-01 12:00:00.5+00",
    "2024-01-02 03:04:05.123456+00", "2024-07-01 00:00:00+00", "9999-12-31 23:59:59.999999+00",
    "10000-01-01 00:00:00+00", "0001-12-31 23:59:59.999999+00 BC", "infinity", "-infinity",
]  # fmt: skip
# Offsets PostgreSQL prints in each form: +05:30, -03:30, +00:19:32 (LMT), -04:56:02 (LMT), +14.
ZONES = ["Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam", "America/New_York",
         "Pacific/Kiritimati", "Etc/GMT+12"]  # fmt: skip


@pytest.fixture(scope="module")
def values_db(source_cluster: LocalCluster) -> Iterator[Database]:
    """One database for the module: every test only reads what the setup wrote."""
    db = create_database(source_cluster, "values")
    with db.admin() as conn:
        conn.execute(SETUP.encode())  # trusted fixture SQL
        _fill(conn, "scalars", {c: (t, [v for v, _ in vs]) for c, (t, vs) in SCALARS.items()})
        _fill(conn, "wide", {c: (t, [v for v, _ in vs]) for c, (t, vs) in WIDE.items()})
        _fill(conn, "loose", {c: (t, [v for v, _ in vs]) for c, (t, vs) in LOOSE.items()})
        _fill(conn, "shapes", {c: (t, vs) for c, (t, vs, _) in SHAPES.items()})
        if conn.info.server_version >= 140000:
            _fill(conn, "multi", {c: (t, vs) for c, (t, vs, _) in MULTIRANGES.items()})
        _fill(conn, "intervals", {"iv": ("interval", INTERVALS)})
        _fill(conn, "moments", {"ts": ("timestamp with time zone", MOMENTS)})
    yield db
    drop_database(db)


def _fill(
    conn: psycopg.Connection[Any], table: str, columns: dict[str, tuple[str, list[str]]]
) -> None:
    """A table with an id and the columns; one row per literal, the other columns NULL."""
    defs = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, (t, _) in columns.items()]
    conn.execute(
        sql.SQL("CREATE TABLE {} (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {})").format(
            sql.Identifier(SCHEMA, table), sql.SQL(", ").join(defs)
        )
    )
    for column, (_, literals) in columns.items():
        for literal in literals:
            conn.execute(
                sql.SQL("INSERT INTO {} ({}) VALUES (%s)").format(
                    sql.Identifier(SCHEMA, table), sql.Identifier(column)
                ),
                (literal,),
            )


@contextmanager
def _session(db: Database, *settings: str) -> Iterator[psycopg.Connection[Any]]:
    with db.admin() as conn:
        for statement in (*SESSION_SETTINGS, *settings):
            conn.execute(statement.encode())
        yield conn


def _plan(
    conn: psycopg.Connection[Any], table: str, policy: NumericPolicy
) -> tuple[TableDef, TablePlan]:
    ref = TableRef(SCHEMA, table)
    td = read_tables(conn, [ref])[ref]
    assert td is not None
    (plan,) = plan_tables([td], numeric_policy=policy)
    return td, plan


def _as_text(
    conn: psycopg.Connection[Any], td: TableDef, extra: Sequence[sql.Composable] = ()
) -> list[tuple[str | None, ...]]:
    """Every row in id order as the type output functions print it, `extra` expressions after.

    The raw result is read because `col::text` is not always the output function: a boolean
    casts to `true` where pgoutput and COPY send `t`, and character(n) loses its padding.
    """
    cols = [sql.Identifier(c.name) for c in td.columns]
    query = sql.SQL("SELECT {} FROM {} ORDER BY id").format(
        sql.SQL(", ").join([*cols, *extra]), sql.Identifier(td.ref.schema, td.ref.name)
    )
    result = conn.execute(query).pgresult
    assert result is not None
    return [
        tuple(_decoded(result.get_value(r, c)) for c in range(result.nfields))
        for r in range(result.ntuples)
    ]


def _decoded(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8")


@pytest.mark.parametrize(
    ("table", "cases", "policy"),
    [("scalars", SCALARS, NumericPolicy.ERROR), ("wide", WIDE, NumericPolicy.DECIMAL_38_MAX_SCALE),
     ("loose", LOOSE, NumericPolicy.TEXT)],
)  # fmt: skip
def test_scalar_values(
    values_db: Database, table: str, cases: Cases, policy: NumericPolicy
) -> None:
    with _session(values_db) as conn:
        td, plan = _plan(conn, table, policy)
        rows = _as_text(conn, td)
    convert = row_converter(td, plan, numeric_policy=policy)
    expected = [(c, want) for c, (_, values) in cases.items() for _, want in values]
    assert len(rows) == len(expected)
    names = [c.name for c in td.columns]
    for row, (column, want) in zip(rows, expected, strict=True):
        index = names.index(column)
        if isinstance(want, Refused):
            with pytest.raises(ValueRejected) as info:
                convert(row)
            assert info.value.reason == f'column "{column}": {want.reason}', row[index]
            continue
        got = convert(row)
        assert got[index] == want, (column, row[index])
        assert type(got[index]) is type(want), (column, row[index])
        assert [v for i, v in enumerate(got) if i not in (0, index)] == [None] * (len(got) - 2)


def _shapes(db: Database, table: str, shapes: dict[str, tuple[str, list[str], str]]) -> None:
    with _session(db) as conn:
        td, plan = _plan(conn, table, NumericPolicy.ERROR)
        oracles = [sql.SQL(oracle.format(c=sql.Identifier(c).as_string(conn)))
                   for c, (_, _, oracle) in shapes.items()]  # fmt: skip
        rows = _as_text(conn, td, oracles)
    width = len(td.columns)
    converters = {
        c.name: converter_for(c, p) for c, p in zip(td.columns, plan.columns, strict=True)
    }
    checked = 0
    for row in rows:
        for i, column in enumerate(shapes):
            text, oracle = row[1 + i], row[width + i]
            if text is None:
                continue
            got = converters[column](text)
            assert isinstance(got, str)
            assert json.loads(got) == json.loads(oracle), (column, text, got, oracle)
            checked += 1
    assert checked == sum(len(literals) for _, literals, _ in shapes.values())


def test_arrays_composites_and_ranges_match_postgres_json(values_db: Database) -> None:
    _shapes(values_db, "shapes", SHAPES)


def test_multiranges_match_postgres(values_db: Database) -> None:
    with values_db.admin() as conn:
        if conn.info.server_version < 140000:
            pytest.skip("multiranges need PostgreSQL 14")
    _shapes(values_db, "multi", MULTIRANGES)


def test_intervals_match_postgres_iso_8601(values_db: Database) -> None:
    with _session(values_db) as conn:
        td, plan = _plan(conn, "intervals", NumericPolicy.ERROR)
        postgres_style = _as_text(conn, td)
        conn.execute(b"SET intervalstyle = iso_8601")
        iso_style = _as_text(conn, td)
    convert = converter_for(td.columns[1], plan.columns[1])
    assert len(postgres_style) == len(INTERVALS)
    for (_, text), (_, iso) in zip(postgres_style, iso_style, strict=True):
        assert convert(text) == iso, text


def _moments(conn: psycopg.Connection[Any], td: TableDef, plan: TablePlan) -> list[object]:
    convert = converter_for(td.columns[1], plan.columns[1])
    results: list[object] = []
    for _, text in _as_text(conn, td):
        try:
            results.append(convert(text))
        except ValueRejected:
            results.append(Refused(""))
    return results


def test_timestamptz_is_the_same_utc_instant_from_any_session_zone(values_db: Database) -> None:
    oracle = sql.SQL(
        "CASE WHEN isfinite(ts) AND ts >= '0001-01-01 00:00:00+00' AND "
        "ts < '10000-01-01 00:00:00+00' THEN "
        "to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || ' +00:00' END"
    )
    with _session(values_db) as conn:
        td, plan = _plan(conn, "moments", NumericPolicy.ERROR)
        in_utc = _moments(conn, td, plan)
        expected = [row[-1] or Refused("") for row in _as_text(conn, td, [oracle])]
        assert in_utc == expected
        assert in_utc.count(Refused("")) == 4
        for zone in ZONES:
            conn.execute(sql.SQL("SET timezone = {}").format(sql.Literal(zone)))
            printed = [row[1] for row in _as_text(conn, td)]
            assert _moments(conn, td, plan) == in_utc, (zone, printed)
