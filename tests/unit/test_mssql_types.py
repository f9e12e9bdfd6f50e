"""PostgreSQL to SQL Server type mapping, one test per row of MAPPING_TABLE.

These stand in for a live SQL Server (none can run here): they pin the types, collations and
CHECKs the mapping produces and the sentences it refuses with, not what a server accepts.
"""

from __future__ import annotations

import sys

import pytest

from cdc_tui.domain.spec import TableRef
from cdc_tui.errors import UsageError
from cdc_tui.sources.postgres.catalog import ColumnDef, TypeKind
from cdc_tui.targets.mssql import types
from cdc_tui.targets.mssql.types import (
    KEY_COLLATION,
    MAPPING_TABLE,
    ColumnType,
    MappingRow,
    NumericPolicy,
    map_column_type,
)

T = TableRef("public", "t")
BIN2 = KEY_COLLATION


def col(name: str, type_sql: str, kind: TypeKind = TypeKind.BASE, **kw: object) -> ColumnDef:
    fields: dict[str, object] = {
        "name": name, "type_sql": type_sql, "type_oid": 0, "type_kind": kind,
        "not_null": False, "default_sql": None, "identity": "", "generated": False,
        "scalar_kind": TypeKind.BASE if kind == TypeKind.ARRAY else kind,
    }  # fmt: skip
    fields.update(kw)
    return ColumnDef(**fields)  # type: ignore[arg-type]


def mapped(
    type_sql: str,
    kind: TypeKind = TypeKind.BASE,
    *,
    in_key: bool = False,
    policy: NumericPolicy = NumericPolicy.ERROR,
    labels: list[str] | None = None,
    **kw: object,
) -> ColumnType:
    return map_column_type(
        T, col("a", type_sql, kind, **kw), in_key=in_key, numeric_policy=policy, enum_labels=labels
    )


def sql_type(type_sql: str, kind: TypeKind = TypeKind.BASE, **kw: object) -> str:
    return mapped(type_sql, kind, **kw).sql_type


def refusal(type_sql: str, kind: TypeKind = TypeKind.BASE, **kw: object) -> str:
    with pytest.raises(UsageError) as info:
        mapped(type_sql, kind, **kw)
    return info.value.message


def test_every_row_has_its_test() -> None:
    rows = {name: row for name, row in vars(types).items() if isinstance(row, MappingRow)}
    assert set(rows.values()) == set(MAPPING_TABLE)
    missing = [n for n in rows if not hasattr(sys.modules[__name__], f"test_row_{n.lower()}")]
    assert missing == []


def test_row_smallint() -> None:
    assert mapped("smallint") == ColumnType("smallint")


def test_row_integer() -> None:
    assert mapped("integer") == ColumnType("int")


def test_row_bigint() -> None:
    assert mapped("bigint") == ColumnType("bigint")


@pytest.mark.parametrize(
    ("type_sql", "kw", "target"),
    [
        ("integer", {"identity": "a", "not_null": True}, "int"),
        ("bigint", {"identity": "d", "not_null": True}, "bigint"),
        ("integer", {"default_sql": "nextval('t_id_seq'::regclass)"}, "int"),
        ("smallint", {"default_sql": "nextval('t_id_seq'::regclass)"}, "smallint"),
    ],
)
def test_row_identity(type_sql: str, kw: dict[str, object], target: str) -> None:
    result = mapped(type_sql, **kw)
    assert result.sql_type == target
    assert result.note == "values come from the source, so no IDENTITY and no IDENTITY_INSERT"


def test_generated_columns_are_plain() -> None:
    note = mapped("integer", generated=True, default_sql="(b * 2)").note
    assert note is not None and "generated on the source" in note


def test_row_real() -> None:
    assert mapped("real") == ColumnType("real", note="NaN and ±Infinity stop the pipeline")


def test_row_double() -> None:
    assert mapped("double precision") == ColumnType(
        "float(53)", note="NaN and ±Infinity stop the pipeline"
    )


@pytest.mark.parametrize(
    ("type_sql", "target"),
    [
        ("numeric(12,2)", "decimal(12,2)"),
        ("numeric(1,0)", "decimal(1,0)"),
        ("numeric(38,0)", "decimal(38,0)"),
        ("numeric(38,38)", "decimal(38,38)"),
        ("numeric(5)", "decimal(5,0)"),
        ("numeric(2,-3)", "decimal(5,0)"),  # up to 99000
        ("numeric(3,5)", "decimal(5,5)"),  # up to 0.00999
    ],
)
def test_row_numeric(type_sql: str, target: str) -> None:
    for policy in NumericPolicy:
        assert sql_type(type_sql, policy=policy) == target


