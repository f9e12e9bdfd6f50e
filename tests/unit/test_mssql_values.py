"""PostgreSQL text values to what pymssql sends to SQL Server, one group of tests per mapping row.

These stand in for a live SQL Server (none can run here): they pin the Python values the
converters produce and, through `pymssql._mssql.quote_simple_value`, the exact literals pymssql
substitutes into the statement, which is everything SQL Server would receive.
"""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime
from decimal import Decimal

import pymssql._mssql
import pytest

from cdc_tui.domain.spec import TableRef
from cdc_tui.errors import UsageError
from cdc_tui.sources.postgres.catalog import ColumnDef, TableDef, TypeKind
from cdc_tui.targets.mssql.ddl import ColumnPlan, plan_tables
from cdc_tui.targets.mssql.errors import ValueRejected
from cdc_tui.targets.mssql.types import NumericPolicy, map_column_type
from cdc_tui.targets.mssql.values import Converter, converter_for, row_converter
from cdc_tui.targets.mssql.values_text import MAX_SHOWN

T = TableRef("public", "t")
B, A, D = TypeKind.BASE, TypeKind.ARRAY, TypeKind.DOMAIN
ERROR, ROUND, TEXT = NumericPolicy.ERROR, NumericPolicy.DECIMAL_38_MAX_SCALE, NumericPolicy.TEXT
FLT_MAX = struct.unpack("<f", struct.pack("<I", 0x7F7FFFFF))[0]


def col(name: str, type_sql: str, kind: TypeKind = B, **kw: object) -> ColumnDef:
    fields: dict[str, object] = {
        "name": name, "type_sql": type_sql, "type_oid": 0, "type_kind": kind,
        "not_null": False, "default_sql": None, "identity": "", "generated": False,
        "scalar_kind": B if kind == A else kind,
    }  # fmt: skip
    fields.update(kw)
    return ColumnDef(**fields)  # type: ignore[arg-type]


def conv(
    type_sql: str,
    kind: TypeKind = B,
    *,
    policy: NumericPolicy = ERROR,
    in_key: bool = False,
    labels: list[str] | None = None,
    **kw: object,
) -> Converter:
    """The converter for a column planned exactly as Step 0 plans it."""
    c = col("a", type_sql, kind, **kw)
    m = map_column_type(T, c, in_key=in_key, numeric_policy=policy, enum_labels=labels)
    plan = ColumnPlan("a", c.type_sql, m.sql_type, not in_key, m.collation, m.check, m.note)
    return converter_for(c, plan, numeric_policy=policy)


def rejected(convert: Converter, text: str) -> str:
    with pytest.raises(ValueRejected) as info:
        convert(text)
    return info.value.reason


def literal(value: object) -> bytes:
    return bytes(pymssql._mssql.quote_simple_value(value))


# --- integers and bit ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_sql", "low", "high"),
    [
        ("smallint", -32768, 32767),
        ("integer", -2147483648, 2147483647),
        ("bigint", -9223372036854775808, 9223372036854775807),
    ],
)
def test_integers_at_their_limits(type_sql: str, low: int, high: int) -> None:
    convert = conv(type_sql)
    for value in (low, -1, 0, 1, high):
        assert convert(str(value)) == value
        assert type(convert(str(value))) is int


def test_boolean_is_bit() -> None:
    convert = conv("boolean")
    assert (convert("t"), convert("f")) == (1, 0)
    assert (convert("true"), convert("false")) == (1, 0)  # what a bool::text cast prints
    assert "boolean yes" in rejected(convert, "yes")


# --- real and double precision -------------------------------------------------------------


def test_real_is_its_exact_float32_value() -> None:
    convert = conv("real")
    assert convert("1.5") == 1.5
    assert convert("0.1") == struct.unpack("<f", struct.pack("<f", 0.1))[0]
    assert convert("3.4028235e+38") == FLT_MAX  # real's largest, not a hair above it
    assert convert("-3.4028235e+38") == -FLT_MAX
    assert convert("1.1754944e-38") == struct.unpack("<f", struct.pack("<I", 0x00800000))[0]
    assert convert("1e-45") == struct.unpack("<f", struct.pack("<I", 1))[0]
    assert str(convert("-0")) == "-0.0"


def test_double_keeps_every_bit() -> None:
    convert = conv("double precision")
    for text in ("0.1", "1.7976931348623157e+308", "-2.2250738585072014e-308", "5e-324", "1e+30"):
        assert convert(text) == float(text)


