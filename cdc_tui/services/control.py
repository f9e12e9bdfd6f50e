"""start / stop / resync / drop: the operator actions on a pipeline's runner and its objects."""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import (
    CdcStatus,
    FullLoadStatus,
    Mode,
    PipelineStatus,
    StatusField,
    TableState,
)
from cdc_tui.errors import OperationError, SourceError, TargetError, UsageError
from cdc_tui.logging_setup import default_log_file
from cdc_tui.pgconn import connect
from cdc_tui.pgerrors import short_reason
from cdc_tui.runner.launcher import launch_runner
from cdc_tui.runner.procs import pid_alive
from cdc_tui.runner.settle import settle_stopped
from cdc_tui.services.connect_ops import (
    clean_kafka_source,
    drop_target_heartbeat,
    is_kafka,
    next_generation,
    remove_pipeline_connectors,
    resync_table,
    stop_pipeline_connectors,
)
from cdc_tui.services.context import AppContext
from cdc_tui.services.mssql_ops import empty_mssql_target, forget_mssql_position
from cdc_tui.services.status import runner_is_alive
from cdc_tui.sources.postgres.objects import drop_publication, drop_slot
from cdc_tui.store.records import EventKind, PipelineRecord
from cdc_tui.store.repositories import LeaseRepository, PipelineRepository
from cdc_tui.targets.postgres.housekeeping import forget_position, truncate_tables

log = logging.getLogger(__name__)

POLL_S = 0.25
DEFAULT_STOP_TIMEOUT_S = 60.0


def _now() -> datetime:
    return datetime.now(UTC)


def live_runner_pid(ctx: AppContext, name: str) -> int | None:
    """The pid of the runner holding a fresh lease, or None."""
    lease = LeaseRepository(ctx.store).get(name)
    if lease is None or not runner_is_alive(lease, _now()):
        return None
    return lease.pid


def start_pipeline(ctx: AppContext, name: str) -> int:
    """Launch the runner detached; refuse when a live runner already holds the pipeline."""
    repo = PipelineRepository(ctx.store)
    pipeline = repo.get(name)
    pid = live_runner_pid(ctx, name)
    if pid is not None:
        raise OperationError(
            f"Pipeline {name!r} is already running (runner pid {pid}); "
            f"use `cdc-tui status {name}` to follow it."
        )
    repo.update(name, stop_requested_at=None)
    repo.record_event(name, kind=EventKind.ACTION, reason="start requested", actor=ctx.actor)
    _clear_failure(ctx, pipeline)
    log_file = ctx.settings.logging.file or default_log_file()
    return launch_runner(ctx, pipeline, log_file)


def _clear_failure(ctx: AppContext, pipeline: PipelineRecord) -> None:
    """An operator's start acknowledges a failure: ERROR / FAILED / PAUSED become STOPPED
    first, so `--wait` follows the new runner instead of reading the old failure."""
    repo = PipelineRepository(ctx.store)
    reason = "start requested after a failure"
    if pipeline.status == PipelineStatus.ERROR:
        repo.transition(pipeline.name, StatusField.STATUS, PipelineStatus.STOPPED, reason=reason,
                        actor=ctx.actor)  # fmt: skip
    if pipeline.cdc_status in (CdcStatus.FAILED, CdcStatus.PAUSED):
        repo.transition(pipeline.name, StatusField.CDC_STATUS, CdcStatus.STOPPED, reason=reason,
                        actor=ctx.actor)  # fmt: skip


def _reached(pipeline: PipelineRecord, goal: str) -> bool:
    if goal == "completed":
        return pipeline.full_load_status in (FullLoadStatus.COMPLETED, FullLoadStatus.SKIPPED)
    if pipeline.mode == Mode.FULL_LOAD_ONLY:
        return pipeline.status == PipelineStatus.RUNNING or _reached(pipeline, "completed")
    return pipeline.status == PipelineStatus.RUNNING and pipeline.cdc_status == CdcStatus.RUNNING


