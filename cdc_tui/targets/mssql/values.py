"""PostgreSQL text values to the Python values pymssql sends to SQL Server.

Every source value arrives as PostgreSQL's text output (session settings `datestyle=ISO,
intervalstyle=postgres, extra_float_digits=3, timezone=UTC, bytea_output=hex`). pymssql
substitutes parameters client-side and cuts a `datetime` to milliseconds without its offset, so
dates and times leave here as SQL Server's own literal text (`2024-01-02 03:04:05.123456 +00:00`),
which the applier CASTs to the column's type and bulk copy reads as it is.
A value SQL Server cannot hold exactly raises ValueRejected; nothing is rounded unless the
numeric policy says so.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal
from uuid import UUID

from cdc_tui.errors import UsageError
from cdc_tui.sources.postgres.catalog import ColumnDef, TableDef, TypeKind
from cdc_tui.targets.mssql.ddl import ColumnPlan, TablePlan
from cdc_tui.targets.mssql.errors import ValueRejected
from cdc_tui.targets.mssql.types import NumericPolicy
from cdc_tui.targets.mssql.values_text import (
    array_to_json,
    as_date,
    as_time,
    as_timestamp,
    as_timestamptz,
    composite_to_json,
    encode_json,
    hstore_to_json,
    interval_to_iso,
    malformed,
    multirange_to_json,
    range_to_json,
    shown,
)

Converter = Callable[[str], object]
RowConverter = Callable[[Sequence[str | None]], tuple[object, ...]]

_NON_FINITE = frozenset(("NaN", "Infinity", "-Infinity"))
_ARRAY_SUFFIX = re.compile(r"(?:\[\d*\])+$")
_MODIFIERS = re.compile(r"\([^)]*\)")
_SIZED_TEXT = re.compile(r"n(?:var)?char\((\d+)\)")
_DECIMAL = re.compile(r"decimal\((\d+),(\d+)\)")
_NUMERIC_SCALE = re.compile(r"numeric\(\d+(?:,(-?\d+))?\)")
# PostgreSQL numerics reach 131072 integer and 16383 fraction digits; quantize must not trap.
_EXACT = Context(prec=150_000, rounding=ROUND_HALF_EVEN, Emax=200_000, Emin=-200_000)
_FLOAT32 = struct.Struct("<f")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?", re.A)
_PLAIN_NUMBERS = re.compile(r"[-\d.,{}]*", re.A)  # an array of finite numbers without NULLs
_BRACKETS = str.maketrans("{}", "[]")


# --- scalars -------------------------------------------------------------------------------


def _bit(text: str) -> int:
    if text == "t":
        return 1
    if text == "f":
        return 0
    # boolout prints t/f; a bool::text cast prints true/false, which is just as clear.
    if text in ("true", "false"):
        return int(text == "true")
    raise malformed("boolean", text)


def _not_finite(kind: str, text: str, target: str) -> ValueRejected:
    return ValueRejected(f"{kind} {text} is not a finite number, the only kind {target} holds")


def _double(text: str) -> float:
    if text in _NON_FINITE:
        raise _not_finite("double precision", text, "float(53)")
    return float(text)


def _real(text: str) -> float:
    """The exact float32 value as a float: no SQL Server rounding, and 3.4028235e+38 stays
    below real's limit instead of overflowing on its way through float(53)."""
    if text in _NON_FINITE:
        raise _not_finite("real", text, "real")
    try:
        return float(_FLOAT32.unpack(_FLOAT32.pack(float(text)))[0])
    except OverflowError:
        raise ValueRejected(
            f"real {shown(text)} is beyond ±3.40E+38, the range real holds"
        ) from None


