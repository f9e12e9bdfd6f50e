"""The kafka_connect engine under faults: a sink task driven to FAILED, a per-table resync while
the rest stream, and the Connect worker SIGKILLed (unreachable, then restarted).

Real `cdc-tui`, a real broker and Connect worker (the session's stack), two clusters; every
scenario ends by comparing whole tables (count and checksum).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc_tui import kafka_stack as ks
from cdc_tui.services.board import read_board
from cdc_tui.services.context import build_context
from tests.integration.cli_env import TARGET_ROLE
from tests.integration.kafka_support import running_kafka_pipeline
from tests.integration.runner_support import (
    Cli,
    process_gone,
    wait_converged,
    wait_status,
    wait_until,
)
from tests.integration.test_embedded_e2e import Writer
from tests.pg import Database

pytestmark = pytest.mark.integration

NAME = "kfaults"
TABLES = [("shop", "customers", ["id"]), ("shop", "Order Items", ["order_id", "line"])]
TABLE_LIST = 'shop.customers,shop."Order Items"'


@pytest.fixture
def cli(
    tmp_path: Path, source_db: Database, target_db: Database, kafka_stack: ks.Stack
) -> Iterator[Cli]:
    with running_kafka_pipeline(tmp_path, source_db, target_db, kafka_stack, NAME, TABLE_LIST) as c:
        yield c


def _table_state(doc: dict[str, object], table: str) -> str:
    tables = doc["full_load"]["tables"]  # type: ignore[index]
    return next(t["state"] for t in tables if t["table"] == table)  # type: ignore[attr-defined]


def test_resync_one_table_while_the_others_stream(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    source_db.execute(
        "INSERT INTO shop.customers SELECT g, 'more' || g, NULL FROM generate_series(101, 3000) g"
    )
    wait_converged(source_db, target_db, TABLES, timeout=120)
    # Damage the target copy so only a real re-read can repair it.
    target_db.execute("DELETE FROM shop.customers WHERE id % 3 = 0")
    target_db.execute("INSERT INTO shop.customers VALUES (-999, 'stray', NULL)")
    writer = Writer(source_db)
    writer.start()
    try:
        out = cli.run("resync", NAME, "--table", "shop.customers").stdout
        assert "incremental snapshot" in out
        assert target_db.scalar("SELECT count(*) FROM shop.customers WHERE id = -999") == 0
        wait_status(cli, NAME, lambda d: _table_state(d, "shop.customers") == "COMPLETED", 180,
                    "the incremental snapshot to finish")  # fmt: skip
        start = writer.count
        wait_until(lambda: writer.count > start + 50, 60, "the writer to go on")
    finally:
        writer.stop.set()
        writer.join(30)
    assert writer.error is None, writer.error
    wait_converged(source_db, target_db, TABLES, timeout=180)
    history = cli.run("status", NAME, "--json").stdout
    assert '"COMPLETED"' in history


def test_failed_sink_task_shows_its_trace_and_cli_restart_recovers(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    wait_converged(source_db, target_db, TABLES, timeout=120)
    target_db.execute(f"REVOKE INSERT, UPDATE ON shop.customers FROM {TARGET_ROLE}")
    source_db.execute(
        "INSERT INTO shop.customers SELECT g, 'blocked' || g, NULL FROM generate_series(201, 260) g"
    )

    def sink_failed(doc: dict[str, object]) -> bool:
        return any(
            t["state"] == "FAILED" and "permission denied" in (t["trace"] or "")
            for c in doc["connectors"]  # type: ignore[attr-defined]
            if c["role"] == "sink"
            for t in c["tasks"]
        )

    doc = wait_status(cli, NAME, sink_failed, 120, "the sink task to fail with its trace")
    assert doc["health"] == "failed"
    doc = wait_status(cli, NAME, lambda d: d["status"] == "ERROR", 120,
                      "the runner to give up after its automatic restarts")  # fmt: skip
    assert "permission denied" in doc["last_error"]
    assert "cdc-tui restart" in doc["last_error"]
    # The console's board sees the FAILED task left for the operator (one Connect listing).
    ctx = build_context(cli.env.config, environ=cli.environ())
    try:
        row = next(r for r in read_board(ctx).rows if r.name == NAME)
    finally:
        ctx.close()
    assert row.health == "failed" and "a connector task is FAILED" in row.health_reasons

    target_db.execute(f"GRANT INSERT, UPDATE ON shop.customers TO {TARGET_ROLE}")
    cli.run("restart", NAME, "--wait", "running", "--timeout", "240", timeout=300)
    wait_converged(source_db, target_db, TABLES, timeout=120)
    doc = wait_status(cli, NAME, lambda d: d["health"] == "healthy", 60, "healthy again")
    assert doc["last_error"] is None


def test_connect_killed_is_degraded_with_a_reason_and_converges_after_restart(
    cli: Cli, source_db: Database, target_db: Database, kafka_stack: ks.Stack
) -> None:
    wait_converged(source_db, target_db, TABLES, timeout=120)
    running = ks.read_state(kafka_stack.state_dir)
    assert running is not None and running.connect_pid is not None
    os.kill(running.connect_pid, signal.SIGKILL)
    wait_until(lambda: process_gone(running.connect_pid or 0), 30, "Connect to die")
    source_db.execute(
        "INSERT INTO shop.customers SELECT g, 'down' || g, NULL FROM generate_series(301, 400) g;"
        "UPDATE shop.customers SET email = 'down@x' WHERE id < 50;"
        "DELETE FROM shop.customers WHERE id BETWEEN 60 AND 70"
    )
    doc = wait_status(
        cli, NAME,
        lambda d: d["health"] == "degraded" and d["cdc_status"] == "RECONNECTING", 60,
        "degraded while Connect is down",
    )  # fmt: skip
    assert any("Kafka Connect unreachable" in r for r in doc["health_reasons"]), doc
    assert doc["connect"]["reachable"] is False

    restarted = ks.start(kafka_stack.state_dir, timeout=240)
    assert restarted.connect_url == kafka_stack.connect_url
    wait_status(cli, NAME, lambda d: d["cdc_status"] == "RUNNING" and d["health"] == "healthy",
                180, "recovered after the restart")  # fmt: skip
    wait_converged(source_db, target_db, TABLES, timeout=180)