@pytest.mark.parametrize(("type_sql", "target"), [("real", "real"), ("double precision", "float")])
@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_float_non_finite_is_rejected(type_sql: str, target: str, text: str) -> None:
    reason = rejected(conv(type_sql), text)
    assert reason.startswith(f"{type_sql} {text} is not a finite number") and target in reason


# --- numeric -------------------------------------------------------------------------------


def test_decimal_keeps_the_exact_value() -> None:
    convert = conv("numeric(10,2)")
    assert convert("12345678.90") == Decimal("12345678.90")
    assert str(convert("-12345678.90")) == "-12345678.90"
    assert str(convert("0.00")) == "0.00"
    assert str(convert("1.230")) == "1.23"  # trailing zeros beyond the scale lose nothing


def test_decimal_38_digits() -> None:
    convert = conv("numeric(38,0)")
    assert convert("9" * 38) == Decimal("9" * 38)
    assert convert("-" + "9" * 38) == Decimal("-" + "9" * 38)
    assert conv("numeric(38,38)")("0." + "9" * 38) == Decimal("0." + "9" * 38)


def test_decimal_refuses_what_does_not_fit() -> None:
    convert = conv("numeric(10,2)")
    assert rejected(convert, "123456789.00") == (
        "numeric 123456789.00 has 9 integer digits, more than the 8 decimal(10,2) holds"
    )
    assert rejected(convert, "1.234") == (
        "numeric 1.234 has 3 decimal places, more than the 2 decimal(10,2) holds"
    )


def test_decimal_widened_scales() -> None:
    assert conv("numeric(2,-3)")("99000") == Decimal(99000)
    assert "5 decimal(5,0)" in rejected(conv("numeric(2,-3)"), "100000")
    assert conv("numeric(3,5)")("0.00999") == Decimal("0.00999")
    assert conv("numeric(3,5)")("-0.00999") == Decimal("-0.00999")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_decimal_non_finite_is_rejected(text: str) -> None:
    reason = rejected(conv("numeric(10,2)"), text)
    assert reason == f"numeric {text} is not a finite number, the only kind decimal(10,2) holds"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.1234567850", "1.12345678"),  # a half rounds to the even neighbour
        ("1.1234567950", "1.12345680"),
        ("1.1234567851", "1.12345679"),
        ("-1.1234567850", "-1.12345678"),
        ("-1.1234567851", "-1.12345679"),
        ("2.0000000000", "2.00000000"),
        ("9" * 30 + ".9999999949", "9" * 30 + ".99999999"),
    ],
)
def test_decimal_38_max_scale_rounds_half_even(text: str, expected: str) -> None:
    convert = conv("numeric(40,10)", policy=ROUND)  # decimal(38,8)
    assert str(convert(text)) == expected


def test_decimal_38_max_scale_refuses_a_rounding_carry() -> None:
    reason = rejected(conv("numeric(40,10)", policy=ROUND), "9" * 30 + ".9999999999")
    assert reason.endswith(
        "has 31 integer digits once rounded, more than the 30 decimal(38,8) holds"
    )


def test_decimal_never_rounds_without_the_policy() -> None:
    source = col("a", "numeric(40,10)")
    plan = ColumnPlan("a", "numeric(40,10)", "decimal(38,8)", True)
    convert = converter_for(source, plan, numeric_policy=ERROR)
    assert "10 decimal places" in rejected(convert, "1.1234567850")


def test_numeric_text_policy_keeps_the_exact_text() -> None:
    convert = conv("numeric", policy=TEXT)  # nvarchar(100)
    for text in ("NaN", "Infinity", "-Infinity", "-12345.678900", "0", "9" * 100):
        assert convert(text) == text
    assert rejected(convert, "9" * 101).endswith(
        "is 101 UTF-16 units long, longer than the 100 nvarchar(100) holds"
    )
    assert conv("numeric(50,10)", policy=TEXT)("NaN") == "NaN"


def test_domain_over_numeric_converts_as_numeric() -> None:
    domain = {"base_type_sql": "numeric(10,3)", "type_schema": "public"}
    convert = conv("price", D, **domain)
    assert convert("1234567.125") == Decimal("1234567.125")
    assert "not a finite number" in rejected(convert, "NaN")
    wide = {"base_type_sql": "numeric(50,20)", "type_schema": "public"}
    assert str(conv("price", D, policy=ROUND, **wide)("1." + "5" * 20)) == "1." + "5" * 7 + "6"


