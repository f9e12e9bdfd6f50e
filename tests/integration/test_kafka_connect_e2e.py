"""The kafka_connect engine end to end: PostgreSQL → Debezium → Kafka → JDBC sink → PostgreSQL.

The real `cdc-tui` binary drives a real Kafka broker and Connect worker (the session's stack)
between two clusters; every scenario ends by comparing whole tables (count and checksum).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc_tui import kafka_stack as ks
from tests.integration.kafka_support import (
    connect_call,
    connect_get,
    create_kafka_pipeline,
    kafka_cli,
    pipeline_connectors,
)
from tests.integration.runner_support import (
    Cli,
    source_objects,
    wait_converged,
    wait_status,
    wait_until,
)
from tests.integration.test_embedded_e2e import Writer
from tests.pg import Database

pytestmark = pytest.mark.integration

NAME = "orders"
TABLES = [("shop", "customers", ["id"]), ("shop", "Order Items", ["order_id", "line"])]
TABLE_LIST = 'shop.customers,shop."Order Items"'
PLACEHOLDER = "__debezium_unavailable_value"
# About 10 kB of hex that does not compress below PostgreSQL's TOAST threshold.
BIG = "(SELECT string_agg(md5(random()::text || g2::text), '') FROM generate_series(1, 300) g2)"


@pytest.fixture
def cli(
    tmp_path: Path, source_db: Database, target_db: Database, kafka_stack: ks.Stack
) -> Iterator[Cli]:
    source_db.execute("SELECT 1")  # the clusters first, so a broken one fails here
    with kafka_cli(tmp_path, source_db, target_db, kafka_stack, NAME) as c:
        source_db.execute("ALTER TABLE shop.customers ADD COLUMN notes text")
        source_db.execute(f"UPDATE shop.customers SET notes = {BIG} WHERE id % 2 = 0")
        yield c


def _connectors_running(doc: dict[str, object]) -> bool:
    connectors = doc["connectors"]
    assert isinstance(connectors, list)
    return len(connectors) == 2 and all(
        c["state"] == "RUNNING" and c["tasks"] and all(t["state"] == "RUNNING" for t in c["tasks"])
        for c in connectors
    )


def test_stream_toast_truncate_stop_start_and_drop_leaves_nothing(
    cli: Cli, source_db: Database, target_db: Database, kafka_stack: ks.Stack
) -> None:
    bad = cli.run("pipeline", "create", "other", "--source", "src", "--target", "tgt",
                  "--tables", TABLE_LIST, "--engine", "kafka_connect",
                  "--connect-url", "connect:8083", check=False)  # fmt: skip
    assert bad.returncode == 2 and "is not an http:// or https:// URL" in bad.stderr
    create_kafka_pipeline(cli, kafka_stack, NAME, TABLE_LIST)
    check = cli.run("check", NAME, "--json", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    rules = {(f["rule"], f["severity"]) for f in json.loads(check.stdout)["findings"]}
    assert {("connect.reachable", "ok"), ("connect.plugin", "ok"), ("connect.password", "ok"),
            ("source.replica_identity", "warning")} <= rules  # fmt: skip
    assert source_db.scalar("SELECT to_regclass('cdc_tui.orders_signal')") is None  # check only
    writer = Writer(source_db)
    writer.start()
    try:
        cli.run("start", NAME, "--wait", "running", "--timeout", "240", timeout=300)
        start = writer.count
        wait_until(lambda: writer.count > start + 100, 60, "the writer to make changes in Step 2")
    finally:
        writer.stop.set()
        writer.join(30)
    assert writer.error is None, writer.error
    # Updates that leave the TOASTed column alone, a key change, deletes and a TRUNCATE.
    source_db.execute(
        f"INSERT INTO shop.customers SELECT g, 'big' || g, NULL, {BIG}"
        " FROM generate_series(501, 540) g;"
        "UPDATE shop.customers SET name = name || '!' WHERE notes IS NOT NULL;"
        "UPDATE shop.customers SET id = id + 100000 WHERE id IN (2, 4, 6);"
        "DELETE FROM shop.customers WHERE id IN (8, 10, 12);"
        "INSERT INTO shop.\"Order Items\" SELECT g, 9, 'gone' FROM generate_series(1, 50) g;"
        'TRUNCATE shop."Order Items";'
        "INSERT INTO shop.\"Order Items\" SELECT g, 2, 'kept' FROM generate_series(1, 20) g;"
    )
    wait_converged(source_db, target_db, TABLES, timeout=180)
    assert (
        target_db.scalar(
            "SELECT count(*) FROM shop.customers WHERE notes LIKE %s OR name LIKE %s",
            (f"%{PLACEHOLDER}%", f"%{PLACEHOLDER}%"),
        )
        == 0
    )
    assert target_db.scalar("SELECT count(*) FROM shop.customers WHERE length(notes) > 9000") > 40
    assert target_db.scalar('SELECT count(*) FROM shop."Order Items" WHERE line = 9') == 0
    assert (
        source_db.scalar(
            "SELECT relreplident::text FROM pg_class WHERE oid = 'shop.customers'::regclass"
        )
        == "f"
    )

    doc = wait_status(cli, NAME, _connectors_running, 60, "both connectors RUNNING")
    assert doc["engine"] == "kafka_connect"
    assert doc["connect"]["reachable"] is True
    assert {c["role"] for c in doc["connectors"]} == {"source", "sink"}
    doc = wait_status(cli, NAME, lambda d: d["health"] == "healthy", 60, "healthy")
    assert doc["cdc"]["lag_seconds"] is not None
    assert doc["cdc"]["applied_lsn"]
    assert doc["slot"]["active"] is True
    assert cli.env.source_password not in str(doc)
    config = connect_get(kafka_stack.connect_url,
                         f"/connectors/{doc['connectors'][0]['name']}/config")  # fmt: skip
    assert cli.env.source_password not in str(config)
    assert config["database.password"].startswith("${file:")

    cli.run("stop", NAME, "--wait", "--timeout", "120")
    doc = cli.status(NAME)
    assert (doc["status"], doc["cdc_status"]) == ("STOPPED", "STOPPED")
    assert {c["state"] for c in doc["connectors"]} == {"STOPPED"}
    source_db.execute(f"INSERT INTO shop.customers VALUES (7000, 'while stopped', NULL, {BIG})")
    cli.run("start", NAME, "--wait", "running", "--timeout", "240", timeout=300)
    wait_converged(source_db, target_db, TABLES, timeout=120)

    connectors = pipeline_connectors(kafka_stack, NAME)
    assert len(connectors) == 2
    saved = {n: connect_get(kafka_stack.connect_url, f"/connectors/{n}/config") for n in connectors}
    out = cli.run("drop", NAME, timeout=300).stdout
    assert "and its offsets" in out
    assert pipeline_connectors(kafka_stack, NAME) == []
    assert source_objects(source_db, NAME) == (0, 0)
    assert source_db.scalar("SELECT to_regclass('cdc_tui.orders_signal')") is None
    assert source_db.scalar("SELECT to_regclass('cdc_tui.orders_heartbeat')") is None
    assert (
        source_db.scalar(
            "SELECT relreplident::text FROM pg_class WHERE oid = 'shop.customers'::regclass"
        )
        == "d"
    )
    # A connector created again under the same name would find no offsets to resume (its
    # secrets file went with the pipeline, so the test hands the passwords over itself).
    for name, config in saved.items():
        for key, password in (("database.password", cli.env.source_password),
                              ("connection.password", cli.env.target_password)):  # fmt: skip
            if key in config:
                config[key] = password
        connect_call(kafka_stack.connect_url, "POST", "/connectors",
                     {"name": name, "config": config, "initial_state": "STOPPED"})  # fmt: skip
        try:
            assert connect_get(kafka_stack.connect_url, f"/connectors/{name}/offsets") == {
                "offsets": []
            }
        finally:
            connect_call(kafka_stack.connect_url, "DELETE", f"/connectors/{name}")
