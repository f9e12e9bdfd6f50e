"""What a full load copies: the tables, their key ranges, and the source side of each unit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.fullload.ranges import DEFAULT_ROWS_PER_RANGE, WHOLE_TABLE, KeyRange, plan_ranges
from cdc_tui.fullload.snapshot import open_snapshot_connection
from cdc_tui.pgconn import PgParams
from cdc_tui.sources.postgres.catalog import TableDef
from cdc_tui.targets.postgres.ddl import ColumnPlan, TablePlan

# Sizes include TOAST; a partitioned table's data lives in its leaf partitions.
TABLE_SIZE_QUERY = """
SELECT CASE WHEN c.relkind = 'p' THEN
            (SELECT coalesce(sum(pg_catalog.pg_table_size(pt.relid)), 0)
               FROM pg_catalog.pg_partition_tree(c.oid) AS pt
              WHERE pt.isleaf)
       ELSE pg_catalog.pg_table_size(c.oid) END::int8
  FROM pg_catalog.pg_class AS c
 WHERE c.oid = %(oid)s
"""

COPY_OUT = "COPY (SELECT {columns} FROM {table}{where}) TO STDOUT (FORMAT binary)"


@dataclass(frozen=True)
class TableJob:
    """One table to copy: its source definition, its target plan and the units it is cut into.

    `size_bytes` (the source's `pg_table_size`) lets progress move within one long unit.
    """

    table: TableDef
    plan: TablePlan
    ranges: tuple[KeyRange, ...] = (WHOLE_TABLE,)
    size_bytes: int | None = None

    @property
    def ref(self) -> TableRef:
        """The source table, the key every progress report uses."""
        return self.table.ref

    @property
    def unit_rows_estimate(self) -> int | None:
        """The rows one unit holds on average, from the catalog estimate."""
        if self.table.estimated_rows is None:
            return None
        return max(0, self.table.estimated_rows) // max(1, len(self.ranges))


@dataclass(frozen=True)
class FullLoadJob:
    """Where to copy from and to, and the tables; passwords stay inside the PgParams."""

    source: PgParams
    target: PgParams
    tables: tuple[TableJob, ...]


def plan_job(
    source: PgParams,
    target: PgParams,
    snapshot_name: str,
    tables: Sequence[tuple[TableDef, TablePlan]],
    *,
    target_rows_per_range: int = DEFAULT_ROWS_PER_RANGE,
) -> FullLoadJob:
    """Cut each table into key ranges, reading the bounds and sizes inside the snapshot.

    Raises:
        SnapshotLostError: the snapshot no longer exists.
    """
    jobs: list[TableJob] = []
    with open_snapshot_connection(source, snapshot_name) as conn:
        for table, plan in tables:
            ranges = plan_ranges(conn, table, target_rows_per_range=target_rows_per_range)
            jobs.append(TableJob(table, plan, tuple(ranges), table_size(conn, table)))
        conn.rollback()
    return FullLoadJob(source, target, tuple(jobs))


def table_size(conn: psycopg.Connection[Any], table: TableDef) -> int:
    """Bytes the table (all its leaf partitions) takes on disk, TOAST included."""
    row = conn.execute(TABLE_SIZE_QUERY, {"oid": table.oid}).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def copy_out_sql(job: TableJob, key_range: KeyRange) -> sql.Composed:
    """The source COPY for one unit, casting columns whose target type differs.

    Binary COPY only loads a value into the very type it was sent as, so enums, composites
    and domains are converted on the source to the type the target column has.
    """
    condition = key_range.condition()
    where = sql.SQL("") if condition is None else sql.SQL(" WHERE {}").format(condition)
    return sql.SQL(COPY_OUT).format(
        columns=sql.SQL(", ").join(_select_item(c) for c in job.plan.columns),
        table=sql.Identifier(job.table.ref.schema, job.table.ref.name),
        where=where,
    )


def _select_item(column: ColumnPlan) -> sql.Composable:
    name = sql.Identifier(column.name)
    if column.source_type == column.target_type:
        return name
    # target_type is format_type() text from the catalog, which quotes any name it needs.
    return sql.SQL("{}::{}").format(name, sql.SQL(column.target_type))
