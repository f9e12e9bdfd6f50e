"""Key-range splitting arithmetic and the progress tracker's rate and ETA (no database)."""

from __future__ import annotations

import itertools

import pytest

from cdc_tui.domain.spec import TableRef
from cdc_tui.fullload.progress import ProgressTracker
from cdc_tui.fullload.ranges import (
    WHOLE_TABLE,
    KeyRange,
    range_count,
    split_key_space,
    splittable_key,
)
from cdc_tui.sources.postgres.catalog import ColumnDef, TableDef, TypeKind


def _owner(ranges: list[KeyRange], key: int) -> list[int]:
    return [
        i
        for i, r in enumerate(ranges)
        if (r.lower is None or key >= r.lower) and (r.upper is None or key < r.upper)
    ]


@pytest.mark.parametrize(
    ("estimated", "per_range", "expected"),
    [(None, 10, 1), (0, 10, 1), (10, 10, 1), (11, 10, 2), (2_000_000, 500_000, 4), (5, 0, 1)],
)
def test_range_count_is_rows_over_threshold_rounded_up(
    estimated: int | None, per_range: int, expected: int
) -> None:
    assert range_count(estimated, per_range) == expected


@pytest.mark.parametrize(
    ("low", "high", "pieces"),
    [(1, 1_000_000, 4), (1, 10, 3), (-50, 49, 7), (5, 7, 10), (0, 9, 6), (1, 2**62, 5)],
)
def test_split_covers_every_key_exactly_once(low: int, high: int, pieces: int) -> None:
    ranges = split_key_space("id", low, high, pieces)
    assert 1 < len(ranges) <= pieces
    assert ranges[0].lower is None and ranges[-1].upper is None
    for left, right in itertools.pairwise(ranges):
        assert left.upper == right.lower  # contiguous, no gap and no overlap
        assert left.upper is not None
        assert left.upper > (low if left.lower is None else left.lower)
    probes = {low - 100, low - 1, low, high, high + 1, high + 1000}
    probes |= {b for r in ranges for b in (r.lower, r.upper) if b is not None}
    probes |= {b - 1 for r in ranges for b in (r.lower, r.upper) if b is not None}
    for key in probes:
        assert len(_owner(ranges, key)) == 1, key


def test_split_pieces_are_even() -> None:
    ranges = split_key_space("id", 1, 1_000_000, 4)
    assert [(r.lower, r.upper) for r in ranges] == [
        (None, 250_001),
        (250_001, 500_001),
        (500_001, 750_001),
        (750_001, None),
    ]


def test_split_of_one_key_or_one_piece_is_the_whole_table() -> None:
    assert split_key_space("id", 7, 7, 4) == [WHOLE_TABLE]
    assert split_key_space("id", 1, 100, 1) == [WHOLE_TABLE]
    with pytest.raises(ValueError, match="empty key space"):
        split_key_space("id", 5, 4, 2)


def test_range_condition_quotes_the_column() -> None:
    middle = KeyRange('we"ird', 10, 20)
    middle_sql, first_sql = middle.condition(), KeyRange("id", None, 20).condition()
    assert middle_sql is not None and first_sql is not None
    assert middle_sql.as_string() == '"we""ird" >= 10 AND "we""ird" < 20'
    assert first_sql.as_string() == '"id" < 20'
    assert WHOLE_TABLE.condition() is None and WHOLE_TABLE.whole_table
    assert str(middle) == '"we""ird" in [10, 20)' and str(WHOLE_TABLE) == "whole table"


def _column(
    name: str,
    type_sql: str,
    *,
    type_kind: TypeKind = TypeKind.BASE,
    scalar_kind: TypeKind = TypeKind.BASE,
    base_type_sql: str | None = None,
) -> ColumnDef:
    return ColumnDef(
        name,
        type_sql,
        0,
        type_kind,
        True,
        None,
        "",
        False,
        scalar_kind=scalar_kind,
        base_type_sql=base_type_sql,
    )


def _table(pk: tuple[str, ...], *columns: ColumnDef) -> TableDef:
    return TableDef(TableRef("public", "t"), columns, pk, "d", (), "r", 1_000_000)


def test_only_an_integer_first_key_column_splits() -> None:
    assert splittable_key(_table(("id",), _column("id", "bigint"))) == "id"
    assert splittable_key(_table(("a", "b"), _column("a", "integer"), _column("b", "text"))) == "a"
    assert splittable_key(_table(("b", "a"), _column("a", "integer"), _column("b", "text"))) is None
    assert splittable_key(_table(("u",), _column("u", "uuid"))) is None
    assert splittable_key(_table((), _column("id", "integer"))) is None
    domain = _column("d", "myint", scalar_kind=TypeKind.DOMAIN, base_type_sql="integer")
    assert splittable_key(_table(("d",), domain)) == "d"
    array = _column("x", "integer[]", type_kind=TypeKind.ARRAY)
    assert splittable_key(_table(("x",), array)) is None


def test_tracker_rate_uses_a_moving_window() -> None:
    tracker = ProgressTracker(window_s=10)
    tracker.update(0.0, 0, 1000)
    assert tracker.rows_per_second is None and tracker.eta_seconds is None
    tracker.update(5.0, 100, 1000)
    assert tracker.rows_per_second == pytest.approx(20.0)
    assert tracker.eta_seconds == pytest.approx(900 / 20)
    for t in range(6, 31):
        tracker.update(float(t), 100 + (t - 5) * 50, 10_000)
    # Only the last ~10 s count: the slow start has left the window.
    assert tracker.rows_per_second == pytest.approx(50.0)
    assert tracker.fraction_done == pytest.approx(1350 / 10_000)


def test_tracker_eta_edges() -> None:
    tracker = ProgressTracker()
    tracker.update(1.0, 10, None)
    tracker.update(2.0, 20, None)
    assert tracker.rows_per_second == pytest.approx(10.0) and tracker.eta_seconds is None
    tracker.update(3.0, 20, 100)
    tracker.update(3.0, 20, 100)  # same instant: replaces, never divides by zero
    assert tracker.eta_seconds == pytest.approx(80 / 5)
    stalled = ProgressTracker(window_s=1)
    stalled.update(0.0, 5, 10)
    stalled.update(2.0, 5, 10)
    assert stalled.rows_per_second == 0.0 and stalled.eta_seconds is None
    stalled.update(3.0, 12, 10)
    assert stalled.eta_seconds == 0.0 and stalled.fraction_done == 1.0
    with pytest.raises(ValueError, match="positive"):
        ProgressTracker(window_s=0)