# --- dates and times -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02 03:04:05.123456+00", "2024-01-02 03:04:05.123456 +00:00"),
        ("2024-01-02 03:04:05+00", "2024-01-02 03:04:05.000000 +00:00"),
        ("2024-01-02 03:04:05.5+00", "2024-01-02 03:04:05.500000 +00:00"),
        ("0001-01-01 00:00:00+00", "0001-01-01 00:00:00.000000 +00:00"),
        ("9999-12-31 23:59:59.999999+00", "9999-12-31 23:59:59.999999 +00:00"),
        ("2024-01-02 03:04:05+05:30", "2024-01-01 21:34:05.000000 +00:00"),
        ("2024-01-02 03:04:05.25-03:00:15", "2024-01-02 06:04:20.250000 +00:00"),
        ("2024-12-31 22:00:00-02", "2025-01-01 00:00:00.000000 +00:00"),
        ("0001-01-01 05:00:00+05", "0001-01-01 00:00:00.000000 +00:00"),
        # A session outside UTC may print 1 BC or year 10000 for instants SQL Server holds.
        ("0001-12-31 19:03:58-04:56:02 BC", "0001-01-01 00:00:00.000000 +00:00"),
        ("10000-01-01 05:29:59.999999+05:30", "9999-12-31 23:59:59.999999 +00:00"),
    ],
)
def test_timestamptz_is_utc_in_sql_server_literal_form(text: str, expected: str) -> None:
    assert conv("timestamp with time zone")(text) == expected


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("10000-01-01 00:00:00+00", "after 9999-12-31"),
        ("infinity", "after 9999-12-31"),
        ("-infinity", "before 0001-01-01"),
        ("0001-12-31 23:59:59+00 BC", "before 0001-01-01"),
        ("0001-01-01 04:00:00+05:30", "before 0001-01-01"),
        ("9999-12-31 23:59:59.999999-00:00:01", "after 9999-12-31"),
        ("0001-12-31 19:03:57-04:56:02 BC", "before 0001-01-01"),
        ("10000-01-01 05:30:00+05:30", "after 9999-12-31"),
        ("294276-12-31 23:59:59.999999+00", "after 9999-12-31"),
        ("4714-11-24 00:00:00+00 BC", "before 0001-01-01"),
    ],
)
def test_timestamptz_outside_sql_server(text: str, limit: str) -> None:
    reason = rejected(conv("timestamp with time zone"), text)
    assert reason.startswith(f"timestamp with time zone {text} is {limit}")


@pytest.mark.parametrize("text", ["2024-01-02T03:04:05Z", "2024-01-02 03:04:05", "Jan 2 2024"])
def test_timestamptz_in_another_format_is_refused(text: str) -> None:
    reason = rejected(conv("timestamp with time zone"), text)
    assert reason.endswith("is not in PostgreSQL's text output format")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02 03:04:05.123456", "2024-01-02 03:04:05.123456"),
        ("0001-01-01 00:00:00", "0001-01-01 00:00:00.000000"),
        ("9999-12-31 23:59:59.999999", "9999-12-31 23:59:59.999999"),
    ],
)
def test_timestamp_is_datetime2_literal_form(text: str, expected: str) -> None:
    assert conv("timestamp(6) without time zone")(text) == expected


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("10000-01-01 00:00:00", "after 9999-12-31, the last day SQL Server holds"),
        ("infinity", "after 9999-12-31, the last day SQL Server holds"),
        ("-infinity", "before 0001-01-01, the first day SQL Server holds"),
        ("0044-03-15 12:00:00 BC", "before 0001-01-01, the first day SQL Server holds"),
    ],
)
def test_timestamp_outside_sql_server(text: str, limit: str) -> None:
    assert rejected(conv("timestamp without time zone"), text) == f"timestamp {text} is {limit}"


def test_timestamp_with_an_offset_is_refused() -> None:
    convert = conv("timestamp without time zone")
    assert "not in PostgreSQL's text output format" in rejected(convert, "2024-01-02 03:04:05+00")