def _decimal(target: str, source_type: str, policy: NumericPolicy) -> Converter:
    match = _DECIMAL.fullmatch(target)
    if match is None:
        raise ValueError(f"{target!r} is not decimal(p,s)")
    precision, scale = int(match[1]), int(match[2])
    whole_digits = precision - scale
    quantum = Decimal(1).scaleb(-scale)
    source = _NUMERIC_SCALE.fullmatch(source_type)
    source_scale = int(source[1] or 0) if source else None
    # Only decimal_38_max_scale gives a column fewer decimals than its source declares.
    rounds = (
        policy == NumericPolicy.DECIMAL_38_MAX_SCALE
        and source_scale is not None
        and source_scale > scale
    )

    def convert(text: str) -> Decimal:
        if text in _NON_FINITE:
            raise _not_finite("numeric", text, target)
        whole, _, fraction = text.lstrip("-").partition(".")
        value = Decimal(text)
        if len(fraction) > scale:
            if not rounds and fraction[scale:].strip("0"):
                raise ValueRejected(
                    f"numeric {shown(text)} has {len(fraction)} decimal places, more than the "
                    f"{scale} {target} holds"
                )
            # Exact when only zeros go; the documented half-even rounding under the policy.
            value = value.quantize(quantum, context=_EXACT)
            digits = max(value.adjusted() + 1, 0) if value else 0
        else:
            digits = len(whole.lstrip("0"))
        if digits > whole_digits:
            # A rounding carry (99.999 to 100.00) can add the digit that no longer fits.
            rounded = "" if digits == len(whole.lstrip("0")) else " once rounded"
            raise ValueRejected(
                f"numeric {shown(text)} has {digits} integer digits{rounded}, more than the "
                f"{whole_digits} {target} holds"
            )
        return value

    return convert


def _sized_text(kind: str, target: str) -> Converter:
    """Text for nvarchar(n)/nchar(n), refused over n UTF-16 units; `str` for nvarchar(max)."""
    match = _SIZED_TEXT.fullmatch(target)
    if match is None:
        return str
    limit = int(match[1])

    def convert(text: str) -> str:
        # Every character is one or two UTF-16 units, so only the in-between case is counted.
        if 2 * len(text) <= limit:
            return text
        units = len(text.encode("utf-16-le")) // 2
        if units > limit:
            raise ValueRejected(
                f"{kind} {shown(text)} is {units} UTF-16 units long, longer than the {limit} "
                f"{target} holds"
            )
        return text

    return convert


def _uuid(text: str) -> str:
    if _CANONICAL_UUID.fullmatch(text):  # uuid_out's form: skip building a UUID
        return text
    try:
        return str(UUID(text))
    except ValueError:
        raise malformed("uuid", text) from None


def _bytea(text: str) -> bytes:
    if not text.startswith("\\x"):
        raise malformed("bytea", text)  # escape format: the session did not set bytea_output=hex
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise malformed("bytea", text) from None


# --- arrays --------------------------------------------------------------------------------


def _json_number(text: str) -> str:
    """A number as JSON; NaN and ±Infinity, which JSON has no number for, as strings."""
    return text if _JSON_NUMBER.fullmatch(text) else encode_json(text)


def _json_bool(text: str) -> str:
    return "true" if text == "t" else "false" if text == "f" else encode_json(text)


def _json_raw(text: str) -> str:
    return text


_NUMBER_ELEMENTS = frozenset(
    ("smallint", "integer", "bigint", "numeric", "real", "double precision")
)
_ELEMENT_JSON: dict[str, Callable[[str], str]] = {
    **dict.fromkeys(_NUMBER_ELEMENTS, _json_number),
    "boolean": _json_bool,
    "json": _json_raw,
    "jsonb": _json_raw,
}


def _array(element_type: str, kind: TypeKind, builtin: bool) -> Converter:
    name = _type_name(element_type)
    known = kind == TypeKind.BASE and builtin
    element = _ELEMENT_JSON.get(name, encode_json) if known else encode_json
    delimiter = ";" if known and name == "box" else ","  # box is the one built-in type using ;
    if known and name in _NUMBER_ELEMENTS:

        def numbers(text: str) -> str:
            # Most number arrays have no NULL, NaN or exponent: only the braces change.
            if _PLAIN_NUMBERS.fullmatch(text) and text.startswith("{"):
                return text.translate(_BRACKETS)
            return array_to_json(text, element)

        return numbers
    return lambda text: array_to_json(text, element, delimiter)


# --- choosing a converter ------------------------------------------------------------------


def _type_name(type_sql: str) -> str:
    """format_type() text without modifiers: `timestamp(3) with time zone` -> the bare name."""
    return " ".join(_MODIFIERS.sub("", type_sql).split())