def test_row_numeric_wide() -> None:
    assert refusal("numeric(39,0)") == (
        "Column a of table public.t is numeric(39,0), wider than SQL Server's decimal(38); set "
        "the pipeline's numeric policy to decimal_38_max_scale or text, or narrow the column on "
        "the source."
    )
    assert "decimal_38_max_scale" in refusal("numeric(36,-3)")  # 39 integer digits
    max_scale = NumericPolicy.DECIMAL_38_MAX_SCALE
    assert sql_type("numeric(39,1)", policy=max_scale) == "decimal(38,0)"
    assert "39 integer digits" in refusal("numeric(39,0)", policy=max_scale)
    assert sql_type("numeric(40,2)", policy=max_scale) == "decimal(38,0)"
    result = mapped("numeric(45,20)", policy=max_scale)
    assert result.sql_type == "decimal(38,13)"  # 25 integer digits kept, 13 of 20 decimals
    assert result.note is not None and "rounded to 13 decimal places" in result.note
    assert refusal("numeric(50,10)", policy=max_scale) == (
        "Column a of table public.t is numeric(50,10), whose 40 integer digits do not fit SQL "
        "Server's decimal(38) even without decimals; set the pipeline's numeric policy to text "
        "or narrow the column on the source."
    )
    assert sql_type("numeric(39,0)", policy=NumericPolicy.TEXT) == "nvarchar(100)"
    # Sign, 100 integer digits, point and 100 decimals.
    assert sql_type("numeric(200,100)", policy=NumericPolicy.TEXT) == "nvarchar(202)"
    assert sql_type("numeric(1000,0)", policy=NumericPolicy.TEXT) == "nvarchar(1001)"


def test_row_numeric_any() -> None:
    assert refusal("numeric") == (
        "Column a of table public.t is numeric without a declared precision, so its values may "
        "not fit SQL Server's decimal(38); declare numeric(p,s) with p ≤ 38 on the source or set "
        "the pipeline's numeric policy to text."
    )
    message = refusal("numeric", policy=NumericPolicy.DECIMAL_38_MAX_SCALE)
    assert "which decimal_38_max_scale cannot prove" in message
    result = mapped("numeric", policy=NumericPolicy.TEXT)
    assert result.sql_type == "nvarchar(100)"
    assert result.note is not None and "NaN and ±Infinity included" in result.note


@pytest.mark.parametrize("type_sql", ["timestamp with time zone", "timestamp(3) with time zone"])
def test_row_timestamptz(type_sql: str) -> None:
    result = mapped(type_sql)
    assert result.sql_type == "datetimeoffset(6)"
    assert result.note is not None and result.note.startswith("written as UTC")


@pytest.mark.parametrize(
    "type_sql", ["timestamp without time zone", "timestamp(0) without time zone"]
)
def test_row_timestamp(type_sql: str) -> None:
    assert sql_type(type_sql) == "datetime2(6)"


def test_row_date() -> None:
    assert sql_type("date") == "date"


@pytest.mark.parametrize("type_sql", ["time without time zone", "time(3) without time zone"])
def test_row_time(type_sql: str) -> None:
    assert sql_type(type_sql) == "time(6)"


@pytest.mark.parametrize("type_sql", ["time with time zone", "time(2) with time zone"])
def test_row_timetz(type_sql: str) -> None:
    result = mapped(type_sql)
    assert result.sql_type == "nvarchar(32)"
    assert result.note is not None and "offset" in result.note


@pytest.mark.parametrize(
    "type_sql",
    ["interval", "interval(3)", "interval year to month", "interval day to second(3)"],
)
def test_row_interval(type_sql: str) -> None:
    result = mapped(type_sql)
    assert result.sql_type == "nvarchar(64)"
    assert result.note is not None and "ISO-8601" in result.note


def test_row_boolean() -> None:
    assert mapped("boolean") == ColumnType("bit")


def test_row_uuid() -> None:
    assert mapped("uuid") == ColumnType("uniqueidentifier")
    assert mapped("uuid", in_key=True) == ColumnType("uniqueidentifier")


