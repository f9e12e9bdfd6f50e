"""The SQL Server target preflight's rules, against a scripted connection that stands in for a
live SQL Server (none can run here): each answer is what the catalog query would return."""

from __future__ import annotations

from typing import Any

import pytest

from cdc_tui.domain.findings import Severity
from cdc_tui.domain.spec import TableRef
from cdc_tui.targets.mssql.connection import MssqlParams
from cdc_tui.targets.mssql.preflight import (
    OBJECT_QUERY,
    SCHEMA_QUERY,
    SERVER_QUERY,
    run_mssql_preflight,
)

PARAMS = MssqlParams("sql.example", 1433, "dwh", "loader", password="s3cret-pw")
SERVER_ROW = ("16.0.4135.4", "Developer Edition (64-bit)", "loader", "loader", "dwh",
              "SQL_Latin1_General_CP1_CI_AS", 1, 1)  # fmt: skip
ALL_RIGHTS = (5, 1, 1, 1, 1, 1)


class ScriptedCursor:
    def __init__(self, answers: dict[tuple[str, tuple[object, ...]], Any]) -> None:
        self.answers = answers
        self.row: Any = None
        self.executed: list[tuple[str, tuple[object, ...]]] = []

    def execute(self, query: str, params: tuple[object, ...] = ()) -> None:
        self.executed.append((query, params))
        self.row = self.answers.get((query, params), self.answers.get((query, ()), None))

    def fetchone(self) -> Any:
        return self.row


class ScriptedConnection:
    def __init__(self, cursor: ScriptedCursor) -> None:
        self._cursor = cursor
        self.closed = False
        self.rolled_back = False

    def cursor(self) -> ScriptedCursor:
        return self._cursor

    def rollback(self) -> None:
        self.rolled_back = True

    def close(self) -> None:
        self.closed = True


def _run(answers: dict[tuple[str, tuple[object, ...]], Any], schema: str | None = None) -> Any:
    cursor = ScriptedCursor({(SERVER_QUERY, ()): SERVER_ROW, **answers})
    conn = ScriptedConnection(cursor)
    findings = run_mssql_preflight(
        PARAMS, target_schema=schema, tables=[TableRef("shop", "orders")],
        connector=lambda _p: conn,
    )  # fmt: skip
    assert conn.closed and conn.rolled_back  # reads only, and leaves nothing open
    return {(f.rule, f.object): f for f in findings}


def _schema(name: str, row: tuple[object, ...]) -> dict[tuple[str, tuple[object, ...]], Any]:
    return {(SCHEMA_QUERY, (name,) * 6): row}


def test_a_ready_server_passes_with_the_collation_reported() -> None:
    found = _run({**_schema("dbo", ALL_RIGHTS), **_schema("cdc_tui", ALL_RIGHTS)})
    assert all(f.severity != Severity.ERROR for f in found.values())
    assert "16.0.4135.4" in found[("target.connect", "sql.example:1433/dwh")].message
    assert "SQL_Latin1_General_CP1_CI_AS" in found[("target.collation", "dwh")].message
    assert found[("target.table_conflict", "[dbo].[orders]")].severity == Severity.OK


def test_missing_rights_name_the_grant_to_run() -> None:
    found = _run({**_schema("dbo", (1, 0, 1, 1, 0, 1)), **_schema("cdc_tui", ALL_RIGHTS)})
    finding = found[("target.create", "dbo")]
    assert finding.severity == Severity.ERROR
    assert "ALTER, UPDATE" in finding.message
    assert (
        finding.fix
        == "Run GRANT ALTER, UPDATE ON SCHEMA::[dbo] TO [loader]; as the database owner."
    )


def test_a_missing_schema_needs_create_schema() -> None:
    cursor_answers = {**_schema("mirror", (None, None, None, None, None, None)),
                      **_schema("cdc_tui", ALL_RIGHTS)}  # fmt: skip
    row = (*SERVER_ROW[:7], 0)
    found = _run({**cursor_answers, (SERVER_QUERY, ()): row}, schema="mirror")
    finding = found[("target.create", "mirror")]
    assert finding.severity == Severity.ERROR and "CREATE SCHEMA [mirror]" in (finding.fix or "")


@pytest.mark.parametrize(
    ("row", "rule", "severity"),
    [
        (("U ", 0), "target.table_conflict", Severity.WARNING),
        (("V ", 0), "target.table_conflict", Severity.ERROR),
        (("U ", 1), "target.identity", Severity.ERROR),
    ],
)
def test_existing_objects_under_the_target_name(
    row: tuple[str, int], rule: str, severity: Severity
) -> None:
    found = _run({**_schema("dbo", ALL_RIGHTS), **_schema("cdc_tui", ALL_RIGHTS),
                  (OBJECT_QUERY, ("[dbo].[orders]",)): row})  # fmt: skip
    assert found[(rule, "[dbo].[orders]")].severity == severity


def test_an_old_server_is_refused() -> None:
    row = ("12.0.6024.0", *SERVER_ROW[1:])
    found = _run({(SERVER_QUERY, ()): row, **_schema("dbo", ALL_RIGHTS),
                  **_schema("cdc_tui", ALL_RIGHTS)})  # fmt: skip
    assert found[("target.version", "sql.example:1433/dwh")].severity == Severity.ERROR


def test_an_unreachable_server_is_one_finding_without_the_password() -> None:
    import pymssql

    def refuse(_p: MssqlParams) -> Any:
        message = b"Unable to connect: Adaptive Server is unavailable (sql.example) s3cret-pw"
        raise pymssql.OperationalError(20009, message)

    findings = run_mssql_preflight(PARAMS, target_schema=None, tables=[], connector=refuse)
    assert [f.rule for f in findings] == ["target.connect"]
    assert findings[0].severity == Severity.ERROR
    assert "SQL Server error 20009: Unable to connect" in findings[0].message
    assert "s3cret-pw" not in findings[0].message
