"""Parsers of PostgreSQL's text output for the SQL Server target: arrays, hstore, composites,
ranges and intervals become the JSON or ISO-8601 text an nvarchar column holds; dates and times
become the `yyyy-mm-dd hh:mm:ss.ffffff [+hh:mm]` literals that datetime2 and datetimeoffset read
whatever the session's language and DATEFORMAT, in a CAST and in bulk copy alike.

The input is what a source session with `datestyle=ISO, intervalstyle=postgres` prints;
anything else is refused with ValueRejected rather than guessed at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache

from cdc_tui.targets.mssql.errors import ValueRejected

MAX_SHOWN = 40  # a rejected value is shown up to this many characters

# Compact JSON without escaping non-ASCII: nvarchar holds every character as it is.
encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# The inside of a double-quoted element: runs of plain characters and backslash escapes.
_QUOTED = r'[^"\\]*(?:\\.[^"\\]*)*'
_TIMESTAMP = re.compile(
    r"(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?"
    r"(?:([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?)?( BC)?",
    re.A,
)
_UTC_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?\+00", re.A)
_DATE = re.compile(r"(\d{4,})-\d\d-\d\d( BC)?", re.A)
_TIME = re.compile(r"(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?", re.A)
_BACKSLASH = re.compile(r"\\(.)", re.S)
_QUOTED_FIELD = re.compile(r"\\(.)|\"\"", re.S)


def shown(text: str) -> str:
    """`text` as a rejection shows it: cut to MAX_SHOWN characters so no reason grows huge."""
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def malformed(kind: str, text: str) -> ValueRejected:
    return ValueRejected(f"{kind} {shown(text)} is not in PostgreSQL's text output format")


def _unescape(text: str) -> str:
    return _BACKSLASH.sub(r"\1", text) if "\\" in text else text


# --- arrays --------------------------------------------------------------------------------

_DIMENSIONS = re.compile(r"(?:\[[+-]?\d+:[+-]?\d+\])+=", re.A)
# The tokens each token may follow ("" is the start): a value comes after "{" or a delimiter.
_MAY_FOLLOW = {
    "open": ("", "open", "delim"),
    "close": ("open", "value", "close"),
    "delim": ("value", "close"),
    "quoted": ("open", "delim"),
    "bare": ("open", "delim"),
}


@cache
def _array_token(delimiter: str) -> re.Pattern[str]:
    """One token of array_in's grammar; re.A keeps \\s to the six ASCII spaces PostgreSQL skips."""
    d = re.escape(delimiter)
    bare = rf'(?:[^{{}}"\\\s{d}]+|\\.)+'
    return re.compile(
        rf'\s*(?:(?P<open>\{{)|(?P<close>\}})|(?P<delim>{d})|"(?P<quoted>{_QUOTED})"'
        rf"|(?P<bare>{bare}(?:\s+{bare})*))\s*",
        re.S | re.A,
    )


def array_to_json(text: str, element: Callable[[str], str], delimiter: str = ",") -> str:
    """A PostgreSQL array literal as a JSON array; `element` turns one element into JSON text.

    Nesting is kept, an unquoted NULL becomes null and a `[lo:hi]=` prefix is dropped.
    """
    prefix = _DIMENSIONS.match(text)
    pos = prefix.end() if prefix else 0
    token = _array_token(delimiter)
    out: list[str] = []
    depth, prev, end = 0, "", len(text)
    while pos < end:
        m = token.match(text, pos)
        kind = m.lastgroup if m else None
        if m is None or kind is None or prev not in _MAY_FOLLOW[kind]:
            raise malformed("array", text)
        pos = m.end()
        if kind == "open":
            depth += 1
            out.append("[")
        elif kind == "close":
            depth -= 1
            out.append("]")
        elif kind == "delim":
            out.append(",")
        elif kind == "quoted":
            out.append(element(_unescape(m["quoted"])))
            kind = "value"
        else:
            bare = m["bare"]
            out.append("null" if bare.upper() == "NULL" else element(_unescape(bare)))
            kind = "value"
        prev = kind
        if depth == 0:
            break
    if depth or pos != end or prev != "close":
        raise malformed("array", text)
    return "".join(out)


# --- hstore --------------------------------------------------------------------------------

_HSTORE_PAIR = re.compile(rf'\s*"({_QUOTED})"\s*=>\s*(?:"({_QUOTED})"|((?i:NULL)))\s*(,|\Z)', re.S)


def hstore_to_json(text: str) -> str:
    """hstore's `"k"=>"v", "n"=>NULL` as a JSON object, pairs in the order printed."""
    pairs: dict[str, str | None] = {}
    pos, end = 0, len(text)
    if not text.strip():
        return "{}"
    while pos < end:
        m = _HSTORE_PAIR.match(text, pos)
        if m is None or (m[4] == "," and m.end() == end):
            raise malformed("hstore", text)
        pairs[_unescape(m[1])] = None if m[3] else _unescape(m[2])
        pos = m.end()
    return encode_json(pairs)


