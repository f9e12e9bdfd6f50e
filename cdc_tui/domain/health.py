"""Health (healthy / degraded / failed) as a pure function of the stored and observed state."""

from __future__ import annotations

from dataclasses import dataclass, field

from cdc_tui.domain.status import CdcStatus, FullLoadStatus, Health, Mode, PipelineStatus

# Thresholds a DBA would page on; the console and status JSON explain which one tripped.
DEFAULT_LAG_BYTES_DEGRADED = 1 << 30
DEFAULT_LAG_SECONDS_DEGRADED = 300.0


@dataclass(frozen=True)
class SlotObservation:
    """What `pg_replication_slots` said about the pipeline's slot (None fields: unknown)."""

    exists: bool
    active: bool | None = None
    wal_status: str | None = None
    lag_bytes: int | None = None


@dataclass(frozen=True)
class HealthInputs:
    """Everything health depends on; gathered by services, judged here without IO."""

    mode: Mode
    status: PipelineStatus
    full_load_status: FullLoadStatus
    cdc_status: CdcStatus
    last_error: str | None = None
    runner_alive: bool | None = None
    slot: SlotObservation | None = None
    lag_seconds: float | None = None
    task_states: tuple[str, ...] = ()
    connect_error: str | None = None
    stalled_since: str | None = None
    lag_bytes_degraded: int = DEFAULT_LAG_BYTES_DEGRADED
    lag_seconds_degraded: float = DEFAULT_LAG_SECONDS_DEGRADED


@dataclass(frozen=True)
class HealthVerdict:
    health: Health
    reasons: tuple[str, ...] = field(default_factory=tuple)


def _failures(i: HealthInputs) -> list[str]:
    out: list[str] = []
    if i.status == PipelineStatus.ERROR:
        out.append(f"pipeline is in ERROR: {i.last_error or 'see the event history'}")
    if i.full_load_status == FullLoadStatus.FAILED:
        out.append("the full load failed")
    if i.cdc_status == CdcStatus.FAILED:
        out.append("change data capture failed")
    if i.slot is not None and i.slot.wal_status == "lost":
        out.append("the replication slot was invalidated; resync required")
    if i.slot is not None and not i.slot.exists and _slot_expected(i):
        out.append("the replication slot is missing; resync required")
    if any(s == "FAILED" for s in i.task_states):
        out.append("a connector task is FAILED")
    return out


def _slot_expected(i: HealthInputs) -> bool:
    """A slot must exist once CDC has been set up for a pipeline that streams."""
    return i.mode != Mode.FULL_LOAD_ONLY and i.cdc_status not in (
        CdcStatus.NOT_STARTED,
        CdcStatus.FAILED,
    )


def _degradations(i: HealthInputs) -> list[str]:
    out: list[str] = []
    running = i.status in (PipelineStatus.RUNNING, PipelineStatus.STARTING)
    if running and i.runner_alive is False:
        out.append("the runner's heartbeat is stale")
    if i.cdc_status == CdcStatus.RECONNECTING:
        out.append("reconnecting after an error")
    if i.cdc_status == CdcStatus.PAUSED:
        out.append("change data capture is paused")
    if i.slot is not None and i.slot.wal_status in ("extended", "unreserved"):
        out.append(f"the slot's WAL is {i.slot.wal_status}; it risks invalidation")
    if i.slot is not None and i.slot.exists and running and i.slot.active is False:
        out.append("the replication slot is inactive while the pipeline runs")
    lag_b = i.slot.lag_bytes if i.slot is not None else None
    if lag_b is not None and lag_b > i.lag_bytes_degraded:
        out.append(f"lag is {lag_b} bytes")
    if i.lag_seconds is not None and i.lag_seconds > i.lag_seconds_degraded:
        out.append(f"lag is {i.lag_seconds:.0f} s")
    idle = ("PAUSED", "UNASSIGNED", "RESTARTING", "STOPPED")
    if running and any(s in idle for s in i.task_states):
        out.append("a connector or task is not RUNNING")
    if running and "MISSING" in i.task_states and i.cdc_status == CdcStatus.RUNNING:
        out.append("a connector is missing from Kafka Connect")
    if i.connect_error is not None and running:
        out.append(f"Kafka Connect unreachable: {i.connect_error}")
    if i.stalled_since is not None and running:
        out.append(
            f"the source connector is RUNNING but the slot has not moved since {i.stalled_since} "
            "while the source writes"
        )
    return out


def compute_health(inputs: HealthInputs) -> HealthVerdict:
    """Judge health: any failure wins, then any degradation, else healthy."""
    failures = _failures(inputs)
    if failures:
        return HealthVerdict(Health.FAILED, tuple(failures))
    degradations = _degradations(inputs)
    if degradations:
        return HealthVerdict(Health.DEGRADED, tuple(degradations))
    return HealthVerdict(Health.HEALTHY)
