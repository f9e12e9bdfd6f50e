"""Step 1: copy every table from the exported snapshot to the target, in parallel worker threads.

Each unit of work (a whole table or one key range) runs in one target transaction that first
removes whatever an interrupted attempt left, so a unit can be retried or rerun safely.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.copy import Copy

from cdc_tui.domain.spec import TableRef
from cdc_tui.fullload.errors import FullLoadError, is_retriable
from cdc_tui.fullload.job import FullLoadJob, TableJob, copy_out_sql
from cdc_tui.fullload.progress import ProgressSink
from cdc_tui.fullload.ranges import KeyRange
from cdc_tui.fullload.snapshot import import_snapshot
from cdc_tui.fullload.stream import copy_out_blocks
from cdc_tui.fullload.target import target_steps
from cdc_tui.pgconn import PgParams, connect
from cdc_tui.pgerrors import short_reason

logger = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
# Rows are gathered into blocks just under psycopg's largest single libpq write (128 KiB).
BLOCK_BYTES = 120 * 1024
PROGRESS_INTERVAL_S = 0.5
MAX_RETRIES = 3
RETRY_DELAYS_S = (1.0, 2.0, 4.0)

# A long COPY must not be cut by a role's timeouts; these apply to our sessions only.
SESSION_SETTINGS = (
    "SET statement_timeout = 0",
    "SET idle_in_transaction_session_timeout = 0",
)
# synchronous_commit stays on: the runner records a table as done once commit returns, and an
# asynchronous commit could still be lost in a target crash after that record is written.


@dataclass(frozen=True)
class FullLoadResult:
    """How the load ended: rows committed per table, the tables completed, and if cancelled."""

    cancelled: bool
    rows_copied: dict[TableRef, int]
    tables_done: tuple[TableRef, ...]
    seconds: float


@dataclass(frozen=True)
class _Unit:
    job: TableJob
    key_range: KeyRange

    def describe(self) -> str:
        if self.key_range.whole_table:
            return str(self.job.ref)
        return f"{self.job.ref} ({self.key_range})"


class _Stop(Exception):
    """The load was cancelled or another worker failed: abandon the current unit."""


class _Board:
    """Per-table progress shared by the workers; every sink call is made under its lock."""

    def __init__(self, jobs: tuple[TableJob, ...], sink: ProgressSink, log: Callable[[str], None]):
        self._lock = threading.Lock()
        self._sink = sink
        self._log = log
        self._jobs = {j.ref: j for j in jobs}
        self._committed = {j.ref: 0 for j in jobs}
        self._remaining = {j.ref: len(j.ranges) for j in jobs}
        self._streaming: dict[int, tuple[TableRef, int]] = {}
        self._started = time.monotonic()
        self.done: list[TableRef] = []

    def rows(self) -> dict[TableRef, int]:
        with self._lock:
            return dict(self._committed)

    def streaming(self, worker: int, ref: TableRef, rows_estimate: int) -> None:
        with self._lock:
            self._streaming[worker] = (ref, rows_estimate)
            self._report(ref)

    def abandoned(self, worker: int) -> None:
        with self._lock:
            entry = self._streaming.pop(worker, None)
            if entry is not None:
                self._report(entry[0])

    def unit_done(self, worker: int, ref: TableRef, rows: int) -> None:
        with self._lock:
            self._streaming.pop(worker, None)
            self._committed[ref] += rows
            self._remaining[ref] -= 1
            if self._remaining[ref] > 0:
                self._report(ref)
                return
            total = self._committed[ref]
            self._sink(ref, total, total)
            self._sink.table_done(ref)
            self.done.append(ref)
            elapsed = time.monotonic() - self._started
            self._log(f"{ref}: {total:,} rows copied ({elapsed:.1f} s since start)")

    def _report(self, ref: TableRef) -> None:
        rows = self._committed[ref] + sum(n for t, n in self._streaming.values() if t == ref)
        estimate = self._jobs[ref].table.estimated_rows
        self._sink(ref, rows, None if estimate is None else max(estimate, self._committed[ref]))


class _Load:
    """State shared by the workers of one run: the queue, the stop signals, the first failure."""

    def __init__(
        self,
        job: FullLoadJob,
        snapshot_name: str,
        board: _Board,
        cancel: threading.Event,
        log: Callable[[str], None],
    ) -> None:
        self.job = job
        self.snapshot_name = snapshot_name
        self.board = board
        self.cancel = cancel
        self.log = log
        self.failed = threading.Event()
        self.first_error: BaseException | None = None
        self._lock = threading.Lock()
        self.units: queue.SimpleQueue[_Unit] = queue.SimpleQueue()
        # Biggest units first, so the last ones to finish are short.
        units = [_Unit(j, r) for j in job.tables for r in j.ranges]
        units.sort(key=lambda u: u.job.unit_rows_estimate or 0, reverse=True)
        for unit in units:
            self.units.put(unit)
        self.unit_count = len(units)

    def stopping(self) -> bool:
        return self.cancel.is_set() or self.failed.is_set()

    def next_unit(self) -> _Unit | None:
        if self.stopping():
            return None
        try:
            return self.units.get_nowait()
        except queue.Empty:
            return None

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.first_error is None:
                self.first_error = exc
        self.failed.set()

    def wait_before_retry(self, seconds: float) -> bool:
        """Sleep before a retry; True if the load was told to stop meanwhile."""
        deadline = time.monotonic() + seconds
        while not self.stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.cancel.wait(min(left, 0.2))
        return True

    def secrets(self) -> list[str | None]:
        return [self.job.source.password, self.job.target.password]


class _Worker:
    """One thread: a source connection inside the snapshot and a target connection."""

    def __init__(self, load: _Load, number: int) -> None:
        self.load = load
        self.number = number
        self._source: psycopg.Connection[Any] | None = None
        self._target: psycopg.Connection[Any] | None = None

    def run(self) -> None:
        try:
            while (unit := self.load.next_unit()) is not None:
                self._run_unit(unit)
        except _Stop:
            return
        except BaseException as exc:
            self.load.fail(exc)
            raise
        finally:
            self._close()

    def _run_unit(self, unit: _Unit) -> None:
        for attempt in range(MAX_RETRIES + 1):
            try:
                self._connect()
                rows = self._copy(unit)
            except psycopg.Error as exc:
                self._close()
                self.load.board.abandoned(self.number)
                if self.load.stopping():
                    raise _Stop from exc
                if not is_retriable(exc) or attempt == MAX_RETRIES:
                    raise self._failure(unit, exc) from exc
                self._note_retry(unit, exc, attempt)
                if self.load.wait_before_retry(RETRY_DELAYS_S[attempt]):
                    raise _Stop from exc
            except _Stop:
                self.load.board.abandoned(self.number)
                raise
            else:
                logger.debug("copied %s: %d rows", unit.describe(), rows)
                self.load.board.unit_done(self.number, unit.job.ref, rows)
                return

    def _copy(self, unit: _Unit) -> int:
        """Copy one unit in one target transaction; the target COPY's row count is exact.

        Whatever an interrupted earlier attempt left is removed first, in the same transaction,
        so a unit can be retried or rerun without duplicating a row.
        """
        assert self._source is not None and self._target is not None
        job, key_range = unit.job, unit.key_range
        with self._target.transaction():
            steps = target_steps(self._target, job, key_range)
            for statement in steps.before:
                self._target.execute(statement)
            with self._source.cursor() as src_cur, self._target.cursor() as tgt_cur:
                with (
                    src_cur.copy(copy_out_sql(job, key_range)),
                    tgt_cur.copy(steps.copy) as into,
                ):
                    self._stream(self._source, into, job)
                rows = tgt_cur.rowcount
            for statement in steps.after:
                self._target.execute(statement)
        return rows

    def _stream(self, source: psycopg.Connection[Any], into: Copy, job: TableJob) -> None:
        """Pass the source's binary COPY data to the target in blocks, never parsing a row."""
        write = into.write
        streamed = 0
        next_report = time.monotonic() + PROGRESS_INTERVAL_S
        for block in copy_out_blocks(source, BLOCK_BYTES):
            if block:
                write(block)
                streamed += len(block)
            if self.load.stopping():
                raise _Stop
            now = time.monotonic()
            if now >= next_report:
                next_report = now + PROGRESS_INTERVAL_S
                self.load.board.streaming(self.number, job.ref, _rows_from_bytes(job, streamed))

    def _connect(self) -> None:
        job = self.load.job
        if self._source is None:
            self._source = _open(job.source)
            import_snapshot(self._source, self.load.snapshot_name)
        if self._target is None:
            self._target = _open(job.target)

    def _close(self) -> None:
        for conn in (self._source, self._target):
            if conn is not None:
                conn.close()
        self._source = self._target = None

    def _failure(self, unit: _Unit, exc: psycopg.Error) -> FullLoadError:
        reason = short_reason(exc, self.load.secrets())
        return FullLoadError(
            f"Copying {unit.describe()} failed: {reason}; fix the cause and start the "
            "pipeline again (the table is copied again from the start)."
        )

    def _note_retry(self, unit: _Unit, exc: psycopg.Error, attempt: int) -> None:
        reason = short_reason(exc, self.load.secrets())
        line = (
            f"retrying {unit.describe()} after: {reason} "
            f"(attempt {attempt + 2} of {MAX_RETRIES + 1})"
        )
        logger.warning("%s", line)
        self.load.log(line)


