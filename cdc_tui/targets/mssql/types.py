"""PostgreSQL to SQL Server column types: one table of rules and the function that applies it.

`MAPPING_TABLE` is the only statement of the rules; docs/sqlserver.md shows the same rows and a
unit test keeps the two identical. Every refusal is one sentence naming table, column and fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from cdc_tui.domain.spec import TableRef, quote_ident_display
from cdc_tui.errors import UsageError
from cdc_tui.sources.postgres.catalog import ColumnDef, TypeKind, is_serial_default
from cdc_tui.targets.mssql.identifiers import identifier_length, quote_ident, quote_literal

# Binary order compares code points, so keys differing only in case or accents stay distinct.
KEY_COLLATION = "Latin1_General_100_BIN2"
MAX_NVARCHAR = 4000  # longest nvarchar(n)/nchar(n) before only nvarchar(max) is left
MAX_KEY_TEXT = 450  # 900 bytes, the clustered index key limit, in UTF-16 code units
MAX_DECIMAL_PRECISION = 38
NUMERIC_TEXT_WIDTH = 100
MAX_ENUM_LABEL = 63  # PostgreSQL labels are at most 63 bytes, so at most 63 code units


class NumericPolicy(StrEnum):
    """Per pipeline: what to do with numeric wider than decimal(38) or without a precision."""

    ERROR = "error"
    DECIMAL_38_MAX_SCALE = "decimal_38_max_scale"
    TEXT = "text"


@dataclass(frozen=True)
class MappingRow:
    """One row of the mapping table as the DBA guide shows it."""

    pg_type: str
    sqlserver_type: str
    note: str = ""


@dataclass(frozen=True)
class ColumnType:
    """A column's SQL Server type and what goes with it; `check` is a predicate for CHECK (...)."""

    sql_type: str
    collation: str | None = None
    check: str | None = None
    note: str | None = None


_NO_NAN = "NaN and ±Infinity stop the pipeline"
_DATE_RANGE = "infinity and years outside 1 to 9999 stop the pipeline"
_KEY_TEXT = f"in a key: nvarchar({MAX_KEY_TEXT}) COLLATE {KEY_COLLATION}"
_KEY_TEXT_N = f"in a key: n ≤ {MAX_KEY_TEXT} and COLLATE {KEY_COLLATION}"
_UTF16 = "SQL Server counts UTF-16 units, so emoji count twice toward n"
_NUMERIC_TEXT = "exact decimal text (text numeric policy), NaN and ±Infinity included"
_JSON_CHECK = "CHECK (ISJSON(col) = 1), which needs SQL Server 2016 or later"

# fmt: off
SMALLINT = MappingRow("smallint", "smallint")
INTEGER = MappingRow("integer", "int")
BIGINT = MappingRow("bigint", "bigint")
IDENTITY = MappingRow("identity or serial column", "its integer type, not IDENTITY",
                      "values come from the source, so no IDENTITY and no IDENTITY_INSERT")
REAL = MappingRow("real", "real", _NO_NAN)
DOUBLE = MappingRow("double precision", "float(53)", _NO_NAN)
NUMERIC = MappingRow("numeric(p,s), p ≤ 38", "decimal(p,s)",
                     "a negative scale or one above p widens to the decimal holding the same "
                     "values, e.g. numeric(2,-3) as decimal(5,0); " + _NO_NAN)
NUMERIC_WIDE = MappingRow("numeric(p,s), p > 38", "per NumericPolicy",
                          "error: refused; decimal_38_max_scale: decimal(38,min(s,38-(p-s))), "
                          "rounding the extra decimals half to even, refused when p-s > 38; text: "
                          "nvarchar(100), wider when p needs it, holding the exact decimal text")
NUMERIC_ANY = MappingRow("numeric", "per NumericPolicy",
                         "error and decimal_38_max_scale: refused; text: nvarchar(100) holding "
                         "the exact decimal text, a longer value stops the pipeline")
TIMESTAMPTZ = MappingRow("timestamp with time zone", "datetimeoffset(6)",
                         "written as UTC; " + _DATE_RANGE)
