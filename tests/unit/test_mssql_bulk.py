"""What bulk copy is handed for each kind of column (no SQL Server runs here: pymssql's bulk
copy binds a Decimal at precision 33 and a datetime to milliseconds, so these go as text)."""

from __future__ import annotations

import threading

from cdc_tui.domain.spec import TableRef
from cdc_tui.sources.postgres.catalog import ColumnDef, TableDef, TypeKind
from cdc_tui.targets.mssql.bulk import rows_for_bulk
from cdc_tui.targets.mssql.ddl import plan_tables
from cdc_tui.targets.mssql.types import NumericPolicy


def _col(name: str, type_sql: str) -> ColumnDef:
    return ColumnDef(name, type_sql, 0, TypeKind.BASE, True, None, "", False)


TABLE = TableDef(
    ref=TableRef("shop", "t"),
    columns=(_col("id", "bigint"), _col("price", "numeric(20,10)"),
             _col("at", "timestamp with time zone"), _col("seen", "timestamp without time zone")),
    primary_key=("id",), replica_identity="d", replica_identity_index_columns=(), relkind="r",
    estimated_rows=None,
)  # fmt: skip


def test_rows_for_bulk_hands_exact_text_and_reports_progress() -> None:
    seen: list[int] = []
    rows = [("1", "0.0000000100", "2024-01-02 03:04:05.5+05:30", "0001-01-01 00:00:00"),
            ("2", None, None, None)]  # fmt: skip
    plan = plan_tables([TABLE])[0]
    out = list(rows_for_bulk(iter(rows), TABLE, plan, NumericPolicy.ERROR, seen.append,
                             threading.Event()))  # fmt: skip
    assert out == [
        (1, "0.0000000100", "2024-01-01 21:34:05.500000 +00:00", "0001-01-01 00:00:00.000000"),
        (2, None, None, None),
    ]
    assert seen == [2]