def test_date() -> None:
    convert = conv("date")
    for text in ("2024-01-02", "0001-01-01", "9999-12-31"):
        assert convert(text) == text
    assert rejected(convert, "10000-01-01") == (
        "date 10000-01-01 is after 9999-12-31, the last day SQL Server holds"
    )
    assert rejected(convert, "0001-01-01 BC").endswith(
        "before 0001-01-01, the first day SQL Server holds"
    )
    assert "after" in rejected(convert, "infinity")
    assert "before" in rejected(convert, "-infinity")


def test_time() -> None:
    convert = conv("time without time zone")
    assert convert("00:00:00") == "00:00:00.000000"
    assert convert("12:00:00.5") == "12:00:00.500000"
    assert convert("23:59:59.999999") == "23:59:59.999999"
    assert rejected(convert, "24:00:00") == (
        "time 24:00:00 is after 23:59:59.999999, the last time of day SQL Server holds"
    )


def test_timetz_is_the_text_unchanged() -> None:
    convert = conv("time with time zone")
    for text in ("13:45:00.5+05:30", "00:00:00+00", "24:00:00-15:59:59"):
        assert convert(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 year 2 mons 3 days 04:05:06.5", "P1Y2M3DT4H5M6.5S"),
        ("1 year 2 mons 3 days -04:05:06.5", "P1Y2M3DT-4H-5M-6.5S"),
        ("-1 days +02:00:00", "P-1DT2H"),
        ("-1 years -2 mons", "P-1Y-2M"),
        ("+1 year -1 mons", "P1Y-1M"),
        ("1 mon", "P1M"),
        ("7 days", "P7D"),
        ("00:00:00", "PT0S"),
        ("00:00:00.000001", "PT0.000001S"),
        ("-00:00:00.5", "PT-0.5S"),
        ("00:01:00", "PT1M"),
        ("1000:00:01", "PT1000H1S"),
        ("-2562047788:00:54.775808", "PT-2562047788H-54.775808S"),
        ("178000000 years", "P178000000Y"),
        ("P1Y2M", "P1Y2M"),  # a session already in iso_8601 style
    ],
)
def test_interval_is_iso_8601(text: str, expected: str) -> None:
    assert conv("interval")(text) == expected
    assert conv("interval day to second(3)")(text) == expected


@pytest.mark.parametrize("text", ["infinity", "-infinity"])
def test_interval_infinity_is_rejected(text: str) -> None:
    assert rejected(conv("interval"), text) == (
        f"interval {text} has no ISO-8601 duration, the form the column holds"
    )


@pytest.mark.parametrize("text", ["@ 1 year", "1 year ", "", "1 fortnight", "1-2"])
def test_interval_in_another_style_is_refused(text: str) -> None:
    assert rejected(conv("interval"), text).startswith("interval ")


# --- uuid and bytea ------------------------------------------------------------------------


def test_uuid_is_canonical_lower_case() -> None:
    convert = conv("uuid")
    expected = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert convert(expected) == expected
    assert convert(expected.upper()) == expected
    assert "uuid" in rejected(convert, "not-a-uuid")


def test_bytea_hex() -> None:
    convert = conv("bytea")
    assert convert("\\x") == b""
    assert convert("\\x0aff") == b"\n\xff"
    every_byte = bytes(range(256))
    assert convert("\\x" + every_byte.hex()) == every_byte
    assert "bytea" in rejected(convert, "\\000abc")  # escape format
    assert "bytea" in rejected(convert, "\\xzz")


# --- text, enum and json -------------------------------------------------------------------


def test_unbounded_text_is_the_same_str() -> None:
    for type_sql in ("text", "character varying", "bpchar"):
        value = " padded and 😀 \n"
        assert conv(type_sql)(value) == value
    assert conv("citext", type_schema="public")("MiXeD") == "MiXeD"
    assert conv("character varying(5000)")("x" * 10_000) == "x" * 10_000  # nvarchar(max)


def test_nvarchar_n_counts_utf16_units() -> None:
    convert = conv("character varying(3)")
    assert convert("abc") == "abc"
    assert convert("a😀") == "a😀"  # 1 + 2 units
    assert rejected(convert, "ab😀") == (
        "text ab😀 is 4 UTF-16 units long, longer than the 3 nvarchar(3) holds"
    )
    assert rejected(convert, "abcd").startswith("text abcd is 4 UTF-16 units long")
    assert conv("character varying(4)")("😀😀") == "😀😀"


def test_nchar_keeps_padding() -> None:
    convert = conv("character(3)")
    assert convert("a  ") == "a  "
    assert "nchar(3)" in rejected(convert, "😀😀")


