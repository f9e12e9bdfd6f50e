"""Pipeline specification: names, table references and the object names derived from them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cdc_tui.domain.status import Engine, Mode
from cdc_tui.errors import UsageError

PIPELINE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
OBJECT_PREFIX = "cdc_tui_"
MAX_IDENTIFIER_BYTES = 63


def validate_pipeline_name(name: str) -> str:
    """Return `name` if it can name a pipeline (and so a slot and a publication), else raise."""
    if not PIPELINE_NAME_RE.match(name):
        raise UsageError(
            f"Pipeline name {name!r} is not valid; use 1 to 48 lowercase letters, digits or "
            "underscores, starting with a letter (it becomes part of the slot name)."
        )
    return name


def slot_name_for(pipeline: str) -> str:
    """The replication slot a pipeline owns: deterministic so drop and the orphan scan find it."""
    return OBJECT_PREFIX + pipeline


def publication_name_for(pipeline: str) -> str:
    """The publication a pipeline owns."""
    return OBJECT_PREFIX + pipeline


@dataclass(frozen=True, order=True)
class TableRef:
    """A `schema.table` name; both parts are the exact (case-sensitive) catalog names."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{quote_ident_display(self.schema)}.{quote_ident_display(self.name)}"

    @classmethod
    def parse(cls, text: str) -> TableRef:
        """Parse `schema.table`, `table` (in public) or quoted parts: `public."Order Items"`."""
        parts = _split_identifiers(text.strip())
        if len(parts) == 1:
            return cls("public", parts[0])
        if len(parts) == 2:
            return cls(parts[0], parts[1])
        raise UsageError(
            f"Table {text!r} is not a valid name; write it as schema.table, quoting parts that "
            'need it (for example public."Order Items").'
        )


_SIMPLE_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")


def quote_ident_display(ident: str) -> str:
    """Quote an identifier for display the way PostgreSQL would need it (not for building SQL)."""
    if _SIMPLE_IDENT.match(ident):
        return ident
    return '"' + ident.replace('"', '""') + '"'


def _split_identifiers(text: str) -> list[str]:
    """Split a dotted name into parts, honouring quotes; unquoted parts fold to lower case."""
    parts: list[str] = []
    i, n = 0, len(text)
    bad = UsageError(
        f"Table {text!r} is not a valid name; write it as schema.table, quoting parts that "
        'need it (for example public."Order Items").'
    )
    while True:
        if i < n and text[i] == '"':
            j, buf = i + 1, []
            while True:
                k = text.find('"', j)
                if k < 0:
                    raise bad
                buf.append(text[j:k])
                if k + 1 < n and text[k + 1] == '"':
                    buf.append('"')
                    j = k + 2
                    continue
                i = k + 1
                break
            part = "".join(buf)
        else:
            k = text.find(".", i)
            end = n if k < 0 else k
            part = text[i:end].strip().lower()
            if '"' in part:
                raise bad
            i = end
        if not part or len(part.encode()) > MAX_IDENTIFIER_BYTES:
            raise bad
        parts.append(part)
        if i >= n:
            return parts
        if text[i] != ".":
            raise bad
        i += 1


def parse_table_list(text: str) -> list[TableRef]:
    """Parse a comma-separated table list (commas inside quotes belong to the name)."""
    items: list[str] = []
    buf: list[str] = []
    in_quotes = False
    for ch in text:
        if ch == '"':
            in_quotes = not in_quotes
        if ch == "," and not in_quotes:
            items.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    items.append("".join(buf))
    refs = [TableRef.parse(item) for item in items if item.strip()]
    if not refs:
        raise UsageError("No tables given; pass --tables schema.table[,schema.table...].")
    seen: set[TableRef] = set()
    for ref in refs:
        if ref in seen:
            raise UsageError(f"Table {ref} is listed twice in --tables; list each table once.")
        seen.add(ref)
    return refs


@dataclass(frozen=True)
class PipelineSpec:
    """What the user asked for when creating a pipeline; connections are names or URLs."""

    name: str
    source: str
    target: str
    tables: tuple[TableRef, ...]
    mode: Mode = Mode.FULL_LOAD_AND_CDC
    engine: Engine = Engine.EMBEDDED
    target_schema: str | None = None
    connect_url: str | None = None