def wait_for(
    ctx: AppContext,
    name: str,
    goal: str,
    *,
    pid: int | None,
    timeout_s: float | None,
    on_change: Callable[[PipelineRecord], None] | None = None,
) -> PipelineRecord:
    """Poll the metadata DB until `goal` ("running" or "completed"), an error, or the timeout."""
    repo = PipelineRepository(ctx.store)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last = None
    while True:
        pipeline = repo.get(name)
        key = (pipeline.status, pipeline.full_load_status, pipeline.cdc_status)
        if on_change is not None and key != last:
            on_change(pipeline)
        last = key
        if _reached(pipeline, goal):
            return pipeline
        if pipeline.status == PipelineStatus.ERROR or pipeline.cdc_status == CdcStatus.PAUSED:
            raise OperationError(
                f"Pipeline {name!r} stopped with an error: {pipeline.last_error or 'see the log'}; "
                f"fix the cause and run `cdc-tui start {name}` again."
            )
        if pid is not None and not pid_alive(pid) and live_runner_pid(ctx, name) is None:
            raise OperationError(
                f"The runner of pipeline {name!r} exited before reaching {goal}; "
                f"see `cdc-tui status {name}` and the log file."
            )
        if deadline is not None and time.monotonic() > deadline:
            raise OperationError(
                f"Pipeline {name!r} did not reach {goal} within {timeout_s:g} s; it is still "
                f"{pipeline.status}; follow it with `cdc-tui status {name}`."
            )
        time.sleep(POLL_S)


def stop_pipeline(ctx: AppContext, name: str, *, wait: bool, timeout_s: float | None) -> bool:
    """Ask the runner to finish its current transaction and exit; True when it has stopped."""
    repo = PipelineRepository(ctx.store)
    repo.update(name, stop_requested_at=_now())
    repo.record_event(name, kind=EventKind.ACTION, reason="stop requested", actor=ctx.actor)
    lease = LeaseRepository(ctx.store).get(name)
    if lease is not None and lease.is_fresh(_now()) and lease.host == socket.gethostname():
        try:
            os.kill(lease.pid, signal.SIGTERM)
        except ProcessLookupError:
            log.info("runner pid %d of %s is already gone", lease.pid, name)
    if live_runner_pid(ctx, name) is None:
        _settle_without_runner(ctx, name)
        _stop_connectors(ctx, name)
        return True
    if not wait:
        return False
    deadline = time.monotonic() + (timeout_s or DEFAULT_STOP_TIMEOUT_S)
    while live_runner_pid(ctx, name) is not None:
        if time.monotonic() > deadline:
            raise OperationError(
                f"The runner of pipeline {name!r} did not stop within "
                f"{timeout_s or DEFAULT_STOP_TIMEOUT_S:g} s; it finishes its current transaction "
                "first: wait and run `cdc-tui stop` again."
            )
        time.sleep(POLL_S)
    _settle_without_runner(ctx, name)
    _stop_connectors(ctx, name)
    return True


def _stop_connectors(ctx: AppContext, name: str) -> None:
    """kafka_connect: the connectors stream without the runner, so stop stops them too."""
    pipeline = PipelineRepository(ctx.store).get(name)
    if is_kafka(pipeline) and pipeline.connect_url:
        for line in stop_pipeline_connectors(pipeline):
            PipelineRepository(ctx.store).record_event(
                name, kind=EventKind.ACTION, reason=line, actor=ctx.actor
            )


def _settle_without_runner(ctx: AppContext, name: str) -> None:
    """With no runner alive, statuses that claim one is working are set to STOPPED."""
    settle_stopped(PipelineRepository(ctx.store), name, reason="no runner is alive",
                   actor=ctx.actor)  # fmt: skip


def source_cleanup(ctx: AppContext, pipeline: PipelineRecord, *, publication: bool) -> list[str]:
    params = ctx.pg_params(pipeline.source, application_name="cdc-tui drop")
    done: list[str] = []
    try:
        with connect(params) as conn:
            if drop_slot(conn, pipeline.slot_name):
                done.append(f"dropped slot {pipeline.slot_name}")
            if publication and drop_publication(conn, pipeline.publication_name):
                done.append(f"dropped publication {pipeline.publication_name}")
    except psycopg.Error as exc:
        raise SourceError(
            f"Cannot clean up the source of pipeline {pipeline.name!r}: "
            f"{short_reason(exc, [params.password])}; fix access and run the command again "
            "(it resumes where it stopped)."
        ) from exc
    return done