TIMESTAMP = MappingRow("timestamp without time zone", "datetime2(6)", _DATE_RANGE)
DATE = MappingRow("date", "date", _DATE_RANGE)
TIME = MappingRow("time without time zone", "time(6)", "24:00:00 stops the pipeline")
TIMETZ = MappingRow("time with time zone", "nvarchar(32)",
                    "no SQL Server type keeps a time of day with its offset: PostgreSQL's text "
                    "form, e.g. 13:45:00.5+05:30")
INTERVAL = MappingRow("interval", "nvarchar(64)",
                      "ISO-8601 duration as PostgreSQL's iso_8601 style prints it, e.g. "
                      "P1Y2M3DT4H5M6.5S; each field keeps its own sign, e.g. P-1DT2H")
BOOLEAN = MappingRow("boolean", "bit")
UUID = MappingRow("uuid", "uniqueidentifier")
BYTEA = MappingRow("bytea", "varbinary(max)", "refused in a key")
TEXT = MappingRow("text", "nvarchar(max)", _KEY_TEXT)
VARCHAR_N = MappingRow("character varying(n)", "nvarchar(n), nvarchar(max) when n > 4000",
                       _KEY_TEXT_N + "; " + _UTF16)
VARCHAR = MappingRow("character varying", "nvarchar(max)", _KEY_TEXT)
CHAR_N = MappingRow("character(n)", "nchar(n), nvarchar(max) when n > 4000",
                    _KEY_TEXT_N + "; " + _UTF16)
BPCHAR = MappingRow("bpchar", "nvarchar(max)", _KEY_TEXT)
CITEXT = MappingRow("citext", "nvarchar(max)", _KEY_TEXT)
JSON = MappingRow("json", "nvarchar(max)", _JSON_CHECK)
JSONB = MappingRow("jsonb", "nvarchar(max)", _JSON_CHECK)
ARRAY = MappingRow("array of any type", "nvarchar(max)", "JSON array; refused in a key")
HSTORE = MappingRow("hstore", "nvarchar(max)", "JSON object; refused in a key")
RANGE = MappingRow("range or multirange", "nvarchar(max)",
                   'JSON object, e.g. {"lower":"1","upper":"5","lower_inc":true,"upper_inc":false}'
                   ', bounds as PostgreSQL prints them and null when unbounded, {"empty":true} '
                   "when empty; a multirange is a JSON array of them; refused in a key")
COMPOSITE = MappingRow("composite type", "nvarchar(max)",
                       "JSON array of the field values as text in field order, null for a NULL "
                       "field; refused in a key")
ENUM = MappingRow("enum", "nvarchar(n), n = longest label in UTF-16 units",
                  f"CHECK (col IN (N'a', N'b', ...)); in a key: COLLATE {KEY_COLLATION}")
DOMAIN = MappingRow("domain", "the mapping of its base type", "its constraints are not copied")
OTHER = MappingRow("any other type", "refused at plan time",
                   "the sentence names the table, the column and the type")

MAPPING_TABLE: tuple[MappingRow, ...] = (
    SMALLINT, INTEGER, BIGINT, IDENTITY, REAL, DOUBLE, NUMERIC, NUMERIC_WIDE, NUMERIC_ANY,
    TIMESTAMPTZ, TIMESTAMP, DATE, TIME, TIMETZ, INTERVAL, BOOLEAN, UUID, BYTEA,
    TEXT, VARCHAR_N, VARCHAR, CHAR_N, BPCHAR, CITEXT, JSON, JSONB,
    ARRAY, HSTORE, RANGE, COMPOSITE, ENUM, DOMAIN, OTHER,
)
# fmt: on

# format_type() names (modifiers removed) whose SQL Server type is the row's, whatever the typmod.
_FIXED = {row.pg_type: row for row in (SMALLINT, INTEGER, BIGINT, REAL, DOUBLE, TIMESTAMPTZ,
          TIMESTAMP, DATE, TIME, TIMETZ, INTERVAL, BOOLEAN, UUID, BYTEA, JSON, JSONB)}  # fmt: skip
_JSON_ROWS = (JSON, JSONB)
# Extension types live in whatever schema the extension was installed into.
_EXTENSIONS = {"citext": CITEXT, "hstore": HSTORE}
_TYPE_NAME = re.compile(r"(?P<head>[^(]*)(?:\((?P<mods>-?\d+(?:,-?\d+)?)\))?(?P<tail>[^(]*)")


