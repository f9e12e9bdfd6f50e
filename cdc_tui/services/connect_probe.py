"""What Kafka Connect says about a pipeline's connectors, for `status` and the console."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from cdc_tui.config.connections import strip_password
from cdc_tui.engines.kafka_connect.lifecycle import state_or_none
from cdc_tui.engines.kafka_connect.rest import ConnectClient, ConnectError, ConnectorState
from cdc_tui.services.connect_ops import names_of
from cdc_tui.store.records import PipelineRecord

log = logging.getLogger(__name__)

PROBE_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


@dataclass(frozen=True)
class ConnectProbe:
    """The pipeline's two connectors by role; `error` is set when Connect could not be asked."""

    url: str | None
    names: dict[str, str] = field(default_factory=dict)  # role -> connector name
    states: dict[str, ConnectorState | None] = field(default_factory=dict)  # by name
    error: str | None = None

    @property
    def task_states(self) -> tuple[str, ...]:
        """Connector and task states as health reads them (MISSING: not in Connect)."""
        out: list[str] = []
        for name in self.names.values():
            state = self.states.get(name)
            if state is None:
                out.append("MISSING")
                continue
            out.append(state.state)
            out.extend(t.state for t in state.tasks)
        return tuple(out)

    def connectors_json(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for role, name in self.names.items():
            state = self.states.get(name)
            if state is None:
                out.append({"name": name, "role": role, "type": role, "state": "MISSING",
                            "worker_id": None, "trace": None, "tasks": []})  # fmt: skip
                continue
            out.append({**state.to_json(), "role": role, "type": state.type})
        return out

    def connect_json(self) -> dict[str, Any]:
        return {"url": self.url, "reachable": self.error is None, "error": self.error}


@dataclass(frozen=True)
class ConnectListing:
    """Every connector one Connect cluster knows, with its status, or why it did not answer."""

    states: dict[str, ConnectorState]
    error: str | None = None


def list_connect(url: str, timeout: httpx.Timeout = PROBE_TIMEOUT) -> ConnectListing:
    """One `GET /connectors?expand=status` for all the pipelines on one cluster (the board)."""
    try:
        with ConnectClient(url, timeout=timeout, conflict_retries=1, backoff_s=0.5) as client:
            return ConnectListing(client.connectors())
    except ConnectError as exc:
        log.warning("Connect at %s not probed: %s", strip_password(url), exc.message)
        return ConnectListing({}, exc.message)


def probe_from_listing(pipeline: PipelineRecord, listing: ConnectListing) -> ConnectProbe:
    names = names_of(pipeline)
    by_role = {"source": names.source_connector, "sink": names.sink_connector}
    url = strip_password(pipeline.connect_url) if pipeline.connect_url else None
    if listing.error is not None:
        return ConnectProbe(url, by_role, error=listing.error)
    return ConnectProbe(url, by_role, {n: listing.states.get(n) for n in by_role.values()})


def probe_connect(pipeline: PipelineRecord) -> ConnectProbe:
    """Ask Connect for both connectors' status; an unreachable Connect is reported, not raised."""
    if not pipeline.connect_url:
        return probe_from_listing(
            pipeline, ConnectListing({}, "the pipeline has no Kafka Connect URL")
        )
    try:
        with ConnectClient(pipeline.connect_url, timeout=PROBE_TIMEOUT, conflict_retries=2,
                           backoff_s=0.5) as client:  # fmt: skip
            found = {n: state_or_none(client, n) for n in names_of(pipeline).connectors}
    except ConnectError as exc:
        log.warning("Connect probe for %s failed: %s", pipeline.name, exc.message)
        return probe_from_listing(pipeline, ConnectListing({}, exc.message))
    states = {name: state for name, state in found.items() if state is not None}
    return probe_from_listing(pipeline, ConnectListing(states))
