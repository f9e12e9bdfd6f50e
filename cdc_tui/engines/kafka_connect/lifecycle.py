"""Creating, resuming, stopping and removing a pipeline's connectors through the REST client."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from cdc_tui.engines.kafka_connect.configs import configs_differ
from cdc_tui.engines.kafka_connect.rest import ConnectClient, ConnectorMissing, ConnectorState
from cdc_tui.errors import OperationError

log = logging.getLogger(__name__)

STOP_WAIT_S = 60.0
Say = Callable[[str], None]


def state_or_none(client: ConnectClient, name: str) -> ConnectorState | None:
    try:
        return client.status(name)
    except ConnectorMissing:
        return None


def validate_all(client: ConnectClient, wanted: Mapping[str, tuple[str, dict[str, str]]]) -> None:
    """Validate every configuration against its plugin; refuse before anything is created."""
    problems = []
    for name, (plugin, config) in wanted.items():
        result = client.validate(plugin, {**config, "name": name})
        if result.error_count:
            problems.append(f"{name}: {result.sentence()}")
    if problems:
        raise OperationError(
            "Kafka Connect refused the connector configuration (" + "; ".join(problems) + "); "
            "fix the cause and start the pipeline again."
        )


def ensure_connectors(
    client: ConnectClient, wanted: Mapping[str, tuple[str, dict[str, str]]], say: Say
) -> None:
    """Create missing connectors (validated first, all or none), update drifted configs, resume
    stopped or paused ones and restart failed tasks."""
    missing = {n: w for n, w in wanted.items() if state_or_none(client, n) is None}
    if missing:
        validate_all(client, missing)
    created: list[str] = []
    try:
        for name, (_plugin, config) in wanted.items():
            if name in missing:
                client.put_config(name, config)
                created.append(name)
                say(f"created connector {name}")
                continue
            drift = configs_differ(config, client.get_config(name))
            if drift:
                client.put_config(name, config)
                say(f"updated connector {name} ({', '.join(drift)})")
            resume_if_idle(client, name, say)
    except OperationError:
        for name in created:  # nothing half-created: the connectors come as a pair
            client.delete(name)
        raise


def resume_if_idle(client: ConnectClient, name: str, say: Say) -> None:
    state = client.status(name)
    if state.state in ("STOPPED", "PAUSED"):
        client.resume(name)
        say(f"resumed connector {name} (was {state.state})")
    elif state.state == "FAILED" or state.failed_tasks:
        client.restart(name, include_tasks=True, only_failed=True)
        say(f"restarted the failed parts of connector {name}")


def stop_connectors(client: ConnectClient, names: tuple[str, ...]) -> list[str]:
    """PUT /stop on each existing connector (tasks end, offsets stay); what was stopped."""
    done = []
    for name in names:
        state = state_or_none(client, name)
        if state is None or state.state == "STOPPED":
            continue
        client.stop(name)
        done.append(f"stopped connector {name}")
    return done


def remove_connectors(client: ConnectClient, names: tuple[str, ...]) -> list[str]:
    """Stop, forget the offsets of, and delete each connector: a later one of the same name
    would otherwise resume where this one was."""
    done = []
    for name in names:
        if state_or_none(client, name) is None:
            continue
        client.stop(name)
        _wait_stopped(client, name)
        client.delete_offsets(name)
        client.delete(name)
        done.append(f"deleted connector {name} and its offsets")
    return done


def _wait_stopped(client: ConnectClient, name: str) -> None:
    deadline = time.monotonic() + STOP_WAIT_S
    while True:
        state = state_or_none(client, name)
        if state is None or (state.state == "STOPPED" and not state.tasks):
            return
        if time.monotonic() > deadline:
            raise OperationError(
                f"Connector {name} did not reach STOPPED within {STOP_WAIT_S:g} s (it is "
                f"{state.state}); run the command again once Kafka Connect has settled."
            )
        time.sleep(0.5)
