"""The validation report: per table, counts, how many chunks were compared and which differ."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DifferingRange:
    """A key range whose rows differed in every round: `lower < key <= upper`, None is open."""

    from_key: str | None
    to_key: str | None
    source_rows: int
    target_rows: int

    def to_json(self) -> dict[str, Any]:
        """The range in the `validate --json` shape."""
        return {
            "from": self.from_key,
            "to": self.to_key,
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
        }


@dataclass(frozen=True)
class TableValidation:
    """One table's outcome; row counts are None when that side was not read.

    Counts add up each chunk's latest reading, so a re-checked chunk counts as last seen.
    """

    table: str
    target_table: str
    source_rows: int | None
    target_rows: int | None
    equal: bool
    chunks_compared: int
    differing_ranges: list[DifferingRange] = field(default_factory=list)
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The table in the `validate --json` shape."""
        return {
            "table": self.table,
            "target_table": self.target_table,
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "equal": self.equal,
            "chunks_compared": self.chunks_compared,
            "differing_ranges": [r.to_json() for r in self.differing_ranges],
            "note": self.note,
        }


@dataclass(frozen=True)
class ValidationReport:
    """All tables; `ok` only when every table compared equal."""

    tables: list[TableValidation]

    @property
    def ok(self) -> bool:
        """True when every table compared equal."""
        return all(t.equal for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        """The report in the `validate --json` shape."""
        return {"ok": self.ok, "tables": [t.to_json() for t in self.tables]}
