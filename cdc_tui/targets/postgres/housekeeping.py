"""Target-side housekeeping for resync and drop: truncating tables, forgetting the position."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.position import delete_position
from cdc_tui.store.records import PipelineRecord

POSITION_TABLE_EXISTS = "SELECT to_regclass('cdc_tui.applied_position') IS NOT NULL"
TABLE_EXISTS = (
    "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
    "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s"
)


def target_ref(pipeline: PipelineRecord, source: TableRef) -> TableRef:
    """Where a source table lands: the same name, in --target-schema when one was given."""
    return TableRef(pipeline.target_schema or source.schema, source.name)


def truncate_tables(conn: psycopg.Connection[Any], pipeline: PipelineRecord) -> None:
    """TRUNCATE every target table of the pipeline that exists (one statement, one lock set)."""
    present = []
    for t in pipeline.tables:
        ref = target_ref(pipeline, t.table)
        if conn.execute(TABLE_EXISTS, (ref.schema, ref.name)).fetchone() is not None:
            present.append(sql.SQL("{}.{}").format(sql.Identifier(ref.schema),
                                                   sql.Identifier(ref.name)))  # fmt: skip
    if present:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(present)))


def forget_position(conn: psycopg.Connection[Any], pipeline: str) -> None:
    """Delete the pipeline's applied-position row, if the position table exists."""
    row = conn.execute(POSITION_TABLE_EXISTS).fetchone()
    if row is not None and row[0]:
        delete_position(conn, pipeline)
