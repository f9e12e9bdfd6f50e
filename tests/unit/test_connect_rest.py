"""The Connect REST client's parsing, retries and error sentences.

httpx.MockTransport stands in for Kafka Connect here, for what a real worker will not do on
demand (a 409 during a rebalance, a dropped connection mid-request). The integration tests
against a real Connect worker (scripts/kafka-stack) come with the engine (issue 5).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from cdc_tui.engines.kafka_connect.rest import (
    JDBC_SINK,
    POSTGRES_SOURCE,
    AsyncConnectClient,
    ConnectClient,
    ConnectError,
    ConnectorMissing,
    ConnectUnreachable,
    parse_state,
    parse_validation,
)
from cdc_tui.errors import NotAvailableError

URL = "http://admin:s3cret@connect.example:8083"

STATUS = {
    "name": "cdc_tui_orders_1_source",
    "connector": {"state": "RUNNING", "worker_id": "10.0.0.5:8083"},
    "tasks": [
        {"id": 1, "state": "RUNNING", "worker_id": "10.0.0.6:8083"},
        {"id": 0, "state": "FAILED", "worker_id": "10.0.0.5:8083",
         "trace": "org.apache.kafka.connect.errors.ConnectException: boom"},
    ],
    "type": "source",
}  # fmt: skip


def client(handler: object, **kw: object) -> ConnectClient:
    return ConnectClient(URL, transport=httpx.MockTransport(handler), backoff_s=0, **kw)  # type: ignore[arg-type]


def test_parse_state_orders_tasks_and_keeps_traces() -> None:
    state = parse_state(STATUS)
    assert state.state == "RUNNING" and state.type == "source"
    assert [t.id for t in state.tasks] == [0, 1]
    assert state.failed_tasks[0].trace is not None and "boom" in state.failed_tasks[0].trace
    doc = state.to_json()
    assert doc["tasks"][0] == {"id": 0, "state": "FAILED", "worker_id": "10.0.0.5:8083",
                               "trace": state.tasks[0].trace}  # fmt: skip


def test_parse_validation_collects_errors_by_key() -> None:
    doc = {"error_count": 1, "configs": [
        {"value": {"name": "database.hostname", "errors": []}},
        {"value": {"name": "slot.name", "errors": ["Slot name must be valid"]}}]}  # fmt: skip
    v = parse_validation(doc)
    assert v.error_count == 1 and v.errors == {"slot.name": ("Slot name must be valid",)}
    assert v.sentence() == "slot.name: Slot name must be valid"


def test_a_409_is_retried_until_connect_settles() -> None:
    answers = iter([409, 409, 200])
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        code = next(answers)
        if code == 409:
            return httpx.Response(409, json={"error_code": 409, "message": "rebalance"})
        return httpx.Response(200, json=STATUS)

    assert client(handler).status("cdc_tui_orders_1_source").state == "RUNNING"
    assert seen == ["/connectors/cdc_tui_orders_1_source/status"] * 3


def test_a_500_while_a_rebalance_is_expected_is_retried_like_a_409() -> None:
    answers = iter([500, 200])

    def handler(_request: httpx.Request) -> httpx.Response:
        if next(answers) == 500:
            message = "Request cannot be completed because a rebalance is expected"
            return httpx.Response(500, json={"error_code": 500, "message": message})
        return httpx.Response(200, json={"name": "c"})

    assert client(handler).get_config("c") == {"name": "c"}


def test_another_500_is_not_retried() -> None:
    calls: list[int] = []

    def handler(_request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(500, json={"error_code": 500, "message": "NullPointerException"})

    with pytest.raises(ConnectError, match="answered 500"):
        client(handler).get_config("c")
    assert len(calls) == 1


def test_a_409_that_persists_becomes_one_sentence() -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"error_code": 409, "message": "rebalance in progress"})

    with pytest.raises(ConnectError) as info:
        client(handler, conflict_retries=2).pause("c")
    assert "409" in info.value.message and "rebalance in progress" in info.value.message
    assert "s3cret" not in info.value.message


def test_unreachable_names_the_url_without_its_password() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ConnectUnreachable) as info:
        client(handler).connectors()
    assert "connect.example:8083" in info.value.message
    assert "s3cret" not in info.value.message
    assert info.value.exit_code == 1


def test_unknown_connector_and_idempotent_delete() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error_code": 404, "message": "Connector x not found"})

    with pytest.raises(ConnectorMissing):
        client(handler).status("x")
    assert client(handler).delete("x") is False


def test_a_starting_worker_s_html_404_is_unreachable_not_missing() -> None:
    """Seen on a real worker restarting: Jetty answers before Connect's resources exist."""

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, html="<html><title>Error 404 Not Found</title></html>")

    with pytest.raises(ConnectUnreachable, match="still starting") as info:
        client(handler).plugins()
    assert getattr(info.value, "retriable", False) is True
    with pytest.raises(ConnectUnreachable):
        client(handler).status("x")


def test_missing_plugins_are_named() -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"class": POSTGRES_SOURCE, "type": "source"}])

    with pytest.raises(NotAvailableError) as info:
        client(handler).require_plugins(POSTGRES_SOURCE, JDBC_SINK)
    assert JDBC_SINK in info.value.message and POSTGRES_SOURCE not in info.value.message


def test_requests_carry_the_documented_paths_and_flags() -> None:
    seen: list[tuple[str, str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path.decode().split("?")[0]
        seen.append((request.method, raw, request.url.query.decode()))
        if request.url.path.endswith("/validate"):
            assert json.loads(request.content)["connector.class"] == POSTGRES_SOURCE
            return httpx.Response(200, json={"error_count": 0, "configs": []})
        return httpx.Response(204 if request.method != "GET" else 200, json={})

    c = client(handler)
    c.restart('odd "name"/1', include_tasks=True, only_failed=True)
    c.stop("c")
    c.validate(POSTGRES_SOURCE, {"slot.name": "s"})
    assert seen[0] == ("POST", "/connectors/odd%20%22name%22%2F1/restart",
                       "includeTasks=true&onlyFailed=true")  # fmt: skip
    assert seen[1][:2] == ("PUT", "/connectors/c/stop")
    assert seen[2][1] == f"/connector-plugins/{POSTGRES_SOURCE}/config/validate"


def test_the_async_client_retries_too() -> None:
    answers = iter([409, 200])

    def handler(_request: httpx.Request) -> httpx.Response:
        code = next(answers)
        body = {"c": {"status": STATUS, "info": {}}} if code == 200 else {"message": "busy"}
        return httpx.Response(code, json=body)

    async def go() -> None:
        c = AsyncConnectClient(URL, transport=httpx.MockTransport(handler), backoff_s=0)
        try:
            states = await c.connectors()
        finally:
            await c.aclose()
        assert states["c"].state == "RUNNING"

    asyncio.run(go())
