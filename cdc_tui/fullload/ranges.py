"""Splitting a big table into primary-key ranges that full-load workers copy in parallel."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from cdc_tui.domain.spec import quote_ident_display
from cdc_tui.sources.postgres.catalog import ColumnDef, TableDef, TypeKind

# A table copied whole has its primary key rebuilt once at the end, while key ranges load through
# the index: on a 2-core machine a 2M-row table loaded 1.2x faster whole than as 4 shared ranges
# (bench/RESULTS.md), so only tables big enough for parallelism to outweigh that are split.
DEFAULT_ROWS_PER_RANGE = 5_000_000
INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})

KEY_BOUNDS_QUERY = "SELECT min({key}), max({key}) FROM {table}"


@dataclass(frozen=True)
class KeyRange:
    """Rows with `lower <= column < upper`; a None bound is open, `column` None is the whole table.

    The first and last range of a split are open-ended, so rows outside the min/max seen when
    planning are still copied by exactly one range.
    """

    column: str | None
    lower: int | None
    upper: int | None

    @property
    def whole_table(self) -> bool:
        """True when this unit is the whole table (no key condition at all)."""
        return self.column is None or (self.lower is None and self.upper is None)

    def condition(self) -> sql.Composable | None:
        """The WHERE condition selecting this range, or None for the whole table."""
        if self.column is None or self.whole_table:
            return None
        key = sql.Identifier(self.column)
        parts: list[sql.Composable] = []
        if self.lower is not None:
            parts.append(sql.SQL("{} >= {}").format(key, sql.Literal(self.lower)))
        if self.upper is not None:
            parts.append(sql.SQL("{} < {}").format(key, sql.Literal(self.upper)))
        return sql.SQL(" AND ").join(parts)

    def __str__(self) -> str:
        if self.column is None or self.whole_table:
            return "whole table"
        low = "" if self.lower is None else str(self.lower)
        high = "" if self.upper is None else str(self.upper)
        return f"{quote_ident_display(self.column)} in [{low}, {high})"


WHOLE_TABLE = KeyRange(None, None, None)


def range_count(estimated_rows: int | None, rows_per_range: int) -> int:
    """How many ranges a table gets: 1 up to the threshold, then rows / threshold rounded up."""
    if estimated_rows is None or rows_per_range <= 0 or estimated_rows <= rows_per_range:
        return 1
    return math.ceil(estimated_rows / rows_per_range)


def split_key_space(column: str, low: int, high: int, pieces: int) -> list[KeyRange]:
    """Split the keys `low..high` (inclusive) into at most `pieces` contiguous ranges.

    Boundaries are evenly spaced; the first range has no lower bound and the last no upper
    bound, so together they cover every possible key exactly once.
    """
    if high < low:
        raise ValueError(f"empty key space: {low}..{high}")
    pieces = max(1, min(pieces, high - low + 1))
    if pieces == 1:
        return [WHOLE_TABLE]
    width = high - low + 1
    step = math.ceil(width / pieces)
    bounds = [low + i * step for i in range(1, pieces) if low + i * step <= high]
    edges: list[int | None] = [None, *bounds, None]
    return [KeyRange(column, edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def splittable_key(table: TableDef) -> str | None:
    """The first primary-key column when it is a plain integer (or a domain over one)."""
    if not table.primary_key:
        return None
    first = table.primary_key[0]
    column = next((c for c in table.columns if c.name == first), None)
    if column is None or not _is_integer(column):
        return None
    return first


def _is_integer(column: ColumnDef) -> bool:
    if column.type_kind == TypeKind.ARRAY:
        return False
    if column.scalar_kind == TypeKind.DOMAIN:
        return column.base_type_sql in INTEGER_TYPES
    return column.type_sql in INTEGER_TYPES


def plan_ranges(
    conn: psycopg.Connection[Any],
    table: TableDef,
    *,
    target_rows_per_range: int = DEFAULT_ROWS_PER_RANGE,
) -> list[KeyRange]:
    """The units a table is copied in; min/max are read on `conn`.

    Run it inside the exported snapshot's transaction, so the key bounds are those of the
    rows the workers will copy.
    """
    pieces = range_count(table.estimated_rows, target_rows_per_range)
    key = splittable_key(table)
    if pieces == 1 or key is None:
        return [WHOLE_TABLE]
    query = sql.SQL(KEY_BOUNDS_QUERY).format(
        key=sql.Identifier(key), table=sql.Identifier(table.ref.schema, table.ref.name)
    )
    row = conn.execute(query).fetchone()
    if row is None or row[0] is None:
        return [WHOLE_TABLE]
    return split_key_space(key, int(row[0]), int(row[1]), pieces)
