"""Reading pymssql's exceptions: SQL Server's error number and the first line of its message.

SQL Server reports a numbered error; pymssql raises `Error((number, b"message"),)` (some paths
pass the pair flat), and appends FreeTDS's own "DB-Lib error message" report to the text. It
raises OperationalError for most numbers (a truncation as much as a deadlock), so the number
decides what is retried; without a number the driver itself failed, and OperationalError,
InterfaceError and its own driver exception mean the connection is gone. Login failures (18456,
4060, 18486-18488) are not retried: they are configuration, not weather.
"""

from __future__ import annotations

import pymssql
from pymssql import _mssql

# pymssql's DB-API layer wraps most failures, but its rollback re-raises _mssql's own exceptions.
DRIVER_ERRORS: tuple[type[Exception], ...] = (pymssql.Error, _mssql.MSSQLException)

RETRIABLE_ERROR_NUMBERS = frozenset(
    {
        # Concurrency: deadlock victim, lock timeout, snapshot update conflict, In-Memory OLTP.
        1205, 1222, 3960, 41301, 41302, 41305, 41325, 41839,
        # Resources that free up: lock memory, server memory, memory grant waits.
        1204, 701, 8645, 8651,
        # Connection lost as the server or the network stack reports it; -2 is a client timeout.
        -2, 64, 121, 233, 10053, 10054, 10060,
        # Azure SQL and failover: database unavailable, service busy, resource limits.
        4221, 10922, 10928, 10929, 10936, 14355, 40143, 40197, 40501, 40540, 40613,
        49918, 49919, 49920,
        # FreeTDS DB-Library: timed out, read or write failed, cannot connect, EOF, dead process.
        20003, 20004, 20006, 20009, 20017, 20047,
    }
)  # fmt: skip


def is_retriable(exc: BaseException) -> bool:
    """Whether reconnecting and replaying can succeed where this error failed."""
    number = error_number(exc)
    if number is not None:
        return number in RETRIABLE_ERROR_NUMBERS
    return isinstance(
        exc, pymssql.OperationalError | pymssql.InterfaceError | _mssql.MSSQLDriverException
    )


# Keeps a long server message (or one quoting a long value) from flooding the status line.
MAX_REASON_CHARS = 300
_DBLIB_PREFIX = "DB-Lib error message"


def error_number(exc: BaseException) -> int | None:
    """SQL Server's (or DB-Library's) error number, None when the driver gave none."""
    args = exc.args
    if len(args) == 1 and isinstance(args[0], tuple):
        args = args[0]  # some pymssql paths wrap (number, message) in one argument
    if args and isinstance(args[0], int) and not isinstance(args[0], bool):
        return args[0]
    return None


def error_reason(exc: BaseException) -> str:
    """`SQL Server error 2627: Violation of PRIMARY KEY constraint ...`, one line, shortened."""
    number = error_number(exc)
    args = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], tuple) else exc.args
    raw = args[1] if number is not None and len(args) > 1 else (args[0] if args else "")
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    # pymssql appends DB-Library's own report to the server's text (often on the same line);
    # an error from DB-Library itself is a header line, then the text worth showing.
    head, _, tail = text.partition(_DBLIB_PREFIX)
    text = head if head.strip() else "\n".join(tail.splitlines()[1:])
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    message = (lines[0] if lines else type(exc).__name__).rstrip(".")
    if len(message) > MAX_REASON_CHARS:
        message = message[: MAX_REASON_CHARS - 1] + "…"
    return message if number is None else f"SQL Server error {number}: {message}"


def describe_mssql_error(exc: BaseException, password: str | None = None) -> str:
    """`error_reason`, with the password (should a server ever echo it) replaced by ***."""
    reason = error_reason(exc)
    return reason.replace(password, "***") if password else reason
