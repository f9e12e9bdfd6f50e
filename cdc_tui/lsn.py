"""Log sequence numbers: ints inside cdc-tui, `X/Y` text at every boundary (SQL, JSON, logs)."""

from __future__ import annotations

from cdc_tui.errors import UsageError


def lsn_to_int(text: str) -> int:
    """Parse PostgreSQL's `X/Y` hexadecimal LSN notation."""
    try:
        high, low = text.strip().split("/")
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError as e:
        raise UsageError(f"{text!r} is not an LSN; write it as X/Y in hexadecimal.") from e


def lsn_to_str(value: int) -> str:
    """Format an LSN the way PostgreSQL prints it (`16/B374D848`)."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