def map_column_type(
    table: TableRef,
    col: ColumnDef,
    *,
    in_key: bool = False,
    numeric_policy: NumericPolicy = NumericPolicy.ERROR,
    enum_labels: Sequence[str] | None = None,
) -> ColumnType:
    """The SQL Server type of `col`; raise UsageError when no type holds its values exactly.

    `enum_labels` are the labels of the column's enum type (None when they were not read).
    """
    where = f"Column {quote_ident_display(col.name)} of table {table}"
    domain = col.scalar_kind == TypeKind.DOMAIN and col.base_type_sql is not None
    type_sql = col.base_type_sql if domain and col.base_type_sql else col.type_sql
    kind = col.base_kind if domain else col.scalar_kind
    mapped: ColumnType | None = None
    if col.type_kind == TypeKind.ARRAY or type_sql.endswith("[]"):
        mapped = _json(ARRAY)
    elif kind == TypeKind.ENUM:
        mapped = _enum(quote_ident(col.name, f"Column of table {table}"), in_key, enum_labels)
    elif kind == TypeKind.COMPOSITE:
        mapped = _json(COMPOSITE)
    elif kind in (TypeKind.RANGE, TypeKind.MULTIRANGE):
        mapped = _json(RANGE)
    elif kind == TypeKind.BASE:
        mapped = _base(where, col, type_sql, domain, in_key, numeric_policy)
    if mapped is None:
        raise UsageError(
            f"{where} has type {col.type_sql}, which cdc-tui cannot map to SQL Server; change the "
            "column's type on the source or leave the table out of the pipeline."
        )
    if in_key and mapped.sql_type.endswith("(max)"):
        raise UsageError(
            f"{where} is in the table's key but becomes {mapped.sql_type}, which SQL Server "
            "cannot index; key the source table on other columns or leave it out of the pipeline."
        )
    notes = [mapped.note, DOMAIN.note if domain else None, _value_note(col)]
    note = "; ".join(n for n in notes if n) or None
    return ColumnType(mapped.sql_type, mapped.collation, mapped.check, note)


def _json(row: MappingRow) -> ColumnType:
    return ColumnType(row.sqlserver_type, note=row.note)


def _enum(quoted: str, in_key: bool, labels: Sequence[str] | None) -> ColumnType:
    collation = KEY_COLLATION if in_key else None
    if labels is None:
        return ColumnType(
            f"nvarchar({MAX_ENUM_LABEL})", collation, None, "enum labels not read: no CHECK"
        )
    width = max([1, *(identifier_length(label) for label in labels)])
    allowed = ", ".join(quote_literal(label) for label in labels)
    check = f"{quoted} IN ({allowed})" if labels else None
    return ColumnType(f"nvarchar({width})", collation, check, ENUM.note)


def _base(
    where: str,
    col: ColumnDef,
    type_sql: str,
    domain: bool,
    in_key: bool,
    policy: NumericPolicy,
) -> ColumnType | None:
    name, mods = _parse(type_sql)
    if name.startswith("interval"):
        name = "interval"  # field restrictions such as "interval day to second" keep ISO text
    builtin = domain or col.type_schema == "pg_catalog"
    row = _FIXED.get(name) if builtin else None
    if row is not None:
        quoted = quote_ident(col.name, "Column")
        check = f"ISJSON({quoted}) = 1" if row in _JSON_ROWS else None
        return ColumnType(row.sqlserver_type, check=check, note=row.note or None)
    if builtin and name == "numeric":
        return _numeric(where, type_sql, mods, policy)
    if builtin and name in ("text", "character varying", "bpchar", "character"):
        length = mods[0] if mods else None
        return _text(where, type_sql, length, name == "character", in_key)
    ext = _EXTENSIONS.get(name.rsplit(".", 1)[-1])
    if ext is CITEXT:
        return _text(where, type_sql, None, False, in_key)
    return None if ext is None else _json(ext)


def _parse(type_sql: str) -> tuple[str, tuple[int, ...]]:
    """format_type() text as (name without modifiers, modifiers): numeric(12,2) -> numeric."""
    match = _TYPE_NAME.fullmatch(type_sql)
    if match is None:
        return type_sql, ()
    name = " ".join((match["head"] + match["tail"]).split())
    mods = tuple(int(m) for m in match["mods"].split(",")) if match["mods"] else ()
    return name, mods