# --- composites and ranges -----------------------------------------------------------------

# Inside quotes record_out and range_out double a quote; record_in and range_in also take \".
_FIELD_QUOTED = r'"([^"\\]*(?:(?:\\.|"")[^"\\]*)*)"'
_RECORD_CHUNK = re.compile(_FIELD_QUOTED + r'|((?:[^"\\,)]+|\\.)+)', re.S)
_RANGE_CHUNK = re.compile(_FIELD_QUOTED + r'|((?:[^"\\,)\]]+|\\.)+)', re.S)


def _unquote(escape: re.Match[str]) -> str:
    return escape[1] or '"'


def _field(text: str, pos: int, chunk: re.Pattern[str]) -> tuple[str | None, int]:
    """One field of a record or range bound: None when empty, as record_in and range_in read."""
    parts: list[str] = []
    while (m := chunk.match(text, pos)) is not None:
        quoted = m[1]
        if quoted is not None:
            escaped = "\\" in quoted or '""' in quoted
            parts.append(_QUOTED_FIELD.sub(_unquote, quoted) if escaped else quoted)
        else:
            parts.append(_unescape(m[2]))
        pos = m.end()
    return ("".join(parts) if parts else None), pos


def composite_to_json(text: str) -> str:
    """A composite value `(1,"a b",)` as a JSON array of its field texts, null for NULL."""
    if not text.startswith("("):
        raise malformed("composite", text)
    fields: list[str | None] = []
    pos = 1
    while True:
        value, pos = _field(text, pos, _RECORD_CHUNK)
        fields.append(value)
        if text[pos : pos + 1] != ",":
            break
        pos += 1
    if pos != len(text) - 1 or text[pos] != ")":
        raise malformed("composite", text)
    return encode_json(fields)


def _range(text: str, pos: int) -> tuple[dict[str, str | bool | None], int]:
    if text[pos : pos + 5].lower() == "empty":
        return {"empty": True}, pos + 5
    opening = text[pos : pos + 1]
    lower, pos = _field(text, pos + 1, _RANGE_CHUNK)
    if opening not in ("[", "(") or text[pos : pos + 1] != ",":
        raise malformed("range", text)
    upper, pos = _field(text, pos + 1, _RANGE_CHUNK)
    closing = text[pos : pos + 1]
    if closing not in ("]", ")"):
        raise malformed("range", text)
    value = {
        "lower": lower,
        "upper": upper,
        "lower_inc": opening == "[",
        "upper_inc": closing == "]",
    }
    return value, pos + 1


def range_to_json(text: str) -> str:
    """A range as {"lower","upper","lower_inc","upper_inc"} (bounds as text, null when unbounded),
    or {"empty":true}."""
    value, pos = _range(text, 0)
    if pos != len(text):
        raise malformed("range", text)
    return encode_json(value)


def multirange_to_json(text: str) -> str:
    """A multirange `{[1,3),[5,7)}` as a JSON array of range objects."""
    ranges: list[dict[str, str | bool | None]] = []
    body = text.strip()
    if not body.startswith("{"):
        raise malformed("multirange", text)
    pos = 1
    if body[1:].lstrip() != "}":
        while True:
            pos = len(body) - len(body[pos:].lstrip())
            value, pos = _range(body, pos)
            ranges.append(value)
            pos = len(body) - len(body[pos:].lstrip())
            if body[pos : pos + 1] != ",":
                break
            pos += 1
        if pos != len(body) - 1 or body[pos] != "}":
            raise malformed("multirange", text)
    return encode_json(ranges)


# --- intervals -----------------------------------------------------------------------------

_INTERVAL = re.compile(
    r"(?:(?P<y>[+-]?\d+) years?(?: |\Z))?(?:(?P<mo>[+-]?\d+) mons?(?: |\Z))?"
    r"(?:(?P<d>[+-]?\d+) days?(?: |\Z))?"
    r"(?:(?P<sign>[+-]?)(?P<h>\d+):(?P<mi>\d\d):(?P<s>\d\d)(?:\.(?P<f>\d+))?)?",
    re.A,
)


def interval_to_iso(text: str) -> str:
    """intervalstyle=postgres output (`1 year 2 mons -3 days -04:05:06.5`) as ISO-8601, exactly
    as intervalstyle=iso_8601 prints it: each field keeps its sign, zero fields are left out."""
    if text.startswith("P"):
        return text  # already ISO-8601: the session ran with intervalstyle=iso_8601
    if text in ("infinity", "-infinity"):
        raise ValueRejected(f"interval {text} has no ISO-8601 duration, the form the column holds")
    m = _INTERVAL.fullmatch(text)
    if m is None or not text or text.endswith(" "):
        raise malformed("interval", text)
    out = ["P"]
    for group, unit in (("y", "Y"), ("mo", "M"), ("d", "D")):
        if m[group] and int(m[group]):
            out.append(f"{int(m[group])}{unit}")
    if m["h"] is not None:
        sign = -1 if m["sign"] == "-" else 1
        hours, minutes, seconds = int(m["h"]), int(m["mi"]), int(m["s"])
        fraction = (m["f"] or "").rstrip("0")
        if hours or minutes or seconds or fraction:
            out.append("T")
        if hours:
            out.append(f"{sign * hours}H")
        if minutes:
            out.append(f"{sign * minutes}M")
        if seconds or fraction:
            minus = "-" if sign < 0 else ""
            out.append(f"{minus}{seconds}.{fraction}S" if fraction else f"{minus}{seconds}S")
    return "".join(out) if len(out) > 1 else "PT0S"


