"""The Kafka Connect REST API, as the kafka_connect engine and the console use it.

Each call is described once as a `Call` (method, path, the statuses that mean success) and run
by one of two thin clients: `ConnectClient` (blocking, for the CLI and the runner) and
`AsyncConnectClient` (for the console's workers). Both retry a 409, which Connect answers while
a rebalance or a concurrent config change is in progress, and turn every failure into one
sentence that names the Connect URL without its credentials.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from cdc_tui.config.connections import strip_password
from cdc_tui.errors import NotAvailableError, NotFoundError, OperationError
from cdc_tui.kafka_stack import JDBC_SINK_CONNECTOR_CLASS, POSTGRES_CONNECTOR_CLASS

log = logging.getLogger(__name__)

POSTGRES_SOURCE = POSTGRES_CONNECTOR_CLASS
JDBC_SINK = JDBC_SINK_CONNECTOR_CLASS
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=3.0)
# Connect answers 409 (or 500 "a rebalance is expected") during a rebalance; it usually settles
# within seconds.
CONFLICT_RETRIES = 15
CONFLICT_BACKOFF_S = 1.0
# What a `missing_ok` call returns on a 404.
MISSING: Any = object()


class ConnectError(OperationError):
    """Kafka Connect refused a request or could not be reached."""

    default_title = "Kafka Connect error"


class ConnectUnreachable(ConnectError):
    """No answer from the Connect REST endpoint."""

    default_title = "Kafka Connect unreachable"
    retriable = True  # the runner waits for Connect with backoff instead of failing


class ConnectorMissing(NotFoundError):
    """Connect does not know the connector."""


@dataclass(frozen=True)
class TaskState:
    id: int
    state: str
    worker_id: str | None
    trace: str | None = None


@dataclass(frozen=True)
class ConnectorState:
    """`GET /connectors/{name}/status`: the connector's state and its tasks'."""

    name: str
    type: str
    state: str
    worker_id: str | None
    tasks: tuple[TaskState, ...]
    trace: str | None = None

    @property
    def failed_tasks(self) -> tuple[TaskState, ...]:
        return tuple(t for t in self.tasks if t.state == "FAILED")

    def to_json(self) -> dict[str, Any]:
        """The `connectors` entry of `status --json` (DESIGN §8)."""
        return {
            "name": self.name,
            "state": self.state,
            "worker_id": self.worker_id,
            "trace": self.trace,
            "tasks": [{"id": t.id, "state": t.state, "worker_id": t.worker_id,
                       "trace": t.trace} for t in self.tasks],
        }  # fmt: skip


@dataclass(frozen=True)
class Plugin:
    class_name: str
    type: str
    version: str | None


@dataclass(frozen=True)
class Validation:
    """`PUT /connector-plugins/{class}/config/validate`: errors by config key."""

    error_count: int
    errors: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def sentence(self) -> str:
        return "; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in sorted(self.errors.items()))


@dataclass(frozen=True)
class Call:
    """One REST request and the statuses that mean it worked (404 is always the caller's)."""

    method: str
    path: str
    ok: tuple[int, ...] = (200,)
    params: tuple[tuple[str, str], ...] = ()
    body: Any = None
    missing_ok: bool = False  # a 404 is a result (MISSING), not an error


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


# -- the calls ------------------------------------------------------------------------------


def root() -> Call:
    return Call("GET", "/")


def plugins_call(connectors_only: bool = True) -> Call:
    params = () if connectors_only else (("connectorsOnly", "false"),)
    return Call("GET", "/connector-plugins", params=params)


def list_call() -> Call:
    return Call("GET", "/connectors", params=(("expand", "status"), ("expand", "info")))


def status_call(name: str) -> Call:
    return Call("GET", _path("connectors", name, "status"))


def get_config_call(name: str) -> Call:
    return Call("GET", _path("connectors", name, "config"))


def put_config_call(name: str, config: Mapping[str, str]) -> Call:
    return Call("PUT", _path("connectors", name, "config"), ok=(200, 201), body=dict(config))


def validate_call(plugin_class: str, config: Mapping[str, str]) -> Call:
    body = {"connector.class": plugin_class, **config}
    return Call("PUT", _path("connector-plugins", plugin_class, "config", "validate"), body=body)


def state_call(name: str, verb: str) -> Call:
    """pause, resume (202) or stop (KIP-875, 204)."""
    return Call("PUT", _path("connectors", name, verb), ok=(202, 204))


def restart_call(name: str, *, include_tasks: bool, only_failed: bool) -> Call:
    params = (
        ("includeTasks", str(include_tasks).lower()),
        ("onlyFailed", str(only_failed).lower()),
    )
    return Call("POST", _path("connectors", name, "restart"), ok=(200, 202, 204), params=params)


def restart_task_call(name: str, task: int) -> Call:
    return Call("POST", _path("connectors", name, "tasks", str(task), "restart"), ok=(200, 204))


def delete_call(name: str) -> Call:
    return Call("DELETE", _path("connectors", name), ok=(204,), missing_ok=True)


def offsets_call(name: str) -> Call:
    return Call("GET", _path("connectors", name, "offsets"))


def delete_offsets_call(name: str) -> Call:
    return Call("DELETE", _path("connectors", name, "offsets"), ok=(200,))


# -- parsing --------------------------------------------------------------------------------


def parse_state(doc: Mapping[str, Any]) -> ConnectorState:
    connector = doc.get("connector") or {}
    tasks = tuple(
        TaskState(int(t["id"]), str(t["state"]), t.get("worker_id"), t.get("trace") or None)
        for t in sorted(doc.get("tasks") or [], key=lambda t: int(t["id"]))
    )
    return ConnectorState(
        name=str(doc["name"]),
        type=str(doc.get("type") or "unknown"),
        state=str(connector.get("state") or "UNASSIGNED"),
        worker_id=connector.get("worker_id"),
        tasks=tasks,
        trace=connector.get("trace") or None,
    )


def parse_validation(doc: Mapping[str, Any]) -> Validation:
    errors: dict[str, tuple[str, ...]] = {}
    for entry in doc.get("configs") or []:
        value = entry.get("value") or {}
        if value.get("errors"):
            errors[str(value.get("name"))] = tuple(str(e) for e in value["errors"])
    return Validation(int(doc.get("error_count") or 0), errors)


def _is_json(response: httpx.Response) -> bool:
    return "json" in response.headers.get("content-type", "")


def _message(response: httpx.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(doc, dict) and doc.get("message"):
        return str(doc["message"])
    return response.text.strip()[:300]


def parse_states(doc: Mapping[str, Any] | None) -> dict[str, ConnectorState]:
    """`GET /connectors?expand=status&expand=info`: each connector's state, by name."""
    return {name: parse_state(entry["status"]) for name, entry in (doc or {}).items()
            if entry.get("status")}  # fmt: skip


class _Base:
    """What both clients share: the URL as shown, the 409 policy, and reading responses."""

    def __init__(self, url: str, conflict_retries: int, backoff_s: float) -> None:
        self.url = url.rstrip("/")
        self.shown_url = strip_password(self.url)
        self.conflict_retries = conflict_retries
        self.backoff_s = backoff_s

    def _retry(self, call: Call, response: httpx.Response, attempt: int) -> bool:
        """True when Connect is rebalancing and attempts are left: a 409, or the 500 it answers
        while a rebalance it expects has not started ("a rebalance is expected")."""
        rebalancing = response.status_code == 409 or (
            response.status_code == 500 and "rebalance" in _message(response).lower()
        )
        if not rebalancing or attempt >= self.conflict_retries:
            return False
        log.info("Connect answered %d to %s %s; retrying", response.status_code, call.method,
                 call.path)  # fmt: skip
        return True

    def _request_args(self, call: Call) -> dict[str, Any]:
        return {"params": list(call.params), "json": call.body}

    def _unreachable(self, call: Call, exc: httpx.HTTPError) -> ConnectUnreachable:
        return ConnectUnreachable(
            f"Kafka Connect at {self.shown_url} did not answer {call.method} {call.path} "
            f"({type(exc).__name__}); check that the Connect worker runs and the URL is right."
        )

    def _result(self, call: Call, response: httpx.Response) -> Any:
        """The decoded body of a successful call; a ConnectError sentence otherwise."""
        if response.status_code in call.ok:
            if response.status_code == 204 or not response.content:
                return None
            return response.json()
        if response.status_code == 404 and not _is_json(response):
            # Connect's own 404s are JSON; Jetty's HTML page means its REST resources are not
            # registered yet (a worker starting up), which heals by itself.
            raise ConnectUnreachable(
                f"Kafka Connect at {self.shown_url} is still starting (no {call.path} yet); "
                "wait for the worker to finish starting."
            )
        if response.status_code == 404:
            if call.missing_ok:
                return MISSING
            raise ConnectorMissing(
                f"Kafka Connect at {self.shown_url} has no {call.path}: {_message(response)}."
            )
        raise ConnectError(
            f"Kafka Connect at {self.shown_url} answered {response.status_code} to "
            f"{call.method} {call.path}: {_message(response)}"
        )


class ConnectClient(_Base):
    """Blocking client: the CLI, the runner and the board's probes."""

    def __init__(
        self,
        url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        conflict_retries: int = CONFLICT_RETRIES,
        backoff_s: float = CONFLICT_BACKOFF_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, conflict_retries, backoff_s)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ConnectClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def run(self, call: Call) -> Any:
        for attempt in range(self.conflict_retries + 1):
            try:
                response = self._http.request(call.method, call.path, **self._request_args(call))
            except httpx.HTTPError as exc:
                raise self._unreachable(call, exc) from exc
            if not self._retry(call, response, attempt):
                return self._result(call, response)
            time.sleep(self.backoff_s)
        raise AssertionError("unreachable")  # the loop always returns on its last attempt

    # Convenience wrappers: each one call, parsed.

    def version(self) -> str:
        return str(self.run(root()).get("version", "?"))

    def plugins(self, connectors_only: bool = True) -> list[Plugin]:
        return [Plugin(p["class"], p.get("type", "?"), p.get("version"))
                for p in self.run(plugins_call(connectors_only))]  # fmt: skip

    def require_plugins(self, *classes: str) -> None:
        """Raise, naming what to install, unless every connector class is on the worker."""
        have = {p.class_name for p in self.plugins()}
        if missing := [c for c in classes if c not in have]:
            raise NotAvailableError(
                f"Kafka Connect at {self.shown_url} lacks the plugin(s) {', '.join(missing)}; "
                "install the Debezium PostgreSQL connector and JDBC sink on its plugin.path "
                "(scripts/kafka-stack fetch shows how) and restart the worker."
            )

    def connectors(self) -> dict[str, ConnectorState]:
        """Every connector with its status (`?expand=status&expand=info`), by name."""
        return parse_states(self.run(list_call()))

    def status(self, name: str) -> ConnectorState:
        return parse_state(self.run(status_call(name)))

    def get_config(self, name: str) -> dict[str, str]:
        return dict(self.run(get_config_call(name)))

    def put_config(self, name: str, config: Mapping[str, str]) -> None:
        self.run(put_config_call(name, config))

    def validate(self, plugin_class: str, config: Mapping[str, str]) -> Validation:
        return parse_validation(self.run(validate_call(plugin_class, config)))

    def pause(self, name: str) -> None:
        self.run(state_call(name, "pause"))

    def resume(self, name: str) -> None:
        self.run(state_call(name, "resume"))

    def stop(self, name: str) -> None:
        self.run(state_call(name, "stop"))

    def restart(self, name: str, *, include_tasks: bool = True, only_failed: bool = True) -> None:
        self.run(restart_call(name, include_tasks=include_tasks, only_failed=only_failed))

    def restart_task(self, name: str, task: int) -> None:
        self.run(restart_task_call(name, task))

    def delete(self, name: str) -> bool:
        """Delete the connector; False when there was none. Its committed offsets stay."""
        return self.run(delete_call(name)) is not MISSING

    def offsets(self, name: str) -> list[dict[str, Any]]:
        return list((self.run(offsets_call(name)) or {}).get("offsets", []))

    def delete_offsets(self, name: str) -> None:
        """Forget a STOPPED connector's committed offsets (Connect refuses otherwise)."""
        self.run(delete_offsets_call(name))


class AsyncConnectClient(_Base):
    """Non-blocking client for the console: the same calls, awaited."""

    def __init__(
        self,
        url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        conflict_retries: int = CONFLICT_RETRIES,
        backoff_s: float = CONFLICT_BACKOFF_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, conflict_retries, backoff_s)
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(self, call: Call) -> Any:
        for attempt in range(self.conflict_retries + 1):
            try:
                response = await self._http.request(
                    call.method, call.path, **self._request_args(call)
                )
            except httpx.HTTPError as exc:
                raise self._unreachable(call, exc) from exc
            if not self._retry(call, response, attempt):
                return self._result(call, response)
            await asyncio.sleep(self.backoff_s)
        raise AssertionError("unreachable")  # the loop always returns on its last attempt

    async def connectors(self) -> dict[str, ConnectorState]:
        return parse_states(await self.run(list_call()))

    async def status(self, name: str) -> ConnectorState:
        return parse_state(await self.run(status_call(name)))