def test_row_bytea() -> None:
    assert sql_type("bytea") == "varbinary(max)"
    assert refusal("bytea", in_key=True) == (
        "Column a of table public.t is in the table's key but becomes varbinary(max), which "
        "SQL Server cannot index; key the source table on other columns or leave it out of the "
        "pipeline."
    )


def test_row_text() -> None:
    assert mapped("text") == ColumnType("nvarchar(max)")
    key = mapped("text", in_key=True)
    assert (key.sql_type, key.collation) == ("nvarchar(450)", BIN2)


@pytest.mark.parametrize(
    ("type_sql", "in_key", "target", "collation"),
    [
        ("character varying(1)", False, "nvarchar(1)", None),
        ("character varying(4000)", False, "nvarchar(4000)", None),
        ("character varying(4001)", False, "nvarchar(max)", None),
        ("character varying(20)", True, "nvarchar(20)", BIN2),
        ("character varying(450)", True, "nvarchar(450)", BIN2),
    ],
)
def test_row_varchar_n(type_sql: str, in_key: bool, target: str, collation: str | None) -> None:
    result = mapped(type_sql, in_key=in_key)
    assert (result.sql_type, result.collation) == (target, collation)


def test_varchar_key_longer_than_450_is_refused() -> None:
    assert refusal("character varying(451)", in_key=True) == (
        "Column a of table public.t is in the table's key and declared character varying(451), "
        "longer than the 450 characters a SQL Server key column holds; shorten it on the source "
        "to at most 450 or key the table on other columns."
    )


def test_row_varchar() -> None:
    assert sql_type("character varying") == "nvarchar(max)"
    key = mapped("character varying", in_key=True)
    assert (key.sql_type, key.collation) == ("nvarchar(450)", BIN2)


def test_row_char_n() -> None:
    assert sql_type("character(1)") == "nchar(1)"
    assert sql_type("character(4000)") == "nchar(4000)"
    assert sql_type("character(4001)") == "nvarchar(max)"
    key = mapped("character(3)", in_key=True)
    assert (key.sql_type, key.collation) == ("nchar(3)", BIN2)
    assert "character(451)" in refusal("character(451)", in_key=True)


def test_row_bpchar() -> None:
    assert sql_type("bpchar") == "nvarchar(max)"
    assert mapped("bpchar", in_key=True).collation == BIN2


@pytest.mark.parametrize(("type_sql", "schema"), [("citext", "public"), ("ext.citext", "ext")])
def test_row_citext(type_sql: str, schema: str) -> None:
    assert sql_type(type_sql, type_schema=schema) == "nvarchar(max)"
    key = mapped(type_sql, in_key=True, type_schema=schema)
    assert (key.sql_type, key.collation) == ("nvarchar(450)", BIN2)


def test_row_json() -> None:
    result = mapped("json")
    assert (result.sql_type, result.check) == ("nvarchar(max)", "ISJSON([a]) = 1")
    assert result.note is not None and "2016" in result.note


def test_row_jsonb() -> None:
    result = mapped("jsonb")
    assert (result.sql_type, result.check) == ("nvarchar(max)", "ISJSON([a]) = 1")
    assert "cannot index" in refusal("jsonb", in_key=True)


@pytest.mark.parametrize(
    ("type_sql", "kw"),
    [
        ("integer[]", {}),
        ("text[]", {}),
        ("jsonb[]", {}),
        ("integer[][]", {}),
        ("mood[]", {"scalar_kind": TypeKind.ENUM, "type_schema": "public"}),
        ("prices", {"scalar_kind": TypeKind.DOMAIN, "base_type_sql": "numeric(10,2)[]"}),
    ],
)
def test_row_array(type_sql: str, kw: dict[str, object]) -> None:
    result = mapped(type_sql, TypeKind.ARRAY, **kw)
    assert (result.sql_type, result.check) == ("nvarchar(max)", None)
    assert result.note is not None and result.note.startswith("JSON array")


def test_array_key_is_refused() -> None:
    assert "cannot index" in refusal("integer[]", TypeKind.ARRAY, in_key=True)


@pytest.mark.parametrize(("type_sql", "schema"), [("hstore", "public"), ("ext.hstore", "ext")])
def test_row_hstore(type_sql: str, schema: str) -> None:
    result = mapped(type_sql, type_schema=schema)
    assert result.sql_type == "nvarchar(max)"
    assert result.note is not None and result.note.startswith("JSON object")


