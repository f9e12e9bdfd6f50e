"""`cdc-tui run NAME`: the process that owns a pipeline's Steps 0-2 and its stream.

One runner per pipeline (the lease). Statuses are written the moment they change, with the
reason. Retriable faults (a source or target that went away, a killed walsender, a deadlock)
are retried with capped, jittered backoff; permanent ones stop the pipeline in ERROR with the
table, key and LSN, keeping the slot so nothing is lost while the DBA fixes the cause.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import psycopg

from cdc_tui.domain.status import (
    CdcStatus,
    Engine,
    FullLoadStatus,
    Mode,
    PipelineStatus,
    StatusField,
    TableState,
)
from cdc_tui.engines.embedded.apply_errors import SchemaDriftError
from cdc_tui.engines.kafka_connect.naming import heartbeat_table, helper_tables
from cdc_tui.errors import CdcTuiError, OperationError
from cdc_tui.fullload.errors import SnapshotLostError
from cdc_tui.pgconn import PgParams, connect
from cdc_tui.pgerrors import short_reason
from cdc_tui.runner.backoff import Backoff
from cdc_tui.runner.connect_prepare import prepare_debezium_source
from cdc_tui.runner.connect_stream import run_connect_step2
from cdc_tui.runner.lease import LeaseKeeper
from cdc_tui.runner.mssql_target import MssqlTarget, load_mssql_plans
from cdc_tui.runner.retry import is_retriable
from cdc_tui.runner.settle import WORKING_CDC, settle_stopped
from cdc_tui.runner.steplog import StepLog
from cdc_tui.runner.steps import (
    PostgresTarget,
    StepContext,
    create_cdc_only_slot,
    full_load_only,
    full_load_with_slot,
    load_defs,
)
from cdc_tui.runner.streaming import run_step2
from cdc_tui.services.context import AppContext, default_actor
from cdc_tui.services.pipelines import numeric_policy
from cdc_tui.sources.postgres.objects import drop_slot, slot_row
from cdc_tui.store.records import PipelineRecord
from cdc_tui.store.repositories import LeaseRepository, PipelineRepository
from cdc_tui.targets.mssql.connection import MssqlParams
from cdc_tui.targets.postgres.ddl import plan_tables

log = logging.getLogger(__name__)


class Runner:
    """Runs one pipeline until it is stopped, completes (full_load_only) or fails."""

    def __init__(self, ctx: AppContext, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.actor = default_actor("runner")
        self.repo = PipelineRepository(ctx.store)
        self.steplog = StepLog(self.repo, name)
        runner_settings = ctx.settings.runner
        self.keeper = LeaseKeeper(
            LeaseRepository(ctx.store), self.repo, name,
            interval_s=runner_settings.heartbeat_interval, ttl_s=runner_settings.lease_timeout,
        )  # fmt: skip
        self.backoff = Backoff(cap=runner_settings.retry_max_backoff)
        self.stop_event = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        """Run to the end; the exit code is 0 when stopped or completed, 1 after a failure."""
        self.keeper.acquire()
        self._install_signal_handlers()
        try:
            self._settle_stale()
            self._status(PipelineStatus.STARTING, f"runner started (pid {self.keeper.pid} on "
                         f"{self.keeper.host})")  # fmt: skip
            return self._loop()
        finally:
            self.keeper.release()

    def should_stop(self) -> bool:
        return (
            self.stop_event.is_set()
            or self.keeper.stop_requested.is_set()
            or self.keeper.lost.is_set()
        )

    def _install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: stopping %s after the current transaction", signum, self.name)
            self.stop_event.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)
            signal.signal(signal.SIGINT, handler)

    def _loop(self) -> int:
        while not self.should_stop():
            try:
                if self._run_once():
                    break
            except SnapshotLostError as exc:
                self.steplog.step1(f"{exc.message}; starting Step 1 again on a new slot", "WARNING")
            except SchemaDriftError as exc:
                return self._pause(exc.message)
            except (CdcTuiError, psycopg.Error) as exc:
                if not is_retriable(exc):
                    return self._fail(exc)
                self._wait_before_retry(exc)
        self._stopped("stopped by operator" if self.should_stop() else "finished")
        return 0

    # -- one attempt -----------------------------------------------------------------------

    def _step_context(self, pipeline: PipelineRecord) -> StepContext:
        app = f"cdc-tui {self.name}"
        target: PgParams | MssqlParams
        if pipeline.target.kind == "mssql":
            target = self.ctx.mssql_params(pipeline.target, app)
        else:
            target = self.ctx.pg_params(pipeline.target, app)
        return StepContext(
            pipeline=self.name,
            repo=self.repo,
            steplog=self.steplog,
            source=self.ctx.pg_params(pipeline.source, app),
            target=target,
            actor=self.actor,
            workers=self.ctx.settings.runner.full_load_workers,
            split_rows=self.ctx.settings.runner.full_load_split_rows,
            slot_name=pipeline.slot_name,
            publication_name=pipeline.publication_name,
            target_schema=pipeline.target_schema,
            tables=tuple(t.table for t in pipeline.tables),
            published_extra=helper_tables(self.name) if self._kafka(pipeline) else (),
        )

    @staticmethod
    def _kafka(pipeline: PipelineRecord) -> bool:
        return pipeline.engine == Engine.KAFKA_CONNECT

    def _run_once(self) -> bool:
        """One pass through the steps; True when the runner should exit."""
        pipeline = self.repo.get(self.name)
        sc = self._step_context(pipeline)
        target = self._target(sc, pipeline)
        cancel = _StopFlag(self)
        needs_copy = pipeline.mode != Mode.CDC_ONLY and (
            pipeline.full_load_status != FullLoadStatus.COMPLETED
        )
        if pipeline.mode == Mode.FULL_LOAD_ONLY and not needs_copy:
            self.steplog.step1("the full load is already complete; `cdc-tui resync` copies again")
            return True
        if needs_copy:
            self._prepare_step1(sc, pipeline)
            self._status(PipelineStatus.RUNNING, "Step 0 started")
            self._step0(sc, pipeline, target)
            if pipeline.mode == Mode.FULL_LOAD_ONLY:
                full_load_only(sc, target, cancel)
                return True
            if not full_load_with_slot(sc, target, cancel):
                return True
        elif pipeline.cdc_status == CdcStatus.NOT_STARTED and not self._slot_exists(sc):
            self._status(PipelineStatus.RUNNING, "Step 0 started")
            self._step0(sc, pipeline, target)
            create_cdc_only_slot(sc, target)
        self._status(PipelineStatus.RUNNING, "Step 2 starting")
        if self._kafka(pipeline):
            run_connect_step2(self, sc)
        elif isinstance(target, MssqlTarget):
            target.stream(self, sc)
        else:
            run_step2(self, sc, target.plans)
        return True

    def _target(self, sc: StepContext, pipeline: PipelineRecord) -> PostgresTarget | MssqlTarget:
        """The target's Step 0/1 port, planned from the source catalog as it is now."""
        if isinstance(sc.target, MssqlParams):
            policy = numeric_policy(pipeline)
            pairs, labels = load_mssql_plans(
                sc.source, self.name, sc.tables, sc.target_schema, policy
            )
            return MssqlTarget(sc.target, pairs, policy, labels)
        defs = load_defs(sc.source, self.name, sc.tables)
        plans = plan_tables(defs, target_schema=sc.target_schema)
        return PostgresTarget(list(zip(defs, plans, strict=True)))

    def _step0(
        self, sc: StepContext, pipeline: PipelineRecord, target: PostgresTarget | MssqlTarget
    ) -> None:
        """kafka_connect first prepares its source tables and replica identities, before the
        slot exists, and adds its heartbeat table to the target's (created, never copied)."""
        if self._kafka(pipeline):
            prepare_debezium_source(sc, self.repo, self.actor)
            target.add_helpers(sc, load_defs(sc.source, self.name, (heartbeat_table(self.name),)))
        target.step0(sc)

    def _slot_exists(self, sc: StepContext) -> bool:
        with connect(sc.source) as conn:
            return slot_row(conn, sc.slot_name) is not None

    def _prepare_step1(self, sc: StepContext, pipeline: PipelineRecord) -> None:
        """An interrupted Step 1 starts over on a new slot; a slot we never made is refused."""
        with connect(sc.source) as conn:
            exists = slot_row(conn, sc.slot_name) is not None
            if pipeline.full_load_status == FullLoadStatus.NOT_STARTED:
                if exists and pipeline.mode != Mode.FULL_LOAD_ONLY:
                    raise OperationError(
                        f"Replication slot {sc.slot_name} already exists on the source but "
                        f"pipeline {self.name!r} did not create it; cdc-tui never reuses a slot "
                        "it does not own: drop it or choose another pipeline name."
                    )
                return
            if exists and drop_slot(conn, sc.slot_name):
                self.steplog.step1(f"dropped slot {sc.slot_name} of the interrupted full load")
        reason = "restarting an interrupted full load"
        self.repo.transition(self.name, StatusField.FULL_LOAD_STATUS, FullLoadStatus.NOT_STARTED,
                             reason=reason, actor=self.actor)  # fmt: skip
        for t in self.repo.get(self.name).tables:
            if t.state != TableState.PENDING:
                self.repo.transition_table(self.name, t.table, TableState.PENDING, reason=reason,
                                           actor=self.actor)  # fmt: skip

    # -- status bookkeeping ----------------------------------------------------------------

    def _status(self, new: PipelineStatus, reason: str) -> None:
        self.repo.transition(self.name, StatusField.STATUS, new, reason=reason, actor=self.actor)

    def cdc(self, new: CdcStatus, reason: str, error: str | None = None) -> None:
        self.repo.transition(self.name, StatusField.CDC_STATUS, new, reason=reason,
                             actor=self.actor, error=error)  # fmt: skip

    def _settle_stale(self) -> None:
        """Statuses left by a runner that was killed are corrected before this one starts."""
        settle_stopped(self.repo, self.name, actor=self.actor,
                       reason="the previous runner ended without stopping cleanly")  # fmt: skip

    def _stopped(self, reason: str) -> None:
        streaming = self.repo.get(self.name).cdc_status in WORKING_CDC
        settle_stopped(self.repo, self.name, reason=reason, actor=self.actor)
        self.steplog.write(2 if streaming else 1, f"runner: {reason}")

    def _fail(self, exc: BaseException) -> int:
        message = exc.message if isinstance(exc, CdcTuiError) else _describe(exc)
        log.error("pipeline %s failed: %s", self.name, message, exc_info=exc)
        pipeline = self.repo.get(self.name)
        step = 2 if pipeline.full_load_status in (FullLoadStatus.COMPLETED,
                                                  FullLoadStatus.SKIPPED) else 1  # fmt: skip
        if step == 1 and pipeline.full_load_status == FullLoadStatus.IN_PROGRESS:
            self.repo.transition(self.name, StatusField.FULL_LOAD_STATUS, FullLoadStatus.FAILED,
                                 reason=message, actor=self.actor)  # fmt: skip
        if step == 2 and pipeline.cdc_status != CdcStatus.NOT_STARTED:
            self.cdc(CdcStatus.FAILED, message)
        self.repo.transition(self.name, StatusField.STATUS, PipelineStatus.ERROR, reason=message,
                             actor=self.actor, error=message)  # fmt: skip
        self.steplog.write(step, f"FAILED: {message}", "ERROR")
        return 1

    def _pause(self, message: str) -> int:
        """Schema drift: stop at that transaction, keep the slot, say what changed."""
        self.repo.update(self.name, last_error=message)
        if self.repo.get(self.name).cdc_status != CdcStatus.PAUSED:
            self.cdc(CdcStatus.PAUSED, message)
        self._stopped("paused: " + message)
        self.steplog.step2(f"PAUSED: {message}", "ERROR")
        return 1

    def _wait_before_retry(self, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, CdcTuiError) else _describe(exc)
        delay = self.backoff.next_delay()
        self.repo.update(self.name, last_error=message)
        if self.repo.get(self.name).cdc_status in (CdcStatus.RUNNING, CdcStatus.STARTING):
            self.cdc(CdcStatus.RECONNECTING, f"retrying in {delay:.1f} s: {message}")
        self.steplog.step2(f"retrying in {delay:.1f} s after: {message}", "WARNING")
        deadline = delay
        while deadline > 0 and not self.should_stop():
            self.stop_event.wait(min(0.5, deadline))
            deadline -= 0.5


class _StopFlag(threading.Event):
    """A cancel flag for the copier that also honours stop requests and a lost lease."""

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self._runner = runner

    def is_set(self) -> bool:
        return super().is_set() or self._runner.should_stop()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error):
        return short_reason(exc, [])
    return f"{type(exc).__name__}: {exc}"
