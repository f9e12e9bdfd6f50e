"""Health is a pure function: failures beat degradations beat healthy, with reasons."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cdc_tui.domain.health import HealthInputs, SlotObservation, compute_health
from cdc_tui.domain.status import CdcStatus, FullLoadStatus, Health, Mode, PipelineStatus

RUNNING = HealthInputs(
    mode=Mode.FULL_LOAD_AND_CDC,
    status=PipelineStatus.RUNNING,
    full_load_status=FullLoadStatus.COMPLETED,
    cdc_status=CdcStatus.RUNNING,
    runner_alive=True,
    slot=SlotObservation(exists=True, active=True, wal_status="reserved", lag_bytes=10),
    lag_seconds=0.5,
)


def test_running_pipeline_is_healthy() -> None:
    verdict = compute_health(RUNNING)
    assert verdict.health == Health.HEALTHY
    assert verdict.reasons == ()


def test_stopped_new_pipeline_is_healthy() -> None:
    fresh = HealthInputs(
        mode=Mode.FULL_LOAD_AND_CDC,
        status=PipelineStatus.STOPPED,
        full_load_status=FullLoadStatus.NOT_STARTED,
        cdc_status=CdcStatus.NOT_STARTED,
        slot=SlotObservation(exists=False),
    )
    assert compute_health(fresh).health == Health.HEALTHY


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": PipelineStatus.ERROR, "last_error": "boom"}, "ERROR: boom"),
        ({"full_load_status": FullLoadStatus.FAILED}, "full load failed"),
        ({"cdc_status": CdcStatus.FAILED}, "change data capture failed"),
        ({"slot": SlotObservation(True, False, "lost", None)}, "invalidated; resync required"),
        ({"slot": SlotObservation(exists=False)}, "slot is missing; resync required"),
        ({"task_states": ("RUNNING", "FAILED")}, "connector task is FAILED"),
    ],
)
def test_failures(change: dict[str, object], reason: str) -> None:
    verdict = compute_health(replace(RUNNING, **change))  # type: ignore[arg-type]
    assert verdict.health == Health.FAILED
    assert any(reason in r for r in verdict.reasons), verdict.reasons


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"runner_alive": False}, "heartbeat is stale"),
        ({"cdc_status": CdcStatus.RECONNECTING}, "reconnecting"),
        ({"cdc_status": CdcStatus.PAUSED}, "paused"),
        ({"slot": SlotObservation(True, True, "extended", 0)}, "extended"),
        ({"slot": SlotObservation(True, True, "unreserved", 0)}, "unreserved"),
        ({"slot": SlotObservation(True, False, "reserved", 0)}, "inactive"),
        ({"slot": SlotObservation(True, True, "reserved", 2 << 30)}, "lag is"),
        ({"lag_seconds": 900.0}, "lag is 900 s"),
        ({"task_states": ("RUNNING", "UNASSIGNED")}, "not RUNNING"),
    ],
)
def test_degradations(change: dict[str, object], reason: str) -> None:
    verdict = compute_health(replace(RUNNING, **change))  # type: ignore[arg-type]
    assert verdict.health == Health.DEGRADED
    assert any(reason in r for r in verdict.reasons), verdict.reasons


def test_failure_wins_over_degradation() -> None:
    both = replace(RUNNING, runner_alive=False, cdc_status=CdcStatus.FAILED)
    assert compute_health(both).health == Health.FAILED


def test_full_load_only_needs_no_slot() -> None:
    done = replace(
        RUNNING,
        mode=Mode.FULL_LOAD_ONLY,
        status=PipelineStatus.STOPPED,
        cdc_status=CdcStatus.NOT_STARTED,
        slot=SlotObservation(exists=False),
    )
    assert compute_health(done).health == Health.HEALTHY


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"connect_error": "Kafka Connect at http://c:8083 did not answer"},
         "Kafka Connect unreachable: Kafka Connect at http://c:8083 did not answer"),
        ({"stalled_since": "2026-12-06T02:00:00Z"},
         "the source connector is RUNNING but the slot has not moved since 2026-12-06T02:00:00Z "
         "while the source writes"),
        ({"task_states": ("RUNNING", "MISSING")}, "a connector is missing from Kafka Connect"),
        ({"task_states": ("RUNNING", "RUNNING", "PAUSED")}, "a connector or task is not RUNNING"),
    ],
)  # fmt: skip
def test_kafka_connect_degradations(change: dict[str, object], reason: str) -> None:
    verdict = compute_health(replace(RUNNING, **change))  # type: ignore[arg-type]
    assert verdict.health == Health.DEGRADED
    assert reason in verdict.reasons


def test_a_failed_connector_task_fails_the_pipeline() -> None:
    verdict = compute_health(replace(RUNNING, task_states=("RUNNING", "FAILED")))
    assert verdict.health == Health.FAILED
    assert "a connector task is FAILED" in verdict.reasons


def test_stopped_connectors_of_a_stopped_pipeline_are_not_a_degradation() -> None:
    stopped = replace(RUNNING, status=PipelineStatus.STOPPED, cdc_status=CdcStatus.STOPPED,
                      task_states=("STOPPED", "STOPPED"), connect_error="down")  # fmt: skip
    assert compute_health(stopped).health == Health.HEALTHY
