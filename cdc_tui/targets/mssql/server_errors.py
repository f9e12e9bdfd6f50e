"""Reading pymssql's exceptions: SQL Server's error number and the first line of its message.

SQL Server reports a numbered error; pymssql raises `Error((number, b"message"),)` (some paths
pass the pair flat), and appends FreeTDS's own "DB-Lib error message" report to the text.
"""

from __future__ import annotations

import pymssql
from pymssql import _mssql

# pymssql's DB-API layer wraps most failures, but its rollback re-raises _mssql's own exceptions.
DRIVER_ERRORS: tuple[type[Exception], ...] = (pymssql.Error, _mssql.MSSQLException)

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


def pymssql_errors() -> tuple[type[Exception], ...]:
    """Everything pymssql raises about the server or the connection."""
    return DRIVER_ERRORS


def is_connection_error(exc: BaseException) -> bool:
    """pymssql's own word that the connection, not a statement, failed."""
    return isinstance(exc, pymssql.OperationalError | pymssql.InterfaceError)


def describe_mssql_error(exc: BaseException, password: str | None = None) -> str:
    """`error_reason`, with the password (should a server ever echo it) replaced by ***."""
    reason = error_reason(exc)
    return reason.replace(password, "***") if password else reason