def _open(params: PgParams) -> psycopg.Connection[Any]:
    conn = connect(params, autocommit=True)
    try:
        for statement in SESSION_SETTINGS:
            conn.execute(statement)
    except BaseException:
        conn.close()
        raise
    return conn


def _rows_from_bytes(job: TableJob, streamed: int) -> int:
    """Rows a unit has streamed so far, guessed from bytes against the table's size on disk."""
    estimate, cap = job.table.estimated_rows, job.unit_rows_estimate
    if not job.size_bytes or not estimate or cap is None:
        return 0
    return min(cap, streamed * estimate // job.size_bytes)


def run_full_load(
    job: FullLoadJob,
    *,
    workers: int = DEFAULT_WORKERS,
    snapshot_name: str,
    progress: ProgressSink,
    cancel: threading.Event,
    log: Callable[[str], None] | None = None,
) -> FullLoadResult:
    """Copy every unit of `job` with `workers` threads, all reading `snapshot_name`.

    The connection that exported the snapshot must stay open until this returns: a retried
    unit imports the snapshot again. `log` receives step-log lines: completions, retries.

    Raises:
        SnapshotLostError: the snapshot could not be imported; drop the slot, restart Step 1.
        FullLoadError: a unit failed permanently, or still failed after its retries.
    """
    started = time.monotonic()
    emit = log or (lambda _line: None)
    board = _Board(job.tables, progress, emit)
    load = _Load(job, snapshot_name, board, cancel, emit)
    count = max(1, min(workers, load.unit_count))
    if load.unit_count:
        with ThreadPoolExecutor(count, thread_name_prefix="cdc-tui-fullload") as pool:
            futures = [pool.submit(_Worker(load, n).run) for n in range(count)]
        errors = [exc for f in futures if (exc := f.exception()) is not None]
        if errors:
            raise load.first_error or errors[0]
    done = tuple(board.done)
    return FullLoadResult(
        cancelled=cancel.is_set() and len(done) < len(job.tables),
        rows_copied=board.rows(),
        tables_done=done,
        seconds=time.monotonic() - started,
    )
