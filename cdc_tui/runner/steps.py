"""Steps 0 and 1 as the runner runs them: target tables, publication, slot, full load.

The handoff (DESIGN §3): the publication first, then the slot created on a replication
connection that exports its snapshot and stays open, idle, until the full load is done; every
copy worker reads that snapshot, so the slot's consistent point is exactly where CDC begins.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import FullLoadStatus, StatusField, TableState
from cdc_tui.engines.embedded.position import ensure_position_table, write_position
from cdc_tui.engines.embedded.replication import ReplicationConnection
from cdc_tui.errors import OperationError
from cdc_tui.fullload.copier import run_full_load
from cdc_tui.fullload.job import plan_job
from cdc_tui.fullload.progress import ProgressTracker
from cdc_tui.lsn import lsn_to_str
from cdc_tui.pgconn import PgParams, connect
from cdc_tui.runner.steplog import StepLog
from cdc_tui.sources.postgres.catalog import TableDef, read_tables
from cdc_tui.sources.postgres.objects import (
    create_publication,
    publication_exists,
    publication_tables,
)
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.targets.mssql.connection import MssqlParams
from cdc_tui.targets.postgres.ddl import TablePlan, plan_tables
from cdc_tui.targets.postgres.schema import apply_step0

log = logging.getLogger(__name__)

PROGRESS_PERSIST_S = 1.0
EXPORT_SNAPSHOT = "SELECT pg_catalog.pg_export_snapshot()"


@dataclass
class StepContext:
    """What every step needs: where to connect, where to record, who is acting."""

    pipeline: str
    repo: PipelineRepository
    steplog: StepLog
    source: PgParams
    target: PgParams | MssqlParams
    actor: str
    workers: int
    split_rows: int
    slot_name: str
    publication_name: str
    target_schema: str | None
    tables: tuple[TableRef, ...]
    # Tables the publication carries besides the replicated ones (kafka_connect's helpers).
    published_extra: tuple[TableRef, ...] = ()

    @property
    def published(self) -> tuple[TableRef, ...]:
        return self.tables + self.published_extra

    @property
    def pg_target(self) -> PgParams:
        """The target's parameters where only a PostgreSQL target can be meant."""
        if not isinstance(self.target, PgParams):
            raise TypeError(f"pipeline {self.pipeline!r} has no PostgreSQL target")
        return self.target


class TargetPort(Protocol):
    """What Steps 0 and 1 do on one kind of target; Step 2 lives with each engine."""

    def step0(self, sc: StepContext) -> None:
        """Create or check the target tables and the position table."""

    def copy(self, sc: StepContext, snapshot_name: str, cancel: threading.Event) -> bool:
        """Copy every table from the exported snapshot; False when cancelled."""

    def record_handoff(self, sc: StepContext, lsn: int) -> None:
        """Store `lsn` as the target's applied position, where CDC starts."""


def load_defs(source: PgParams, pipeline: str, tables: Sequence[TableRef]) -> list[TableDef]:
    """Read the source catalog of `tables`; a missing table is a hard error."""
    with connect(source) as conn:
        return read_defs(conn, pipeline, tables)


def read_defs(conn: Any, pipeline: str, tables: Sequence[TableRef]) -> list[TableDef]:
    """`load_defs` on an open source connection."""
    defs = read_tables(conn, list(tables))
    missing = [str(ref) for ref, d in defs.items() if d is None]
    if missing:
        raise OperationError(
            f"Table(s) {', '.join(missing)} of pipeline {pipeline!r} no longer exist on the "
            "source; restore them or drop and recreate the pipeline."
        )
    return [d for d in defs.values() if d is not None]


def load_plans(
    source: PgParams, pipeline: str, tables: Sequence[TableRef], target_schema: str | None
) -> list[tuple[TableDef, TablePlan]]:
    """Read the source catalog and plan PostgreSQL target tables."""
    present = load_defs(source, pipeline, tables)
    plans = plan_tables(present, target_schema=target_schema)
    return list(zip(present, plans, strict=True))


class PostgresTarget:
    """Steps 0 and 1 into PostgreSQL: DDL in one transaction, the parallel COPY pipe."""

    def __init__(
        self,
        plans: Sequence[tuple[TableDef, TablePlan]],
        extra: Sequence[tuple[TableDef, TablePlan]] = (),
    ) -> None:
        self.plans = list(plans)
        self.extra = list(extra)  # created in Step 0 but never copied (kafka_connect helpers)

    def add_helpers(self, sc: StepContext, defs: Sequence[TableDef]) -> None:
        """Tables Step 0 creates but Step 1 never copies (kafka_connect's heartbeat)."""
        plans = plan_tables(defs, target_schema=sc.target_schema)
        self.extra = list(zip(defs, plans, strict=True))

    def step0(self, sc: StepContext) -> None:
        run_step0(sc, self.plans + self.extra)

    def copy(self, sc: StepContext, snapshot_name: str, cancel: threading.Event) -> bool:
        return copy_tables(sc, self.plans, snapshot_name, cancel)

    def record_handoff(self, sc: StepContext, lsn: int) -> None:
        record_handoff(sc, lsn)


