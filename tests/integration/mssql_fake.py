"""A stand-in for a live SQL Server (none can run here) at the pymssql connection level.

It keeps what the runner's SQL Server path sends: Step 0 batches, bulk-copied rows, every
statement of each committed transaction, and the applied position, which it stores and reads
back like the real table would. Every parameterised statement is rendered through pymssql's own
client-side substitution, so a placeholder/parameter mismatch fails here as it would there.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pymssql import _mssql

from tests.unit.mssql_recording import RENDERED_POSITION

_CREATE_TABLE = re.compile(r"CREATE TABLE (\[.+?\]\.\[.+?\]) \(\n(.*)\n\);", re.DOTALL)
_COLUMN_LINE = re.compile(r"^\s+\[((?:[^\]]|\]\])+)\] ")
_DML = ("MERGE", "UPDATE", "DELETE", "INSERT", "TRUNCATE")
_OBJECT_NAME = re.compile(r"OBJECT_ID\(N'(.*?)'")


@dataclass
class FakeSqlServer:
    """Shared state of one fake server; `connect()` hands out connections to it."""

    tables: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, list[tuple[object, ...]]] = field(default_factory=dict)
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    committed: list[list[str]] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def connect(self, *_args: object, **_kwargs: object) -> FakeConnection:
        return FakeConnection(self)

    def statements(self) -> list[str]:
        """Every statement of every committed transaction, in commit order, as sent."""
        with self.lock:
            return [s for txn in self.committed for s in txn]


class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.result: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: tuple[object, ...] | None = None) -> None:
        if params is not None:
            _mssql.substitute_params(sql, params)  # raises like pymssql on a mismatch
        self.result = self.conn.run(sql, params)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.result[0] if self.result else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self.result)


class FakeConnection:
    def __init__(self, server: FakeSqlServer) -> None:
        self.server = server
        self.pending: list[str] = []
        self.closed = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def run(self, sql: str, params: tuple[object, ...] | None) -> list[tuple[Any, ...]]:
        server = self.server
        with server.lock:
            created = _CREATE_TABLE.search(sql)
            if created:
                server.batches.append(sql)
                columns = [
                    m[1].replace("]]", "]")
                    for line in created[2].splitlines()
                    if (m := _COLUMN_LINE.match(line)) and not line.strip().startswith("PRIMARY")
                ]
                server.tables.setdefault(created[1], columns)
                server.rows.setdefault(created[1], [])
                return []
            if sql.startswith("SELECT OBJECT_ID(%s, N'U')"):
                assert params is not None
                return [(1 if str(params[0]) in server.tables else None,)]
            if "FROM sys.columns" in sql:
                assert params is not None
                return [(c, "t") for c in server.tables.get(str(params[0]), [])]
            if "[cdc_tui].[applied_position]" in sql and sql.lstrip().startswith("SELECT"):
                assert params is not None
                found = server.positions.get(str(params[0]))
                return [found] if found else []
        rendered = sql if params is None else _mssql.substitute_params(sql, params).decode()
        # The applier renders a batch itself, one statement a line; split it back.
        lines = rendered.split("\n") if rendered.startswith(_DML) else [rendered]
        self.pending.extend(lines)
        return []

    def bulk_copy(self, table: str, rows: Iterable[tuple[object, ...]], **_options: object) -> None:
        copied = list(rows)
        with self.server.lock:
            self.server.rows.setdefault(table, []).extend(copied)

    def commit(self) -> None:
        with self.server.lock:
            for sql in self.pending:
                if sql.startswith("DROP TABLE "):
                    self.server.tables.pop(sql.removeprefix("DROP TABLE "), None)
                if sql.startswith("TRUNCATE TABLE "):
                    self.server.rows[sql.removeprefix("TRUNCATE TABLE ").rstrip(";")] = []
                position = RENDERED_POSITION.search(sql)
                if sql.startswith("MERGE [cdc_tui].[applied_position]") and position:
                    pipeline, commit_lsn, end_lsn = position.groups()
                    self.server.positions[pipeline] = (int(commit_lsn), int(end_lsn))
            if self.pending:
                self.server.committed.append(list(self.pending))
            self.pending = []

    def rollback(self) -> None:
        self.pending = []

    def close(self) -> None:
        self.closed = True


def object_name(sql: str) -> str | None:
    """The quoted name inside OBJECT_ID(N'...') of a Step 0 batch."""
    found = _OBJECT_NAME.search(sql)
    return found[1] if found else None