def _text(where: str, type_sql: str, length: int | None, fixed: bool, in_key: bool) -> ColumnType:
    sized = "nchar" if fixed else "nvarchar"
    note = _UTF16 if length is not None else None
    if not in_key:
        if length is None or length > MAX_NVARCHAR:
            return ColumnType("nvarchar(max)")
        return ColumnType(f"{sized}({length})", note=note)
    if length is None:
        note = f"key column: a value over {MAX_KEY_TEXT} UTF-16 units stops the pipeline"
        return ColumnType(f"nvarchar({MAX_KEY_TEXT})", KEY_COLLATION, note=note)
    if length > MAX_KEY_TEXT:
        raise UsageError(
            f"{where} is in the table's key and declared {type_sql}, longer than the "
            f"{MAX_KEY_TEXT} characters a SQL Server key column holds; shorten it on the source "
            f"to at most {MAX_KEY_TEXT} or key the table on other columns."
        )
    return ColumnType(f"{sized}({length})", KEY_COLLATION, note=note)


def _numeric(where: str, type_sql: str, mods: tuple[int, ...], policy: NumericPolicy) -> ColumnType:
    if not mods:
        return _unbounded_numeric(where, policy)
    precision, scale = mods[0], mods[1] if len(mods) > 1 else 0
    # numeric(2,-3) holds up to 99000 and numeric(3,5) up to 0.00999: count both parts.
    integer_digits, fraction_digits = max(precision - scale, 0), max(scale, 0)
    if integer_digits + fraction_digits <= MAX_DECIMAL_PRECISION:
        return ColumnType(
            f"decimal({integer_digits + fraction_digits},{fraction_digits})", note=_NO_NAN
        )
    if policy == NumericPolicy.TEXT:
        # Sign, integer digits, point and fraction digits: the longest text the type can print.
        longest = 1 + max(integer_digits, 1) + (fraction_digits + 1 if fraction_digits else 0)
        return ColumnType(f"nvarchar({max(longest, NUMERIC_TEXT_WIDTH)})", note=_NUMERIC_TEXT)
    if policy == NumericPolicy.DECIMAL_38_MAX_SCALE:
        if integer_digits > MAX_DECIMAL_PRECISION:
            raise UsageError(
                f"{where} is {type_sql}, whose {integer_digits} integer digits do not fit SQL "
                f"Server's decimal({MAX_DECIMAL_PRECISION}) even without decimals; set the "
                "pipeline's numeric policy to text or narrow the column on the source."
            )
        kept = min(fraction_digits, MAX_DECIMAL_PRECISION - integer_digits)
        note = f"{type_sql} rounded to {kept} decimal places (decimal_38_max_scale policy)"
        return ColumnType(f"decimal({MAX_DECIMAL_PRECISION},{kept})", note=f"{note}; {_NO_NAN}")
    raise UsageError(
        f"{where} is {type_sql}, wider than SQL Server's decimal({MAX_DECIMAL_PRECISION}); set "
        "the pipeline's numeric policy to decimal_38_max_scale or text, or narrow the column on "
        "the source."
    )


def _unbounded_numeric(where: str, policy: NumericPolicy) -> ColumnType:
    if policy == NumericPolicy.TEXT:
        return ColumnType(
            f"nvarchar({NUMERIC_TEXT_WIDTH})",
            note=f"{_NUMERIC_TEXT}; a value longer than {NUMERIC_TEXT_WIDTH} characters stops "
            "the pipeline",
        )
    detail = "" if policy == NumericPolicy.ERROR else ", which decimal_38_max_scale cannot prove"
    raise UsageError(
        f"{where} is numeric without a declared precision, so its values may not fit SQL "
        f"Server's decimal({MAX_DECIMAL_PRECISION}){detail}; declare numeric(p,s) with p ≤ "
        f"{MAX_DECIMAL_PRECISION} on the source or set the pipeline's numeric policy to text."
    )


def _value_note(col: ColumnDef) -> str | None:
    """Why a source default or generator is not reproduced: the values come from the source."""
    if col.identity or is_serial_default(col):
        return IDENTITY.note
    if col.generated:
        return "generated on the source; a plain column here holding the source's values"
    return None
