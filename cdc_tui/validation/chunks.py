"""Key-range chunks: the half-open slices of a table's key space that are checksummed one by one.

Pure data, no IO: boundaries come from the source (see `checksum.read_boundaries`) and become
chunks `(None, b1], (b1, b2], ..., (bn, None)`. The open ends make rows the target has outside
the source's key range land in the first or last chunk instead of going unseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise


@dataclass(frozen=True)
class KeyBound:
    """One key value: `text` as PostgreSQL prints the key, `parts` one text per key column."""

    text: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Chunk:
    """Rows with `lower < key <= upper`; a missing bound is open (whole table when both are)."""

    index: int
    lower: KeyBound | None
    upper: KeyBound | None

    @property
    def from_text(self) -> str | None:
        """The exclusive lower key as PostgreSQL prints it, None when open."""
        return None if self.lower is None else self.lower.text

    @property
    def to_text(self) -> str | None:
        """The inclusive upper key as PostgreSQL prints it, None when open."""
        return None if self.upper is None else self.upper.text


def chunks_from_boundaries(boundaries: Sequence[KeyBound]) -> list[Chunk]:
    """Consecutive chunks covering the whole key space, split after each boundary.

    Boundaries must be strictly increasing in key order; a repeated one is a caller bug.
    """
    for before, after in pairwise(boundaries):
        if before == after:
            raise ValueError(f"chunk boundary {before.text} is repeated")
    bounds: list[KeyBound | None] = [None, *boundaries, None]
    return [Chunk(i, bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def whole_table() -> Chunk:
    """The single chunk used for a table without a key."""
    return Chunk(0, None, None)