def test_key_text_is_limited_to_450_units() -> None:
    convert = conv("text", in_key=True)
    assert convert("x" * 450) == "x" * 450
    reason = rejected(convert, "x" * 451)
    assert reason.endswith("is 451 UTF-16 units long, longer than the 450 nvarchar(450) holds")
    assert len(reason) < 150  # the value is shown cut short


def test_enum_is_its_label() -> None:
    convert = conv("mood", TypeKind.ENUM, type_schema="public", labels=["sad", "happy"])
    assert convert("happy") == "happy"
    assert "nvarchar(5)" in rejected(convert, "ecstatic")
    domain = {"base_type_sql": "mood", "base_kind": TypeKind.ENUM, "type_schema": "public"}
    assert conv("feeling", D, **domain)("sad") == "sad"


@pytest.mark.parametrize("type_sql", ["json", "jsonb"])
def test_json_is_the_text_unchanged(type_sql: str) -> None:
    for text in ('{"a": [1, 2.5, null]}', "[]", '"😀"', "3"):
        assert conv(type_sql)(text) == text


# --- arrays --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_sql", "text", "expected"),
    [
        ("integer[]", "{1,2,NULL}", "[1,2,null]"),
        ("integer[]", "{}", "[]"),
        ("integer[]", "{{1,2},{3,4}}", "[[1,2],[3,4]]"),
        ("integer[]", "{{{1},{2}},{{3},{NULL}}}", "[[[1],[2]],[[3],[null]]]"),
        ("integer[]", "[0:1]={1,2}", "[1,2]"),
        ("integer[]", "[-1:0][1:2]={{1,2},{3,4}}", "[[1,2],[3,4]]"),
        ("smallint[]", "{-32768,32767}", "[-32768,32767]"),
        ("bigint[]", "{-9223372036854775808}", "[-9223372036854775808]"),
        ("numeric(10,2)[]", "{1.50,-0.01,NaN}", '[1.50,-0.01,"NaN"]'),
        ("numeric[]", "{Infinity,-Infinity,NULL}", '["Infinity","-Infinity",null]'),
        ("double precision[]", "{1e+30,-1.5e-07,NaN,0.1}", '[1e+30,-1.5e-07,"NaN",0.1]'),
        ("real[]", "{3.4028235e+38,-Infinity}", '[3.4028235e+38,"-Infinity"]'),
        ("boolean[]", "{t,f,NULL}", "[true,false,null]"),
        ("text[]", '{"a b","c\\"d","\\\\",NULL,"NULL",null,Null2}',
         '["a b","c\\"d","\\\\",null,"NULL",null,"Null2"]'),
        ("text[]", '{"",",","{}"," x "}', '["",",","{}"," x "]'),
        ("text[]", "{ a , b c }", '["a","b c"]'),
        ("text[]", '{"😀\\u00e9",é}', '["😀u00e9","é"]'),
        ("text[]", '{"line\nbreak","tab\there"}', '["line\\nbreak","tab\\there"]'),
        ("text[]", '{{"a",NULL},{b,"c"}}', '[["a",null],["b","c"]]'),
        ("character varying(3)[]", "{abc,xy}", '["abc","xy"]'),
        ("jsonb[]", '{"{\\"a\\": 1}","[1, 2]",NULL,"\\"s\\"",3}',
         '[{"a": 1},[1, 2],null,"s",3]'),
        ("json[]", '{"{\\"k\\": \\"v,w\\"}"}', '[{"k": "v,w"}]'),
        ("timestamp with time zone[]", '{"2024-01-02 03:04:05+00",infinity}',
         '["2024-01-02 03:04:05+00","infinity"]'),
        ("bytea[]", '{"\\\\x0aff"}', '["\\\\x0aff"]'),
        ("uuid[]", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
         '["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]'),
        ("box[]", "{(1,1),(0,0);(2,2),(1,1)}", '["(1,1),(0,0)","(2,2),(1,1)"]'),
    ],
)  # fmt: skip
def test_array_is_json(type_sql: str, text: str, expected: str) -> None:
    result = conv(type_sql, A)(text)
    assert result == expected
    json.loads(str(result))


