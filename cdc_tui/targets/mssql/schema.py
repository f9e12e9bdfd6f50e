"""Step 0 on a live SQL Server: run the planned batches in one transaction, then check that
tables which already existed have exactly the planned columns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cdc_tui.errors import OperationError
from cdc_tui.targets.mssql.ddl import TablePlan, script_batches
from cdc_tui.targets.mssql.identifiers import quote_qualified

# Columns of one table in order; the name is a parameter (OBJECT_ID parses the quoted name).
TABLE_COLUMNS = """
SELECT c.name, t.name
  FROM sys.columns AS c
  JOIN sys.types AS t ON t.user_type_id = c.user_type_id
 WHERE c.object_id = OBJECT_ID(%s, N'U')
 ORDER BY c.column_id
"""


def apply_step0(conn: Any, plans: Sequence[TablePlan], log: Callable[[str], None]) -> None:
    """Create the position table, schemas and tables (each batch is safe to run twice), all in
    one transaction so a failure leaves nothing half-created; then check existing tables."""
    cursor = conn.cursor()
    try:
        for batch in script_batches(plans):
            cursor.execute(batch)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    for plan in plans:
        check_columns(cursor, plan)
        log(f"{quote_qualified(plan.target.schema, plan.target.name)} ready")
    conn.commit()


def check_columns(cursor: Any, plan: TablePlan) -> None:
    """A table that was already there must have the planned columns, in order."""
    name = quote_qualified(plan.target.schema, plan.target.name)
    cursor.execute(TABLE_COLUMNS, (name,))
    have = [str(row[0]) for row in cursor.fetchall()]
    want = [c.name for c in plan.columns]
    if have != want:
        raise OperationError(
            f"Table {name} already exists on the SQL Server target with columns "
            f"({', '.join(have)}) where Step 0 plans ({', '.join(want)}); drop or rename it, "
            "or choose another --target-schema."
        )


IDENTITY_COLUMNS = "SELECT COUNT(*) FROM sys.identity_columns WHERE object_id = OBJECT_ID(%s, N'U')"


def identity_tables(cursor: Any, names: Sequence[str]) -> list[str]:
    """Which of the bracketed table names have an IDENTITY column (the JDBC sink then needs
    IDENTITY_INSERT around its inserts)."""
    found = []
    for name in names:
        cursor.execute(IDENTITY_COLUMNS, (name,))
        row = cursor.fetchone()
        if row is not None and int(row[0] or 0) > 0:
            found.append(name)
    return found
