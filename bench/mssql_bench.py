"""The SQL Server path, client side: what cdc-tui's own Python costs per row and per change.

No SQL Server runs here, so this measures what cdc-tui adds on its side of the wire, each beside
the least the same work can cost:

- Step 1: the source table read as text with COPY and parsed by psycopg (baseline), against the
  same read plus cdc-tui's conversion of every value into what bulk copy sends.
- Step 2: pymssql's client-side parameter substitution of one upsert per change, with the raw
  source text as parameters (baseline: the driver's own cost for these statements), against
  MssqlApplier planning, converting and rendering the same changes, grouped into commits with
  the position, into a connection that discards the rendered batches.
"""

from __future__ import annotations

import threading
import time
from statistics import median
from typing import Any

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.messages import Begin, Commit, Insert, Relation, RelationColumn
from cdc_tui.sources.postgres.catalog import read_tables
from cdc_tui.targets.mssql.applier import MssqlApplier
from cdc_tui.targets.mssql.bulk import SOURCE_SESSION, copy_out_sql, rows_for_bulk
from cdc_tui.targets.mssql.ddl import plan_tables
from cdc_tui.targets.mssql.dml import MssqlColumn, MssqlTable, TableSql
from cdc_tui.targets.mssql.types import NumericPolicy
from cdc_tui.targets.mssql.values import converter_for
from pymssql import _mssql

from common import BenchEnv, log
from fullload_bench import TABLE, setup
from workload import SCHEMA

CHANGES_PER_TXN = 10


class DiscardingCursor:
    """Renders each batch as pymssql would before sending it, then drops it."""

    def __init__(self) -> None:
        self.statements = 0

    def execute(self, sql: str, params: tuple[object, ...] | None = None) -> None:
        if params is not None:
            _mssql.substitute_params(sql, params)
        self.statements += 1

    def fetchone(self) -> None:
        return None


class DiscardingConnection:
    def __init__(self) -> None:
        self.cur = DiscardingCursor()

    def cursor(self) -> DiscardingCursor:
        return self.cur

    def commit(self) -> None:
        pass  # nothing was sent, so there is nothing to commit

    def rollback(self) -> None:
        pass  # nothing was sent, so there is nothing to roll back


def _read(env: BenchEnv, td: Any, plan: Any, convert: bool) -> tuple[float, list[Any]]:
    """Seconds to read (and convert) the whole table; the first rows' text for Step 2."""
    kept: list[Any] = []
    with env.src() as c:
        c.execute(SOURCE_SESSION)
        start = time.perf_counter()
        with c.cursor().copy(copy_out_sql(td)) as copy:
            copy.set_types(["text"] * len(td.columns))
            rows: Any = copy.rows()
            if convert:
                rows = rows_for_bulk(rows, td, plan, NumericPolicy.ERROR, lambda n: None,
                                     threading.Event())  # fmt: skip
            for row in rows:
                if len(kept) < 200_000 and not convert:
                    kept.append(row)
        return time.perf_counter() - start, kept


def _table(td: Any, plan: Any) -> MssqlTable:
    columns = tuple(
        MssqlColumn(c.name, cp.target_type, converter_for(c, cp), c.type_oid)
        for c, cp in zip(td.columns, plan.columns, strict=True)
    )
    return MssqlTable(td.ref, plan.target, columns, plan.primary_key)


def _apply(table: MssqlTable, td: Any, rows: list[Any]) -> float:
    applier = MssqlApplier(DiscardingConnection(), "bench", {td.ref: table}, group_changes=2000)
    relation = Relation(1, td.ref.schema, td.ref.name, "d", tuple(
        RelationColumn(1 if c.name == "id" else 0, c.name, c.type_oid, -1) for c in td.columns
    ))  # fmt: skip
    lsn = 1_000
    start = time.perf_counter()
    for first in range(0, len(rows), CHANGES_PER_TXN):
        lsn += 100
        applier.begin(Begin(lsn, 0, lsn))
        if first == 0:
            applier.relation(relation)
        for row in rows[first : first + CHANGES_PER_TXN]:
            applier.change(Insert(1, tuple(row)))
        applier.commit(Commit(0, lsn, lsn + 1, 0))
    applier.flush_commit()
    return time.perf_counter() - start


def _driver_only(table: MssqlTable, rows: list[Any]) -> float:
    upsert = TableSql(table).upsert()
    start = time.perf_counter()
    for row in rows:
        _mssql.substitute_params(upsert, tuple(row))
    return time.perf_counter() - start


def bench_mssql_client(env: BenchEnv, rows: int, reps: int) -> dict[str, Any]:
    setup(env, rows)
    with env.src() as c:
        td = read_tables(c, [TableRef(SCHEMA, TABLE)])[TableRef(SCHEMA, TABLE)]
    assert td is not None
    plan = plan_tables([td])[0]
    table = _table(td, plan)
    read_s, convert_s, apply_s, driver_s = [], [], [], []
    kept: list[Any] = []
    for i in range(reps):
        s, kept = _read(env, td, plan, convert=False)
        read_s.append(s)
        convert_s.append(_read(env, td, plan, convert=True)[0])
        driver_s.append(_driver_only(table, kept))
        apply_s.append(_apply(table, td, kept))
        log(f"mssql client rep {i + 1}: read {read_s[-1]:.2f} s, read+convert "
            f"{convert_s[-1]:.2f} s; {len(kept)} changes: driver {driver_s[-1]:.2f} s, "
            f"applier {apply_s[-1]:.2f} s")  # fmt: skip
    changes = len(kept)
    return {
        "rows": rows,
        "changes": changes,
        "step1_rows_per_s": round(rows / median(convert_s)),
        "step1_read_only_rows_per_s": round(rows / median(read_s)),
        "step1_convert_share": round(1 - median(read_s) / median(convert_s), 2),
        "step2_changes_per_s": round(changes / median(apply_s)),
        "step2_driver_only_per_s": round(changes / median(driver_s)),
    }