_FIXED: dict[str, Converter] = {
    "smallint": int,
    "integer": int,
    "bigint": int,
    "boolean": _bit,
    "real": _real,
    "double precision": _double,
    "timestamp with time zone": as_timestamptz,
    "timestamp without time zone": as_timestamp,
    "date": as_date,
    "time without time zone": as_time,
    "time with time zone": str,
    "uuid": _uuid,
    "bytea": _bytea,
    "json": str,
    "jsonb": str,
}
_TEXT = frozenset(("text", "character varying", "character", "bpchar"))


def converter_for(
    source: ColumnDef, target: ColumnPlan, *, numeric_policy: NumericPolicy = NumericPolicy.ERROR
) -> Converter:
    """The function turning `source`'s text values into what pymssql sends for `target`.

    It is never called with None: NULL stays None. Domains convert as their base type.
    """
    domain = source.scalar_kind == TypeKind.DOMAIN and source.base_type_sql is not None
    type_sql = source.base_type_sql if domain and source.base_type_sql else source.type_sql
    kind = source.base_kind if domain else source.scalar_kind
    builtin = domain or source.type_schema == "pg_catalog"
    if source.type_kind == TypeKind.ARRAY or type_sql.endswith("[]"):
        return _array(_ARRAY_SUFFIX.sub("", type_sql), kind, builtin)
    if kind == TypeKind.ENUM:
        return _sized_text("enum", target.target_type)
    if kind == TypeKind.COMPOSITE:
        return composite_to_json
    if kind == TypeKind.RANGE:
        return range_to_json
    if kind == TypeKind.MULTIRANGE:
        return multirange_to_json
    name = _type_name(type_sql)
    fixed = _FIXED.get(name) if builtin else None
    if fixed is not None:
        return fixed
    if builtin and name.startswith("interval"):
        return interval_to_iso
    if builtin and name == "numeric":
        if target.target_type.startswith("decimal("):
            return _decimal(target.target_type, type_sql, numeric_policy)
        return _sized_text("numeric", target.target_type)
    extension = name.rsplit(".", 1)[-1]
    if (builtin and name in _TEXT) or extension == "citext":
        return _sized_text("text", target.target_type)
    if extension == "hstore":
        return hstore_to_json
    raise UsageError(
        f"Column {source.name!r} has type {source.type_sql}, which cdc-tui cannot convert for "
        "SQL Server; plan the pipeline again or leave the table out of it."
    )


def row_converter(
    td: TableDef,
    plan: TablePlan,
    *,
    numeric_policy: NumericPolicy = NumericPolicy.ERROR,
    wrap: Callable[[ColumnPlan, Converter], Converter] | None = None,
) -> RowConverter:
    """Convert a whole row in column order, None staying None.

    A ValueRejected names its column: `column "born": date 10000-01-01 is after ...`. `wrap`
    composes each column's converter once with what its caller does next (bulk copy's forms).
    """
    names = tuple(c.name for c in td.columns)
    if names != tuple(c.name for c in plan.columns):
        raise UsageError(
            f"The SQL Server plan of table {td.ref} lists other columns than the source has; "
            "plan the pipeline again."
        )
    converters = tuple(
        (wrap or _unwrapped)(p, converter_for(c, p, numeric_policy=numeric_policy))
        for c, p in zip(td.columns, plan.columns, strict=True)
    )

    def convert(row: Sequence[str | None]) -> tuple[object, ...]:
        try:
            return tuple(
                [None if v is None else f(v) for f, v in zip(converters, row, strict=True)]
            )
        except ValueRejected as exc:
            raise _naming_column(exc, names, converters, row) from exc

    return convert


def _unwrapped(_column: ColumnPlan, convert: Converter) -> Converter:
    return convert


def _naming_column(
    exc: ValueRejected,
    names: tuple[str, ...],
    converters: tuple[Converter, ...],
    row: Sequence[str | None],
) -> ValueRejected:
    """The rejection with its column named; found again by converting one value at a time,
    which only the failing row pays for."""
    for name, convert, value in zip(names, converters, row, strict=True):
        if value is None:
            continue
        try:
            convert(value)
        except ValueRejected as found:
            quoted = '"' + name.replace('"', '""') + '"'
            return ValueRejected(f"column {quoted}: {found.reason}")
    return exc
