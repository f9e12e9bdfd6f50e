"""How the console prints numbers: bytes, seconds, percentages, and statuses as short badges."""

from __future__ import annotations

from datetime import datetime

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")
DASH = "-"


def human_bytes(value: int | None) -> str:
    """`1.5 MB` style (powers of 1024, like pg_size_pretty); a dash for unknown."""
    if value is None:
        return DASH
    size = float(value)
    for unit in _UNITS:
        if abs(size) < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return DASH  # unreachable: the loop returns at the last unit


def human_seconds(value: float | None) -> str:
    """`850 ms`, `12.3 s`, `4m05s`, `2h07m`; a dash for unknown."""
    if value is None:
        return DASH
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def percent(value: float | None) -> str:
    return DASH if value is None else f"{value:.0f}%"


def clock(value: datetime | None) -> str:
    """A timestamp as the console shows it: UTC, to the second."""
    return DASH if value is None else value.strftime("%Y-%m-%d %H:%M:%S")