def test_array_of_enum_composite_and_range_are_strings() -> None:
    enum = conv("mood[]", A, scalar_kind=TypeKind.ENUM, type_schema="public")
    assert enum("{sad,happy}") == '["sad","happy"]'
    pair = conv("pair[]", A, scalar_kind=TypeKind.COMPOSITE, type_schema="public")
    assert pair('{"(1,\\"a b\\")",NULL}') == '["(1,\\"a b\\")",null]'
    ranges = conv("int4range[]", A, scalar_kind=TypeKind.RANGE)
    assert ranges('{"[1,5)",empty}') == '["[1,5)","empty"]'


def test_array_of_a_domain_converts_its_base_elements() -> None:
    domain = {"scalar_kind": D, "base_type_sql": "numeric(10,2)[]", "type_schema": "public"}
    assert conv("prices", A, **domain)("{1.50,NaN}") == '[1.50,"NaN"]'
    over_array = {"base_type_sql": "integer[]", "type_schema": "public"}
    assert conv("int_list", D, **over_array)("{1,NULL}") == "[1,null]"


def test_array_of_a_user_type_named_like_a_builtin_is_strings() -> None:
    assert conv("integer[]", A, type_schema="public")("{1}") == '["1"]'


@pytest.mark.parametrize(
    "text", ["{1,2", "1,2}", "{1,,2}", "{1}x", "{,1}", "{1,}", "", "{{1}{2}}", '{"a}', "[1:2]{1}"]
)
def test_malformed_array_is_refused(text: str) -> None:
    assert rejected(conv("text[]", A), text).startswith("array ")


# --- hstore, ranges, composites ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"a"=>"1", "b"=>NULL', {"a": "1", "b": None}),
        ("", {}),
        ('"k\\"q"=>"v\\\\w", "NULL"=>"NULL"', {'k"q': "v\\w", "NULL": "NULL"}),
        ('"a b"=>"", ""=>"=>"', {"a b": "", "": "=>"}),
        ('"😀"=>"é"', {"😀": "é"}),
    ],
)
def test_hstore_is_a_json_object(text: str, expected: dict[str, str | None]) -> None:
    for schema in ("public", "ext"):
        result = str(
            conv("hstore" if schema == "public" else "ext.hstore", type_schema=schema)(text)
        )
        assert json.loads(result) == expected


@pytest.mark.parametrize("text", ['"a"=>"1",', '"a"=>', '"a"=>"1" "b"=>"2"', "a=>1"])
def test_malformed_hstore_is_refused(text: str) -> None:
    assert rejected(conv("hstore", type_schema="public"), text).startswith("hstore ")


@pytest.mark.parametrize(
    ("type_sql", "text", "expected"),
    [
        ("int4range", "[1,5)", {"lower": "1", "upper": "5", "lower_inc": True, "upper_inc": False}),
        ("int4range", "empty", {"empty": True}),
        ("int4range", "[1,)", {"lower": "1", "upper": None, "lower_inc": True, "upper_inc": False}),
        ("numrange", "(,2.5]",
         {"lower": None, "upper": "2.5", "lower_inc": False, "upper_inc": True}),
        ("tstzrange", '["2024-01-01 00:00:00+00","2024-02-01 00:00:00+00")',
         {"lower": "2024-01-01 00:00:00+00", "upper": "2024-02-01 00:00:00+00",
          "lower_inc": True, "upper_inc": False}),
        ("textrange", '["a\\"b","c""d")',
         {"lower": 'a"b', "upper": 'c"d', "lower_inc": True, "upper_inc": False}),
        ("textrange", '["",z]', {"lower": "", "upper": "z", "lower_inc": True, "upper_inc": True}),
    ],
)  # fmt: skip
def test_range_is_a_json_object(type_sql: str, text: str, expected: dict[str, object]) -> None:
    result = str(conv(type_sql, TypeKind.RANGE)(text))
    assert json.loads(result) == expected
    assert list(json.loads(result)) == list(expected)  # keys in a fixed order


def test_range_json_is_compact() -> None:
    assert conv("int4range", TypeKind.RANGE)("[1,5)") == (
        '{"lower":"1","upper":"5","lower_inc":true,"upper_inc":false}'
    )


def test_multirange_is_a_json_array() -> None:
    convert = conv("int4multirange", TypeKind.MULTIRANGE)
    assert convert("{}") == "[]"
    assert json.loads(str(convert("{[1,3),[5,7]}"))) == [
        {"lower": "1", "upper": "3", "lower_inc": True, "upper_inc": False},
        {"lower": "5", "upper": "7", "lower_inc": True, "upper_inc": True},
    ]
    assert "multirange" in rejected(convert, "{[1,3)")


