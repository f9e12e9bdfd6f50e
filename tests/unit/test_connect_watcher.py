"""The kafka_connect runner's stall rule, on recorded slot readings.

A RUNNING Debezium source whose slot stops moving cannot be provoked on a real Connect worker
at will (pausing it makes the runner resume it), so this test feeds the watcher slot readings
and a stand-in for the runner's repository; everything else about the engine runs for real in
tests/integration/test_kafka_connect_*.py.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from cdc_tui.config.settings import KafkaConnectSettings
from cdc_tui.engines.kafka_connect.rest import ConnectError, ConnectorMissing
from cdc_tui.runner.connect_stream import ConnectorDisappeared, ConnectWatcher, first_line
from cdc_tui.sources.postgres.slots import SlotInfo


@dataclass
class _Repo:
    updates: list[dict[str, Any]] = field(default_factory=list)

    def update(self, name: str, /, **fields: Any) -> None:
        self.updates.append(fields)


@dataclass
class _StepLog:
    lines: list[str] = field(default_factory=list)

    def step2(self, message: str, level: str = "INFO") -> None:
        self.lines.append(f"{level} {message}")


@dataclass
class _Runner:
    repo: _Repo = field(default_factory=_Repo)
    steplog: _StepLog = field(default_factory=_StepLog)
    stop_event: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Sc:
    pipeline: str = "orders"
    slot_name: str = "cdc_tui_orders"


def _slot(confirmed: str, lag: int) -> SlotInfo:
    return SlotInfo("cdc_tui_orders", True, 42, "reserved", None, "0/1", confirmed, lag, lag)


def _watcher(stall_seconds: float) -> tuple[ConnectWatcher, _Runner]:
    runner = _Runner()
    watcher = ConnectWatcher(
        runner,  # type: ignore[arg-type]
        _Sc(),  # type: ignore[arg-type]
        client=None,  # type: ignore[arg-type]
        names=None,  # type: ignore[arg-type]
        settings=KafkaConnectSettings(stall_seconds=stall_seconds),
    )
    return watcher, runner


def test_a_slot_that_stops_moving_while_wal_grows_is_a_stall_and_recovers() -> None:
    watcher, runner = _watcher(stall_seconds=0.05)
    watcher._watch_stall(_slot("0/100", 0))
    watcher.slot_moved_at -= 1.0  # a second without movement, past the 0.05 s rule
    watcher._watch_stall(_slot("0/100", 5000))
    assert watcher.stalled
    assert runner.repo.updates[-1]["stalled_since"] is not None
    assert "has not moved" in runner.steplog.lines[-1]
    watcher._watch_stall(_slot("0/200", 0))
    assert not watcher.stalled
    assert runner.repo.updates[-1] == {"stalled_since": None}


def test_an_idle_source_is_not_a_stall() -> None:
    watcher, runner = _watcher(stall_seconds=0.05)
    watcher._watch_stall(_slot("0/100", 0))
    watcher.slot_moved_at -= 1.0
    watcher._watch_stall(_slot("0/100", 0))  # nothing written since: nothing to stream
    assert not watcher.stalled and runner.repo.updates == []


def test_first_line_prefers_the_root_cause() -> None:
    trace = "org.x.ConnectException: Exiting\n\tat a.b(C.java:1)\nCaused by: E: relation missing"
    assert first_line(trace) == "Caused by: E: relation missing"
    assert first_line(None) == "no trace given"


class _Client:
    """Connect's answers for a connector created a moment ago: no status yet, a config."""

    def __init__(self, configs: set[str]) -> None:
        self.configs = configs

    def get_config(self, name: str) -> dict[str, str]:
        if name == "rebalancing":
            raise ConnectError("answered 500: a rebalance is expected")
        if name not in self.configs:
            raise ConnectorMissing(f"no connector {name}")
        return {"name": name}


def test_a_connector_without_status_yet_is_not_taken_for_gone() -> None:
    watcher, _runner = _watcher(stall_seconds=30)
    watcher.client = _Client({"orders.sink"})  # type: ignore[assignment]
    watcher._tend({"orders.sink": None})  # created, status not written yet: nothing happens
    watcher._tend({"rebalancing": None})  # a worker that cannot answer decides nothing
    watcher.client = _Client(set())  # type: ignore[assignment]
    with pytest.raises(
        ConnectorDisappeared, match=r"orders\.sink of pipeline 'orders' disappeared"
    ):
        watcher._tend({"orders.sink": None})
