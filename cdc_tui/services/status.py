"""The unified status of a pipeline: stored state, runner lease, slot and health (DESIGN §8)."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg

from cdc_tui.domain.health import HealthInputs, HealthVerdict, SlotObservation, compute_health
from cdc_tui.domain.status import Engine, PipelineStatus
from cdc_tui.errors import ConfigError
from cdc_tui.pgconn import connect
from cdc_tui.pgerrors import short_reason
from cdc_tui.runner.procs import pid_alive
from cdc_tui.services.context import AppContext
from cdc_tui.sources.postgres.slots import SlotInfo, read_slot
from cdc_tui.store.records import LeaseRecord, PipelineRecord
from cdc_tui.store.repositories import LeaseRepository, PipelineRepository

if TYPE_CHECKING:
    from cdc_tui.services.connect_probe import ConnectProbe

log = logging.getLogger(__name__)


def iso(value: datetime | None) -> str | None:
    """UTC ISO-8601 with a Z, the one timestamp format of every JSON output."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class SlotProbe:
    """What we learnt about the slot: `error` is set when the source could not be asked."""

    info: SlotInfo | None
    error: str | None = None


def probe_slot(ctx: AppContext, pipeline: PipelineRecord) -> SlotProbe:
    """Ask the source for the pipeline's slot; an unreachable source is reported, not raised."""
    try:
        params = ctx.pg_params(pipeline.source, application_name="cdc-tui status")
    except ConfigError as exc:
        return SlotProbe(None, exc.message)
    try:
        with connect(params) as conn:
            return SlotProbe(read_slot(conn, pipeline.slot_name))
    except psycopg.Error as exc:
        reason = short_reason(exc, [params.password])
        log.warning("slot probe for %s failed: %s", pipeline.name, reason)
        return SlotProbe(None, f"source unreachable: {reason}")


def runner_is_alive(lease: LeaseRecord, now: datetime) -> bool:
    """A fresh heartbeat, and on this host a process that still exists (a SIGKILLed runner's
    lease looks fresh until it expires)."""
    if not lease.is_fresh(now):
        return False
    return lease.host != socket.gethostname() or pid_alive(lease.pid)


def health_of(
    pipeline: PipelineRecord,
    lease: LeaseRecord | None,
    now: datetime,
    slot: SlotProbe | None = None,
    connect: ConnectProbe | None = None,
) -> HealthVerdict:
    """Health from what is stored, the lease, and the slot when it was probed."""
    observation: SlotObservation | None = None
    if slot is not None and slot.error is None:
        info = slot.info
        observation = (
            SlotObservation(exists=False)
            if info is None
            else SlotObservation(True, info.active, info.wal_status, info.lag_bytes)
        )
    runner_alive = None if lease is None else runner_is_alive(lease, now)
    if lease is None and pipeline.status in (PipelineStatus.RUNNING, PipelineStatus.STARTING):
        runner_alive = False
    return compute_health(
        HealthInputs(
            mode=pipeline.mode,
            status=pipeline.status,
            full_load_status=pipeline.full_load_status,
            cdc_status=pipeline.cdc_status,
            last_error=pipeline.last_error,
            runner_alive=runner_alive,
            slot=observation,
            lag_seconds=pipeline.lag_seconds,
            task_states=connect.task_states if connect is not None else (),
            connect_error=connect.error if connect is not None else None,
            stalled_since=iso(pipeline.stalled_since),
        )
    )


def _runner_json(lease: LeaseRecord | None, now: datetime) -> dict[str, Any] | None:
    if lease is None:
        return None
    return {
        "pid": lease.pid,
        "host": lease.host,
        "heartbeat_at": iso(lease.heartbeat_at),
        "heartbeat_recent": runner_is_alive(lease, now),
    }


def _slot_json(pipeline: PipelineRecord, probe: SlotProbe | None) -> dict[str, Any]:
    empty: dict[str, Any] = {
        "name": pipeline.slot_name,
        "exists": None,
        "active": None,
        "active_pid": None,
        "wal_status": None,
        "safe_wal_size": None,
        "restart_lsn": None,
        "confirmed_flush_lsn": None,
        "retained_bytes": None,
        "lag_bytes": None,
        "error": None,
    }
    if probe is None:
        return empty
    if probe.error is not None:
        return {**empty, "error": probe.error}
    if probe.info is None:
        return {**empty, "exists": False}
    return {**empty, **probe.info.to_json(), "exists": True}


def _header(pipeline: PipelineRecord, verdict: HealthVerdict) -> dict[str, Any]:
    """The identity and status keys that open both the list row and the status document."""
    return {
        "name": pipeline.name,
        "engine": str(pipeline.engine),
        "mode": str(pipeline.mode),
        "status": str(pipeline.status),
        "full_load_status": str(pipeline.full_load_status),
        "cdc_status": str(pipeline.cdc_status),
        "health": str(verdict.health),
    }


def summary_document(
    pipeline: PipelineRecord, lease: LeaseRecord | None, now: datetime
) -> dict[str, Any]:
    """The `list --json` row: stored state only, so listing never waits on a source."""
    return {
        **_header(pipeline, health_of(pipeline, lease, now)),
        "tables": len(pipeline.tables),
        "updated_at": iso(pipeline.updated_at),
        "last_error": pipeline.last_error,
    }


def status_document(
    ctx: AppContext, name: str, *, probe_source: bool = True, now: datetime | None = None
) -> dict[str, Any]:
    """The `status --json` document of DESIGN §8 (plus `health_reasons` and slot details)."""
    pipeline = PipelineRepository(ctx.store).get(name)
    lease = LeaseRepository(ctx.store).get(pipeline.name)
    now = now or datetime.now(UTC)
    probe = probe_slot(ctx, pipeline) if probe_source else None
    kafka = pipeline.engine == Engine.KAFKA_CONNECT
    connect = None
    if kafka and probe_source:
        # Imported here: httpx costs the console's first frame, and most pipelines never ask.
        from cdc_tui.services.connect_probe import probe_connect

        connect = probe_connect(pipeline)
    verdict = health_of(pipeline, lease, now, probe, connect)
    return {
        **_header(pipeline, verdict),
        "health_reasons": list(verdict.reasons),
        "updated_at": iso(pipeline.updated_at),
        "full_load": {
            "lsn": pipeline.full_load_lsn,
            "started_at": iso(pipeline.full_load_started_at),
            "completed_at": iso(pipeline.full_load_completed_at),
            "tables": [
                {
                    "table": str(t.table),
                    "state": str(t.state),
                    "rows_copied": t.rows_copied,
                    "rows_estimated": t.rows_estimated,
                }
                for t in pipeline.tables
            ],
        },
        "slot": _slot_json(pipeline, probe),
        "cdc": {
            "applied_lsn": pipeline.applied_lsn,
            "lag_seconds": pipeline.lag_seconds,
            "changes_applied": pipeline.changes_applied,
            "last_applied_at": iso(pipeline.last_applied_at),
        },
        "connectors": connect.connectors_json() if connect is not None else [],
        **({"connect": connect.connect_json()} if connect is not None else {}),
        "runner": _runner_json(lease, now),
        "last_error": pipeline.last_error,
    }