@pytest.mark.parametrize("text", ["[1,5", "1,5)", "[1;5)", "[1,5)x", "emptyish"])
def test_malformed_range_is_refused(text: str) -> None:
    assert rejected(conv("int4range", TypeKind.RANGE), text).startswith("range ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('(1,"a b",)', ["1", "a b", None]),
        ('("",x)', ["", "x"]),
        ('(,)', [None, None]),
        ('("say ""hi""","back\\\\slash")', ['say "hi"', "back\\slash"]),
        ('(1,"(2,""x y"")")', ["1", '(2,"x y")']),
        ("(😀,é)", ["😀", "é"]),
    ],
)  # fmt: skip
def test_composite_is_a_json_array(text: str, expected: list[str | None]) -> None:
    result = str(conv("pair", TypeKind.COMPOSITE, type_schema="public")(text))
    assert json.loads(result) == expected


def test_malformed_composite_is_refused() -> None:
    convert = conv("pair", TypeKind.COMPOSITE, type_schema="public")
    for text in ("1,2", "(1,2", "(1,2)x"):
        assert rejected(convert, text).startswith("composite ")


# --- choosing converters and whole rows ----------------------------------------------------


def test_an_unmappable_type_has_no_converter() -> None:
    plan = ColumnPlan("m", "money", "money", True)
    with pytest.raises(UsageError, match="cannot convert"):
        converter_for(col("m", "money"), plan)


def _table(*columns: ColumnDef) -> TableDef:
    return TableDef(T, columns, (columns[0].name,), "d", (), "r", 0)


def test_row_converter_converts_in_order_and_keeps_null() -> None:
    td = _table(
        col("id", "bigint", not_null=True),
        col("born", "date"),
        col("at", "timestamp with time zone"),
        col("amount", "numeric(10,2)"),
        col("tags", "text[]", A),
        col("blob", "bytea"),
    )
    (plan,) = plan_tables([td])
    convert = row_converter(td, plan)
    row = ("7", "2024-01-02", "2024-01-02 03:04:05.5+00", "1.50", "{a,NULL}", "\\x00")
    assert convert(row) == (
        7, "2024-01-02", "2024-01-02 03:04:05.500000 +00:00", Decimal("1.50"), '["a",null]', b"\0"
    )  # fmt: skip
    assert convert(("8", None, None, None, None, None)) == (8, None, None, None, None, None)


def test_row_converter_names_the_column() -> None:
    td = _table(col("id", "integer", not_null=True), col("born", "date"), col('we"ird', "real"))
    (plan,) = plan_tables([td])
    convert = row_converter(td, plan)
    with pytest.raises(ValueRejected) as info:
        convert(("1", "10000-01-01", "1"))
    assert info.value.reason == (
        'column "born": date 10000-01-01 is after 9999-12-31, the last day SQL Server holds'
    )
    with pytest.raises(ValueRejected) as info:
        convert(("1", None, "NaN"))
    assert info.value.reason.startswith('column "we""ird": real NaN is not a finite number')


def test_row_converter_uses_the_numeric_policy() -> None:
    td = _table(col("id", "integer", not_null=True), col("big", "numeric(40,10)"))
    (plan,) = plan_tables([td], numeric_policy=ROUND)
    convert = row_converter(td, plan, numeric_policy=ROUND)
    assert convert(("1", "0.1234567850")) == (1, Decimal("0.12345678"))


def test_row_converter_refuses_a_plan_of_other_columns() -> None:
    td = _table(col("id", "integer", not_null=True), col("x", "text"))
    other = _table(col("id", "integer", not_null=True), col("y", "text"))
    (plan,) = plan_tables([other])
    with pytest.raises(UsageError, match="plan the pipeline again"):
        row_converter(td, plan)


def test_row_converter_refuses_a_row_of_another_length() -> None:
    td = _table(col("id", "integer", not_null=True), col("x", "text"))
    (plan,) = plan_tables([td])
    with pytest.raises(ValueError, match=r"shorter|longer"):
        row_converter(td, plan)(("1",))


def test_a_rejected_value_is_shown_cut_short() -> None:
    reason = rejected(conv("character varying(10)"), "é" * 5000)
    assert "é" * MAX_SHOWN not in reason and "é" * (MAX_SHOWN - 1) + "…" in reason
    assert reason.endswith("is 5000 UTF-16 units long, longer than the 10 nvarchar(10) holds")


