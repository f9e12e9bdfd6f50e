"""Full-load progress: what the copier reports, and the rate and ETA computed from it."""

from __future__ import annotations

from collections import deque
from typing import Protocol

from cdc_tui.domain.spec import TableRef

DEFAULT_WINDOW_S = 20.0


class ProgressSink(Protocol):
    """Receives progress from the copier; calls are serialized, never concurrent.

    `rows_copied` counts committed rows exactly plus an estimate for units still streaming;
    `rows_estimated` is the catalog's estimate (exact once the table is done), or None.
    """

    def __call__(self, table: TableRef, rows_copied: int, rows_estimated: int | None) -> None:
        """Report the table's progress; the caller persists it at its own pace."""

    def table_done(self, table: TableRef) -> None:
        """Every unit of `table` has committed on the target."""


class ProgressTracker:
    """Rows per second over a moving window and the ETA it implies; pure, the caller gives time."""

    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()
        self.rows_copied = 0
        self.rows_estimated: int | None = None

    def update(self, now: float, rows_copied: int, rows_estimated: int | None) -> None:
        """Record the total rows copied at time `now` (seconds, monotonic)."""
        self.rows_copied = rows_copied
        self.rows_estimated = rows_estimated
        if self._samples and now <= self._samples[-1][0]:
            self._samples[-1] = (self._samples[-1][0], rows_copied)
        else:
            self._samples.append((now, rows_copied))
        # Keep one sample at or before the window's start so the window is always fully spanned.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()

    @property
    def rows_per_second(self) -> float | None:
        """The copy rate over the window, or None before two samples exist."""
        if len(self._samples) < 2:
            return None
        (t0, r0), (t1, r1) = self._samples[0], self._samples[-1]
        if t1 <= t0:
            return None
        return max(0.0, (r1 - r0) / (t1 - t0))

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the current rate, or None without an estimate or a rate."""
        rate = self.rows_per_second
        if self.rows_estimated is None or rate is None:
            return None
        remaining = self.rows_estimated - self.rows_copied
        if remaining <= 0:
            return 0.0
        if rate == 0:
            return None
        return remaining / rate

    @property
    def fraction_done(self) -> float | None:
        """Rows copied over rows estimated, capped at 1, or None without an estimate."""
        if not self.rows_estimated:
            return None
        return min(1.0, self.rows_copied / self.rows_estimated)