@pytest.mark.parametrize(
    ("type_sql", "kind", "schema"),
    [
        ("int4range", TypeKind.RANGE, "pg_catalog"),
        ("tstzrange", TypeKind.RANGE, "pg_catalog"),
        ("int8multirange", TypeKind.MULTIRANGE, "pg_catalog"),
        ("floatrange", TypeKind.RANGE, "public"),
    ],
)
def test_row_range(type_sql: str, kind: TypeKind, schema: str) -> None:
    assert sql_type(type_sql, kind, type_schema=schema) == "nvarchar(max)"


def test_row_composite() -> None:
    result = mapped("pair", TypeKind.COMPOSITE, type_schema="public")
    assert result.sql_type == "nvarchar(max)"
    assert result.note is not None and result.note.startswith("JSON array")


def test_row_enum() -> None:
    result = mapped("mood", TypeKind.ENUM, type_schema="public", labels=["sad", "ok", "happy"])
    assert result.sql_type == "nvarchar(5)"
    assert result.check == "[a] IN (N'sad', N'ok', N'happy')"
    assert result.collation is None
    key = mapped("mood", TypeKind.ENUM, in_key=True, labels=["x"])
    assert (key.sql_type, key.collation) == ("nvarchar(1)", BIN2)


def test_enum_labels_are_escaped_and_measured_in_utf16_units() -> None:
    labels = ["it's", "O''Brien", "😀", "é"]
    result = mapped("mood", TypeKind.ENUM, labels=labels)
    assert result.check == "[a] IN (N'it''s', N'O''''Brien', N'😀', N'é')"
    assert result.sql_type == "nvarchar(8)"
    assert sql_type("mood", TypeKind.ENUM, labels=["😀😀😀"]) == "nvarchar(6)"


def test_enum_without_labels_fits_any_label() -> None:
    result = mapped("mood", TypeKind.ENUM)
    assert (result.sql_type, result.check) == ("nvarchar(63)", None)
    assert result.note == "enum labels not read: no CHECK"


@pytest.mark.parametrize(
    ("base_type_sql", "base_kind", "labels", "in_key", "target"),
    [
        ("numeric(10,3)", TypeKind.BASE, None, False, "decimal(10,3)"),
        ("text", TypeKind.BASE, None, True, "nvarchar(450)"),
        ("character varying(8)", TypeKind.BASE, None, False, "nvarchar(8)"),
        ("public.citext", TypeKind.BASE, None, False, "nvarchar(max)"),
        ("mood", TypeKind.ENUM, ["a", "bb"], False, "nvarchar(2)"),
        ("pair", TypeKind.COMPOSITE, None, False, "nvarchar(max)"),
        ("integer[]", TypeKind.BASE, None, False, "nvarchar(max)"),
    ],
)
def test_row_domain(
    base_type_sql: str, base_kind: TypeKind, labels: list[str] | None, in_key: bool, target: str
) -> None:
    result = mapped(
        "dom",
        TypeKind.DOMAIN,
        type_schema="public",
        base_type_sql=base_type_sql,
        base_kind=base_kind,
        labels=labels,
        in_key=in_key,
    )
    assert result.sql_type == target
    assert result.note is not None and "its constraints are not copied" in result.note


@pytest.mark.parametrize(
    ("type_sql", "kind", "schema"),
    [
        ("money", TypeKind.BASE, "pg_catalog"),
        ("inet", TypeKind.BASE, "pg_catalog"),
        ("bit(3)", TypeKind.BASE, "pg_catalog"),
        ('"char"', TypeKind.BASE, "pg_catalog"),
        ("public.widget", TypeKind.BASE, "public"),
        ("integer", TypeKind.BASE, "public"),  # a user type that happens to be called integer
        ("anyelement", TypeKind.PSEUDO, "pg_catalog"),
    ],
)
def test_row_other(type_sql: str, kind: TypeKind, schema: str) -> None:
    assert refusal(type_sql, kind, type_schema=schema) == (
        f"Column a of table public.t has type {type_sql}, which cdc-tui cannot map to SQL "
        "Server; change the column's type on the source or leave the table out of the pipeline."
    )


def test_refusals_quote_odd_names() -> None:
    with pytest.raises(UsageError) as info:
        map_column_type(TableRef("Sales", "Order Items"), col("Unit Price", "money"))
    assert info.value.message.startswith(
        'Column "Unit Price" of table "Sales"."Order Items" has type money'
    )