def run_step0(sc: StepContext, plans: Sequence[tuple[TableDef, TablePlan]]) -> None:
    """Create (or check) the target tables and the position table, in one transaction each."""
    sc.steplog.step0(f"creating or checking {len(plans)} target table(s)")
    with connect(sc.pg_target, autocommit=False) as conn:
        apply_step0(conn, [p for _, p in plans], sc.steplog.step0)
        with conn.transaction():
            ensure_position_table(conn)
    sc.steplog.step0("done")


def ensure_publication(sc: StepContext) -> None:
    """Create the pipeline's publication, or accept an existing one with exactly its tables."""
    with connect(sc.source) as conn:
        if publication_exists(conn, sc.publication_name):
            have = publication_tables(conn, sc.publication_name)
            if have != set(sc.published):
                raise OperationError(
                    f"Publication {sc.publication_name} exists on the source with other tables; "
                    f"drop it (DROP PUBLICATION {sc.publication_name}) and start again."
                )
            sc.steplog.step1(f"publication {sc.publication_name} already exists")
            return
        create_publication(conn, sc.publication_name, sc.published)
    sc.steplog.step1(f"created publication {sc.publication_name}")


class PersistingProgress:
    """The copier's progress sink: table states, row counts, rate and ETA into the metadata DB."""

    def __init__(self, sc: StepContext) -> None:
        self.sc = sc
        self.trackers: dict[TableRef, ProgressTracker] = {}
        self.last_saved: dict[TableRef, float] = {}
        self.lock = threading.Lock()

    def __call__(self, table: TableRef, rows_copied: int, rows_estimated: int | None) -> None:
        now = time.monotonic()
        with self.lock:
            tracker = self.trackers.get(table)
            if tracker is None:
                tracker = self.trackers[table] = ProgressTracker()
                self.sc.repo.transition_table(
                    self.sc.pipeline, table, TableState.COPYING, reason="copy started",
                    actor=self.sc.actor,
                )  # fmt: skip
            tracker.update(now, rows_copied, rows_estimated)
            if now - self.last_saved.get(table, 0.0) < PROGRESS_PERSIST_S:
                return
            self.last_saved[table] = now
        self.sc.repo.update_table_progress(
            self.sc.pipeline, table, rows_copied=rows_copied, rows_estimated=rows_estimated
        )
        self.sc.steplog.step1(describe_progress(table, tracker))

    def table_done(self, table: TableRef) -> None:
        if table not in self.trackers:
            self(table, 0, 0)  # an empty table reports no progress, but still passes COPYING
        rows = self.trackers[table].rows_copied
        self.sc.repo.update_table_progress(
            self.sc.pipeline, table, rows_copied=rows, rows_estimated=rows
        )
        self.sc.repo.transition_table(
            self.sc.pipeline, table, TableState.COMPLETED, reason=f"{rows} rows copied",
            actor=self.sc.actor,
        )  # fmt: skip


def describe_progress(table: TableRef, tracker: ProgressTracker) -> str:
    """`public.orders: 120,000 / 2,000,000 rows (6%), 45,000 rows/s, ETA 42 s`."""
    parts = [f"{table}: {tracker.rows_copied:,}"]
    if tracker.rows_estimated:
        parts.append(f" / {tracker.rows_estimated:,} rows")
        if tracker.fraction_done is not None:
            parts.append(f" ({tracker.fraction_done:.0%})")
    else:
        parts.append(" rows")
    if tracker.rows_per_second is not None:
        parts.append(f", {tracker.rows_per_second:,.0f} rows/s")
    if tracker.eta_seconds is not None:
        parts.append(f", ETA {tracker.eta_seconds:,.0f} s")
    return "".join(parts)


def begin_full_load(sc: StepContext) -> None:
    """Mark Step 1 IN_PROGRESS before anything is created, so a crash is recognised on restart."""
    sc.repo.transition(sc.pipeline, StatusField.FULL_LOAD_STATUS, FullLoadStatus.IN_PROGRESS,
                       reason="Step 1 started", actor=sc.actor)  # fmt: skip
    sc.repo.update(sc.pipeline, full_load_started_at=datetime.now(UTC),
                   full_load_completed_at=None)  # fmt: skip


