"""The live SQL Server suite: collected only when CDC_TUI_TEST_MSSQL_URL names a server.

`CDC_TUI_TEST_MSSQL_URL` is an mssql:// URL without a password (for example
mssql://sa@localhost:1433/master); the password comes from `MSSQL_PASSWORD`. Each test writes
into a schema of its own and removes it afterwards. docs/sqlserver.md shows how to start a SQL
Server with docs/mssql/compose.yaml.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cdc_tui.targets.mssql.connection import MssqlParams, connect, parse_mssql_url

URL_ENV = "CDC_TUI_TEST_MSSQL_URL"
PASSWORD_ENV = "MSSQL_PASSWORD"

# Drops every table of one schema, then the schema; names come from the catalog, quoted there.
DROP_SCHEMA = """
DECLARE @sql nvarchar(max) = N'';
SELECT @sql += N'DROP TABLE ' + QUOTENAME(s.name) + N'.' + QUOTENAME(t.name) + N';'
  FROM sys.tables AS t JOIN sys.schemas AS s ON s.schema_id = t.schema_id
 WHERE s.name = %s;
EXEC sp_executesql @sql;
IF SCHEMA_ID(%s) IS NOT NULL EXEC(N'DROP SCHEMA ' + QUOTENAME(%s));
"""


@dataclass
class LiveServer:
    """The server under test and a schema this test owns."""

    url: str
    params: MssqlParams
    schema: str

    def connect(self) -> Any:
        return connect(self.params)

    def rows(self, table: str, order_by: str) -> list[tuple[Any, ...]]:
        """Every row of [schema].[table] ordered by a (bracketed) column list."""
        conn = self.connect()
        try:
            cursor = conn.cursor()
            cursor.execute(f"SELECT * FROM [{self.schema}].[{table}] ORDER BY {order_by}")
            return list(cursor.fetchall())
        finally:
            conn.close()

    def scalar(self, query: str, params: tuple[object, ...] = ()) -> Any:
        conn = self.connect()
        try:
            cursor = conn.cursor()
            cursor.execute(query, params or None)
            row = cursor.fetchone()
            return None if row is None else row[0]
        finally:
            conn.close()


@pytest.fixture
def live_mssql() -> Iterator[LiveServer]:
    url = os.environ[URL_ENV]
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        pytest.fail(f"{URL_ENV} is set but {PASSWORD_ENV} is not; export the server's password.")
    schema = "cdc_live_" + secrets.token_hex(4)
    server = LiveServer(url, parse_mssql_url(url, password, "cdc-tui tests"), schema)
    yield server
    conn = server.connect()
    try:
        cursor = conn.cursor()
        for owned in (schema,):
            cursor.execute(DROP_SCHEMA, (owned, owned, owned))
        cursor.execute(
            "IF OBJECT_ID(N'[cdc_tui].[applied_position]', N'U') IS NOT NULL "
            "DELETE FROM [cdc_tui].[applied_position] WHERE [pipeline] LIKE %s ESCAPE '!'",
            ("live!_%",),
        )
        conn.commit()
    finally:
        conn.close()
