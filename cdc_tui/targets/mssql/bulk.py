"""Step 1 into SQL Server: each table read from the exported snapshot as PostgreSQL text, the
same text the replication stream carries, converted by the same converters, then bulk copied.

One conversion path for Step 1 and Step 2 means a value lands the same way whichever step
delivered it. pymssql's bulk copy commits every `batch_rows` rows, so a table interrupted half
way is emptied (TRUNCATE) when Step 1 starts it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from psycopg import sql

from cdc_tui.fullload.snapshot import open_snapshot_connection
from cdc_tui.pgconn import PgParams
from cdc_tui.sources.postgres.catalog import TableDef
from cdc_tui.targets.mssql.ddl import ColumnPlan, TablePlan
from cdc_tui.targets.mssql.errors import ValueRejected
from cdc_tui.targets.mssql.identifiers import quote_qualified
from cdc_tui.targets.mssql.types import NumericPolicy
from cdc_tui.targets.mssql.values import Converter, row_converter

# The source session prints values exactly as the walsender does for Step 2 (replication.py).
SOURCE_SESSION = (
    "SELECT pg_catalog.set_config('datestyle', 'ISO', false),"
    " pg_catalog.set_config('intervalstyle', 'postgres', false),"
    " pg_catalog.set_config('extra_float_digits', '3', false),"
    " pg_catalog.set_config('timezone', 'UTC', false),"
    " pg_catalog.set_config('bytea_output', 'hex', false)"
)
COPY_TEXT_OUT = "COPY (SELECT {columns} FROM {table}) TO STDOUT"
DEFAULT_BATCH_ROWS = 10_000
PROGRESS_EVERY_ROWS = 5_000

Progress = Callable[[int], None]


class CopyCancelled(Exception):
    """The runner asked to stop while a table was being copied."""


def copy_out_sql(td: TableDef) -> sql.Composed:
    return sql.SQL(COPY_TEXT_OUT).format(
        columns=sql.SQL(", ").join(sql.Identifier(c.name) for c in td.columns),
        table=sql.Identifier(td.ref.schema, td.ref.name),
    )


def for_bulk(column: ColumnPlan, convert: Converter) -> Converter:
    """`convert` composed, once per column, with how its value travels through bulk copy where
    that differs from a statement: pymssql binds a Decimal with a fixed precision of 33, so
    decimals go as their exact plain text (never `1E-8`). Temporal values already are the text
    both paths read (see values_text.as_timestamptz)."""
    if column.target_type.startswith("decimal"):
        return lambda text: format(convert(text), "f")
    return convert


def rows_for_bulk(
    rows: Iterator[Sequence[str | None]],
    td: TableDef,
    plan: TablePlan,
    policy: NumericPolicy,
    progress: Progress,
    cancel: threading.Event,
) -> Iterator[tuple[object, ...]]:
    """Convert source text rows for bulk copy, reporting progress and honouring a cancel."""
    convert = row_converter(td, plan, numeric_policy=policy, wrap=for_bulk)
    count = 0
    for row in rows:
        try:
            values = convert(row)
        except ValueRejected as exc:
            raise ValueRejected(f"{exc.reason} (row {count + 1:,} of the copy)") from exc
        count += 1
        if count % PROGRESS_EVERY_ROWS == 0:
            progress(count)
            if cancel.is_set():
                raise CopyCancelled
        yield values
    progress(count)


def copy_table(
    source: Any,
    target: Any,
    td: TableDef,
    plan: TablePlan,
    *,
    policy: NumericPolicy,
    progress: Progress,
    cancel: threading.Event,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> None:
    """Copy one table: `source` is a psycopg connection inside the exported snapshot, `target`
    a pymssql connection; the target table is emptied first, so a retry starts clean."""
    name = quote_qualified(plan.target.schema, plan.target.name)
    cursor = target.cursor()
    cursor.execute(f"TRUNCATE TABLE {name}")
    target.commit()
    source.execute(SOURCE_SESSION)
    with source.cursor().copy(copy_out_sql(td)) as copy:
        copy.set_types(["text"] * len(td.columns))
        rows = rows_for_bulk(copy.rows(), td, plan, policy, progress, cancel)
        # CHECK constraints (ISJSON, enum labels) are enforced, so they stay trusted.
        target.bulk_copy(
            name,
            rows,
            column_ids=list(range(1, len(plan.columns) + 1)),
            batch_size=batch_rows,
            tablock=True,
            check_constraints=True,
        )
    target.commit()


def open_source(params: PgParams, snapshot_name: str) -> Any:
    """A source connection inside the exported snapshot (see fullload/snapshot.py)."""
    return open_snapshot_connection(params, snapshot_name)