# --- dates and times -----------------------------------------------------------------------


def _before(kind: str, text: str) -> ValueRejected:
    return ValueRejected(
        f"{kind} {shown(text)} is before 0001-01-01, the first day SQL Server holds"
    )


def _after(kind: str, text: str) -> ValueRejected:
    return ValueRejected(f"{kind} {shown(text)} is after 9999-12-31, the last day SQL Server holds")


def _matched(kind: str, text: str, match: re.Match[str] | None) -> re.Match[str]:
    """`match`, or the refusal of infinity, -infinity and anything unparsed."""
    if match is not None:
        return match
    if text == "infinity":
        raise _after(kind, text)
    if text == "-infinity":
        raise _before(kind, text)
    raise malformed(kind, text)


def _in_range(kind: str, text: str, match: re.Match[str] | None, bc: int) -> re.Match[str]:
    """`match` when its year is 1 to 9999; infinities, BC and 5-digit years are refused."""
    m = _matched(kind, text, match)
    if m[bc]:
        raise _before(kind, text)
    if len(m[1]) > 4:
        raise _after(kind, text)
    return m


def as_timestamptz(text: str) -> str:
    """UTC with all six fractional digits, any offset PostgreSQL prints applied, in SQL Server's
    own datetimeoffset literal form (`2024-01-02 03:04:05.123456 +00:00`): a CAST and bulk copy
    both read it, so Step 1 and Step 2 send the same text."""
    if _UTC_TIMESTAMP.fullmatch(text):  # what a session in UTC prints for years 1 to 9999
        return f"{text[:10]} {text[11:19]}.{text[20:-3].ljust(6, '0')} +00:00"
    kind = "timestamp with time zone"
    m = _matched(kind, text, _TIMESTAMP.fullmatch(text))
    if m[8] is None:
        raise malformed(kind, text)
    fraction = (m[7] or "").ljust(6, "0")
    year = 1 - int(m[1]) if m[12] else int(m[1])  # astronomical: 1 BC is year 0
    offset = int(m[9]) * 3600 + int(m[10] or 0) * 60 + int(m[11] or 0)
    if not offset and 1 <= year <= 9999:
        return f"{text[:10]} {m[4]}:{m[5]}:{m[6]}.{fraction} +00:00"
    if m[8] == "-":
        offset = -offset
    # 1 BC or 10000 AD local can still be in range in UTC; the Gregorian calendar repeats every
    # 400 years, so the arithmetic runs 400 years inside what datetime holds.
    shift = 400 if year < 1 else -400 if year > 9999 else 0
    if not 1 <= year + shift <= 9999:
        raise (_before if year < 1 else _after)(kind, text)
    try:
        local = datetime(year + shift, int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))
    except ValueError:
        raise malformed(kind, text) from None
    try:
        utc = local.replace(microsecond=int(fraction)) - timedelta(seconds=offset)
    except OverflowError:
        raise (_before if offset > 0 else _after)(kind, text) from None
    if not 1 <= utc.year - shift <= 9999:
        raise (_before if utc.year - shift < 1 else _after)(kind, text)
    return f"{utc.year - shift:04d}-{utc:%m-%d %H:%M:%S}.{utc.microsecond:06d} +00:00"


def as_timestamp(text: str) -> str:
    """`2024-01-02 03:04:05.123456`: datetime2's literal form, for a CAST and bulk copy alike."""
    kind = "timestamp"
    m = _in_range(kind, text, _TIMESTAMP.fullmatch(text), 12)
    if m[8] is not None:
        raise malformed(kind, text)
    return f"{text[:10]} {m[4]}:{m[5]}:{m[6]}.{(m[7] or '').ljust(6, '0')}"


def as_date(text: str) -> str:
    _in_range("date", text, _DATE.fullmatch(text), 2)
    return text


def as_time(text: str) -> str:
    m = _TIME.fullmatch(text)
    if m is None:
        raise malformed("time", text)
    if m[1] == "24":
        raise ValueRejected(
            f"time {text} is after 23:59:59.999999, the last time of day SQL Server holds"
        )
    return f"{m[1]}:{m[2]}:{m[3]}.{(m[4] or '').ljust(6, '0')}"
