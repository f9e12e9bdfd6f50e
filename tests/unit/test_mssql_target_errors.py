"""How the runner's SQL Server target words pymssql failures, and which ones it retries; the
driver's exceptions are built as pymssql raises them (no SQL Server runs here)."""

from __future__ import annotations

import pymssql
import pytest

from cdc_tui.errors import TargetError
from cdc_tui.runner import mssql_target
from cdc_tui.runner.mssql_target import MssqlCopyError, MssqlUnavailable, _connection
from cdc_tui.runner.retry import is_retriable
from cdc_tui.targets.mssql.connection import MssqlParams

PARAMS = MssqlParams("sql.example", 1433, "dwh", "loader", password="pw-never-shown")


class _Conn:
    closed = False

    def close(self) -> None:
        self.closed = True


def _refusing(error: BaseException) -> object:
    def connect(_params: MssqlParams) -> object:
        raise error

    return connect


@pytest.mark.parametrize(
    ("error", "kind", "retried", "words"),
    [
        (pymssql.OperationalError((18456, b"Login failed for user 'loader'.DB-Lib error message "
                                   b"20018, severity 14:\nGeneral SQL Server error")),
         TargetError, False, "refused cdc-tui while Step 0: SQL Server error 18456: Login failed"),
        (pymssql.OperationalError((20009, b"DB-Lib error message 20009, severity 9:\nUnable to "
                                   b"connect: Adaptive Server is unavailable (sql.example)\n")),
         MssqlUnavailable, True, "is unavailable while Step 0: SQL Server error 20009: Unable"),
        # pymssql raises OperationalError for a truncation too: the number decides, not retried.
        (pymssql.OperationalError((8152, b"String or binary data would be truncated.")),
         MssqlCopyError, False, "failed while Step 0: SQL Server error 8152: String or binary"),
        (pymssql.InterfaceError("Connection to the database failed for an unknown reason."),
         MssqlUnavailable, True, "unavailable while Step 0: Connection to the database failed"),
    ],
)  # fmt: skip
def test_connection_failures(
    monkeypatch: pytest.MonkeyPatch, error: BaseException, kind: type, retried: bool, words: str
) -> None:
    monkeypatch.setattr(mssql_target, "connect", _refusing(error))
    with pytest.raises(TargetError) as caught, _connection(PARAMS, "Step 0"):
        pass
    assert type(caught.value) is kind
    assert is_retriable(caught.value) is retried
    assert words in caught.value.message
    assert "pw-never-shown" not in caught.value.message


def test_a_permission_refused_inside_names_the_login_to_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mssql_target, "connect", lambda _p: _Conn())
    refused = pymssql.ProgrammingError((262, b"CREATE TABLE permission denied in database 'dwh'."))
    with pytest.raises(TargetError) as caught, _connection(PARAMS, "Step 0"):
        raise refused
    assert not is_retriable(caught.value)
    assert "fix the login or its permissions" in caught.value.message


def test_a_statement_refused_inside_is_one_sentence_and_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = _Conn()
    monkeypatch.setattr(mssql_target, "connect", lambda _p: conn)
    refused = pymssql.ProgrammingError((2714, b"There is already an object named 'PK_t' in the "
                                        b"database."))  # fmt: skip
    with pytest.raises(MssqlCopyError) as caught, _connection(PARAMS, "Step 0"):
        raise refused
    assert conn.closed
    assert not is_retriable(caught.value)
    assert "SQL Server error 2714: There is already an object named" in caught.value.message