def resync_pipeline(ctx: AppContext, name: str, table: str | None) -> list[str]:
    """Stop, drop the slot, truncate the target tables, and start again from Step 1."""
    repo = PipelineRepository(ctx.store)
    pipeline = repo.get(name)
    if table is not None and is_kafka(pipeline):
        return resync_table(ctx, pipeline, TableRef.parse(table))
    if table is not None:
        raise UsageError(
            f"The {pipeline.engine} engine resyncs whole pipelines only; run "
            f"`cdc-tui resync {name}` without --table."
        )
    if pipeline.mode == Mode.CDC_ONLY:
        raise UsageError(
            f"Pipeline {name!r} is cdc_only and has no full load to redo; drop and recreate it."
        )
    stop_pipeline(ctx, name, wait=True, timeout_s=None)
    done = remove_pipeline_connectors(pipeline) if is_kafka(pipeline) else []
    done += source_cleanup(ctx, pipeline, publication=False)
    if is_kafka(pipeline):
        done.append(f"next connectors are generation {next_generation(ctx, pipeline)}")
    if pipeline.target.kind == "mssql":
        empty_mssql_target(ctx, pipeline)
    else:
        params = ctx.pg_params(pipeline.target, application_name="cdc-tui resync")
        try:
            with connect(params, autocommit=False) as conn:
                truncate_tables(conn, pipeline)
                forget_position(conn, pipeline.name)
                conn.commit()
        except psycopg.Error as exc:
            raise TargetError(
                f"Cannot truncate the target tables of pipeline {name!r}: "
                f"{short_reason(exc, [params.password])}; fix access and run resync again."
            ) from exc
    done.append(f"truncated {len(pipeline.tables)} target table(s)")
    _reset_to_step1(ctx, name)
    repo.record_event(
        name, kind=EventKind.ACTION, reason="resync: " + "; ".join(done), actor=ctx.actor
    )
    start_pipeline(ctx, name)
    return done


def _reset_to_step1(ctx: AppContext, name: str) -> None:
    repo = PipelineRepository(ctx.store)
    pipeline = repo.get(name)
    reason, actor = "resync requested", ctx.actor
    if pipeline.status == PipelineStatus.ERROR:
        repo.transition(name, StatusField.STATUS, PipelineStatus.STOPPED, reason=reason,
                        actor=actor)  # fmt: skip
    if pipeline.full_load_status != FullLoadStatus.NOT_STARTED:
        repo.transition(name, StatusField.FULL_LOAD_STATUS, FullLoadStatus.NOT_STARTED,
                        reason=reason, actor=actor)  # fmt: skip
    if pipeline.cdc_status not in (CdcStatus.NOT_STARTED,):
        if pipeline.cdc_status in (CdcStatus.RUNNING, CdcStatus.STARTING, CdcStatus.RECONNECTING):
            repo.transition(name, StatusField.CDC_STATUS, CdcStatus.STOPPED, reason=reason,
                            actor=actor)  # fmt: skip
        repo.transition(name, StatusField.CDC_STATUS, CdcStatus.NOT_STARTED, reason=reason,
                        actor=actor)  # fmt: skip
    for t in pipeline.tables:
        if t.state != TableState.PENDING:
            repo.transition_table(name, t.table, TableState.PENDING, reason=reason, actor=actor)
    repo.update(name, full_load_lsn=None, applied_lsn=None, full_load_completed_at=None,
                last_error=None)  # fmt: skip


def drop_pipeline_everywhere(ctx: AppContext, name: str) -> list[str]:
    """Stop the runner, drop the slot and publication, forget the target position, then the
    metadata; interrupted, running it again resumes."""
    repo = PipelineRepository(ctx.store)
    pipeline = repo.get(name)
    stop_pipeline(ctx, name, wait=True, timeout_s=None)
    kafka = is_kafka(pipeline)
    done = remove_pipeline_connectors(pipeline) if kafka else []
    done += source_cleanup(ctx, pipeline, publication=True)
    if kafka:
        done += clean_kafka_source(ctx, pipeline)
    if pipeline.target.kind == "mssql":
        done += forget_mssql_position(ctx, pipeline)
        repo.delete(
            name, actor=ctx.actor, reason="dropped by operator: " + "; ".join(done or ["-"])
        )
        return done
    params = ctx.pg_params(pipeline.target, application_name="cdc-tui drop")
    try:
        with connect(params, autocommit=False) as conn:
            forget_position(conn, pipeline.name)
            if kafka and drop_target_heartbeat(conn, pipeline):
                done.append("dropped the target heartbeat table")
            conn.commit()
    except psycopg.Error as exc:
        log.warning("could not forget the target position of %s: %s", name, exc)
        done.append("target unreachable: its cdc_tui.applied_position row was left")
    repo.delete(name, actor=ctx.actor, reason="dropped by operator: " + "; ".join(done or ["-"]))
    return done