# --- what pymssql sends --------------------------------------------------------------------


def test_a_datetime_would_lose_microseconds_and_offset() -> None:
    """Why temporal values leave as strings: pymssql renders a datetime to milliseconds."""
    value = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert literal(value) == b"'2024-01-02 03:04:05.123'"


@pytest.mark.parametrize(
    ("type_sql", "kind", "kw", "text", "expected"),
    [
        ("smallint", B, {}, "-32768", b"-32768"),
        ("integer", B, {}, "2147483647", b"2147483647"),
        ("bigint", B, {}, "-9223372036854775808", b"-9223372036854775808"),
        ("boolean", B, {}, "t", b"1"),
        ("boolean", B, {}, "f", b"0"),
        ("real", B, {}, "3.4028235e+38", b"3.4028234663852886e+38"),
        ("real", B, {}, "0.5", b"0.5"),
        ("double precision", B, {}, "0.1", b"0.1"),
        ("double precision", B, {}, "5e-324", b"5e-324"),
        ("numeric(10,2)", B, {}, "-12345678.90", b"-12345678.90"),
        ("numeric(10,8)", B, {}, "0.00000001", b"0.00000001"),  # never 1E-8, a float literal
        ("numeric(38,0)", B, {}, "9" * 38, b"9" * 38),
        ("numeric(40,10)", B, {"policy": ROUND}, "1.1234567850", b"1.12345678"),
        ("numeric", B, {"policy": TEXT}, "NaN", b"N'NaN'"),
        ("price", D, {"base_type_sql": "numeric(10,3)", "type_schema": "public"}, "1.500",
         b"1.500"),
        ("timestamp with time zone", B, {}, "2024-01-02 03:04:05.123456+00",
         b"N'2024-01-02 03:04:05.123456 +00:00'"),
        ("timestamp with time zone", B, {}, "2024-01-02 03:04:05+05:30",
         b"N'2024-01-01 21:34:05.000000 +00:00'"),
        ("timestamp without time zone", B, {}, "0001-01-01 00:00:00",
         b"N'0001-01-01 00:00:00.000000'"),
        ("date", B, {}, "9999-12-31", b"N'9999-12-31'"),
        ("time without time zone", B, {}, "23:59:59.999999", b"N'23:59:59.999999'"),
        ("time with time zone", B, {}, "13:45:00.5+05:30", b"N'13:45:00.5+05:30'"),
        ("interval", B, {}, "1 year 2 mons 3 days -04:05:06.5", b"N'P1Y2M3DT-4H-5M-6.5S'"),
        ("uuid", B, {}, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
         b"N'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"),
        ("bytea", B, {}, "\\x0aff", b"0x0aff"),
        ("bytea", B, {}, "\\x", b"''"),  # CAST('' AS varbinary(max)) is the empty binary
        ("text", B, {}, "O'Brien 😀", "N'O''Brien 😀'".encode()),
        ("character(3)", B, {}, "a  ", b"N'a  '"),
        ("citext", B, {"type_schema": "public"}, "x", b"N'x'"),
        ("mood", TypeKind.ENUM, {"type_schema": "public"}, "happy", b"N'happy'"),
        ("jsonb", B, {}, '{"a": "it\'s"}', b"N'{\"a\": \"it''s\"}'"),
        ("integer[]", A, {}, "{1,NULL}", b"N'[1,null]'"),
        ("text[]", A, {}, "{it's}", b"N'[\"it''s\"]'"),
        ("hstore", B, {"type_schema": "public"}, '"a"=>NULL', b"N'{\"a\":null}'"),
        ("int4range", TypeKind.RANGE, {}, "[1,5)",
         b"N'{\"lower\":\"1\",\"upper\":\"5\",\"lower_inc\":true,\"upper_inc\":false}'"),
        ("pair", TypeKind.COMPOSITE, {"type_schema": "public"}, '(1,"a b",)',
         b"N'[\"1\",\"a b\",null]'"),
    ],
)  # fmt: skip
def test_pymssql_literal(
    type_sql: str, kind: TypeKind, kw: dict[str, object], text: str, expected: bytes
) -> None:
    options = dict(kw)
    policy = options.pop("policy", ERROR)
    assert isinstance(policy, NumericPolicy)
    assert literal(conv(type_sql, kind, policy=policy, **options)(text)) == expected