def copy_tables(
    sc: StepContext,
    plans: Sequence[tuple[TableDef, TablePlan]],
    snapshot_name: str,
    cancel: threading.Event,
) -> bool:
    """Copy every table from the snapshot; False when cancelled before the end."""
    job = plan_job(
        sc.source, sc.pg_target, snapshot_name, plans, target_rows_per_range=sc.split_rows
    )
    units = sum(len(t.ranges) for t in job.tables)
    sc.steplog.step1(
        f"copying {len(job.tables)} table(s) in {units} unit(s) with {sc.workers} worker(s)"
    )
    result = run_full_load(
        job,
        workers=sc.workers,
        snapshot_name=snapshot_name,
        progress=PersistingProgress(sc),
        cancel=cancel,
        log=sc.steplog.step1,
    )
    if result.cancelled:
        sc.steplog.step1("stopped before the end; the next start copies again", "WARNING")
        return False
    total = sum(result.rows_copied.values())
    sc.steplog.step1(f"copied {total:,} rows in {result.seconds:,.1f} s")
    return True


def record_handoff(sc: StepContext, lsn: int) -> None:
    """Store the slot's consistent point as the target's applied position: CDC starts there."""
    with connect(sc.pg_target, autocommit=False) as conn, conn.transaction():
        write_position(conn, sc.pipeline, lsn, lsn, None)


def finish_full_load(sc: StepContext, target: TargetPort, handoff_lsn: int | None) -> None:
    """Record the handoff position on the target, then mark Step 1 COMPLETED."""
    if handoff_lsn is not None:
        target.record_handoff(sc, handoff_lsn)
    sc.repo.update(sc.pipeline, full_load_completed_at=datetime.now(UTC))
    sc.repo.transition(sc.pipeline, StatusField.FULL_LOAD_STATUS, FullLoadStatus.COMPLETED,
                       reason="Step 1 completed", actor=sc.actor)  # fmt: skip


def full_load_with_slot(sc: StepContext, target: TargetPort, cancel: threading.Event) -> bool:
    """Step 1 for CDC modes: slot with an exported snapshot, copy, handoff at its consistent
    point. Returns False when cancelled (Step 1 then starts again on the next run)."""
    begin_full_load(sc)
    ensure_publication(sc)
    with ReplicationConnection.open(sc.source, application_name=f"cdc-tui {sc.pipeline}") as repl:
        created = repl.create_slot(sc.slot_name, export_snapshot=True)
        assert created.snapshot_name is not None
        lsn = lsn_to_str(created.consistent_point)
        sc.repo.update(sc.pipeline, full_load_lsn=lsn)
        sc.steplog.step1(
            f"created slot {sc.slot_name} at {lsn}; copying from snapshot {created.snapshot_name}"
        )
        if not target.copy(sc, created.snapshot_name, cancel):
            return False
    finish_full_load(sc, target, created.consistent_point)
    sc.steplog.step1(f"full load complete; CDC starts at {lsn}")
    return True


@contextmanager
def exported_snapshot(params: PgParams) -> Iterator[str]:
    """A snapshot exported from an open REPEATABLE READ transaction (no slot needed)."""
    with connect(params, autocommit=False) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row: Any = conn.execute(EXPORT_SNAPSHOT).fetchone()
        yield str(row[0])
        conn.rollback()


def full_load_only(sc: StepContext, target: TargetPort, cancel: threading.Event) -> bool:
    """Step 1 for full_load_only pipelines: a consistent copy, no slot, no publication."""
    begin_full_load(sc)
    with exported_snapshot(sc.source) as snapshot:
        sc.steplog.step1(f"copying from snapshot {snapshot}")
        if not target.copy(sc, snapshot, cancel):
            return False
    finish_full_load(sc, target, None)
    sc.steplog.step1("full load complete")
    return True


def create_cdc_only_slot(sc: StepContext, target: TargetPort) -> None:
    """cdc_only: publication and slot (no snapshot); CDC starts at the slot's consistent point."""
    ensure_publication(sc)
    with ReplicationConnection.open(sc.source, application_name=f"cdc-tui {sc.pipeline}") as repl:
        created = repl.create_slot(sc.slot_name, export_snapshot=False)
    target.record_handoff(sc, created.consistent_point)
    lsn = lsn_to_str(created.consistent_point)
    sc.repo.update(sc.pipeline, full_load_lsn=lsn)
    sc.steplog.step1(f"created slot {sc.slot_name} at {lsn} (cdc_only)")
