"""Resync and drop on a SQL Server target: empty the tables, forget the applied position."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cdc_tui.domain.spec import TableRef
from cdc_tui.targets.mssql.ddl import DEFAULT_SCHEMA
from cdc_tui.targets.mssql.identifiers import quote_qualified

# The position table has a fixed name (see ddl.py), so it is spelled out.
FORGET_POSITION = (
    "IF OBJECT_ID(N'[cdc_tui].[applied_position]', N'U') IS NOT NULL"
    " DELETE FROM [cdc_tui].[applied_position] WHERE [pipeline] = %s"
)


def target_name(table: TableRef, target_schema: str | None) -> str:
    """The bracketed SQL Server name Step 0 gives a source table."""
    return quote_qualified(target_schema or DEFAULT_SCHEMA, table.name)


def truncate_tables(cursor: Any, tables: Iterable[TableRef], target_schema: str | None) -> int:
    """TRUNCATE each target table that exists; the count of tables emptied."""
    emptied = 0
    for table in tables:
        name = target_name(table, target_schema)
        cursor.execute("SELECT OBJECT_ID(%s, N'U')", (name,))
        row = cursor.fetchone()
        if row is not None and row[0] is not None:
            cursor.execute(f"TRUNCATE TABLE {name}")
            emptied += 1
    return emptied


def forget_position(cursor: Any, pipeline: str) -> None:
    """Delete the pipeline's row from [cdc_tui].[applied_position], if the table exists."""
    cursor.execute(FORGET_POSITION, (pipeline,))


def drop_table(cursor: Any, name: str) -> bool:
    """DROP the bracketed table `name` when it exists; whether it did."""
    cursor.execute("SELECT OBJECT_ID(%s, N'U')", (name,))
    row = cursor.fetchone()
    if row is None or row[0] is None:
        return False
    cursor.execute(f"DROP TABLE {name}")
    return True


def read_heartbeat(cursor: Any, name: str) -> Any:
    """The beat_at of row 1 of the bracketed heartbeat table, None when missing or empty."""
    cursor.execute("SELECT OBJECT_ID(%s, N'U')", (name,))
    row = cursor.fetchone()
    if row is None or row[0] is None:
        return None
    cursor.execute(f"SELECT [beat_at] FROM {name} WHERE [id] = 1")  # noqa: S608
    found = cursor.fetchone()
    return None if found is None else found[0]
