"""The embedded engine end to end: the real `cdc-tui` binary, a detached runner, two clusters.

Every scenario ends by comparing whole tables (count and checksum) on source and target.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cli_env import make_cli_env
from tests.integration.runner_support import (
    Cli,
    source_objects,
    wait_converged,
    wait_until,
)
from tests.pg import Database

TABLES = [("shop", "customers", ["id"]), ("shop", "Order Items", ["order_id", "line"])]
CREATE = ("pipeline", "create", "orders", "--source", "src", "--target", "tgt",
          "--tables", 'shop.customers,shop."Order Items"')  # fmt: skip


@pytest.fixture
def cli(
    tmp_path: Path, metadata_url: str, source_db: Database, target_db: Database
) -> Iterator[Cli]:
    env = make_cli_env(tmp_path, metadata_url, source_db, target_db)
    c = Cli(env, tmp_path / "home")
    yield c
    c.run("stop", "orders", "--wait", "--timeout", "60", check=False)


class Writer(threading.Thread):
    """Inserts, updates (including key changes) and deletes until stopped."""

    def __init__(self, db: Database) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.count = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.db.admin() as conn:
                n = 10_000
                while not self.stop.is_set():
                    n += 1
                    with conn.transaction():
                        conn.execute(
                            "INSERT INTO shop.customers VALUES (%s, %s, NULL)", (n, f"w{n}")
                        )
                        conn.execute("UPDATE shop.customers SET email = %s WHERE id = %s",
                                     (f"{n}@x", n - 3))  # fmt: skip
                        conn.execute("UPDATE shop.customers SET id = -id WHERE id = %s", (n - 7,))
                        conn.execute("DELETE FROM shop.customers WHERE id = %s", (n - 11,))
                        conn.execute('INSERT INTO shop."Order Items" VALUES (%s, 1, %s)', (n, "s"))
                    self.count += 1
        except BaseException as exc:  # surfaced by the test after join()
            self.error = exc


def test_lifecycle_start_stream_stop_validate_drop(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    cli.run(*CREATE)
    out = cli.run("start", "orders", "--wait", "running", "--timeout", "120").stdout
    assert "status=RUNNING" in out
    doc = cli.status("orders")
    assert doc["full_load_status"] == "COMPLETED"
    assert doc["cdc_status"] == "RUNNING"
    assert doc["full_load"]["lsn"]
    assert doc["slot"]["exists"] is True
    assert doc["runner"]["heartbeat_recent"] is True
    assert [t["rows_copied"] for t in doc["full_load"]["tables"]] == [100, 0]
    wait_converged(source_db, target_db, TABLES)
    check = cli.run("check", "orders", check=False)
    assert check.returncode == 0, check.stdout  # its own slot and publication are not problems
    assert "belongs to this pipeline" in check.stdout

    source_db.execute(
        "INSERT INTO shop.customers SELECT g, 'n' || g, '' FROM generate_series(101, 300) g;"
        "UPDATE shop.customers SET name = name || '!' WHERE id % 10 = 0;"
        "UPDATE shop.customers SET id = id + 1000 WHERE id BETWEEN 1 AND 5;"
        "DELETE FROM shop.customers WHERE id BETWEEN 50 AND 60;"
        "INSERT INTO shop.\"Order Items\" SELECT g, 1, 'a' FROM generate_series(1, 50) g;"
        'TRUNCATE shop."Order Items";'
        "INSERT INTO shop.\"Order Items\" SELECT g, 2, 'b' FROM generate_series(1, 20) g;"
    )
    wait_converged(source_db, target_db, TABLES)
    assert target_db.scalar('SELECT count(*) FROM shop."Order Items" WHERE line = 1') == 0

    cli.run("stop", "orders", "--wait", "--timeout", "60")
    doc = cli.status("orders")
    assert (doc["status"], doc["cdc_status"], doc["runner"]) == ("STOPPED", "STOPPED", None)
    source_db.execute("INSERT INTO shop.customers VALUES (5000, 'while stopped', NULL)")
    cli.run("start", "orders", "--wait", "running", "--timeout", "120")
    wait_converged(source_db, target_db, TABLES)
    assert cli.run("validate", "orders").returncode == 0

    cli.run("drop", "orders")
    assert source_objects(source_db, "orders") == (0, 0)
    assert cli.run("status", "orders", check=False).returncode == 2


def test_writer_through_step1_and_sigkill_in_step2(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    source_db.execute(
        "INSERT INTO shop.customers SELECT g, 'bulk' || g, NULL FROM generate_series(101, 5000) g"
    )
    cli.run(*CREATE)
    writer = Writer(source_db)
    writer.start()
    try:
        cli.run("start", "orders", "--wait", "running", "--timeout", "120")
        start = writer.count
        wait_until(lambda: writer.count > start + 50, 60, "the writer to make changes")
        pid = cli.status("orders")["runner"]["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: writer.count > start + 100, 60, "more changes while down")
        cli.run("start", "orders", "--wait", "running", "--timeout", "120")
    finally:
        writer.stop.set()
        writer.join(30)
    assert writer.error is None, writer.error
    assert writer.count > 100
    wait_converged(source_db, target_db, TABLES, timeout=90)


HOSTILE_SCHEMA = """
CREATE SCHEMA "Mixed Case";
CREATE TYPE "Mixed Case".mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE "Mixed Case"."x""; DROP TABLE y; --" (
    "order" bigint PRIMARY KEY,
    "weird""quote" text,
    "brack]et" numeric,
    "semi;colon" timestamptz,
    "ünïcode" jsonb,
    d date,
    arr int[],
    u uuid,
    b bytea,
    m "Mixed Case".mood,
    flag boolean
);
CREATE TABLE y (id int PRIMARY KEY);
"""
HOSTILE_ROWS = """
INSERT INTO "Mixed Case"."x""; DROP TABLE y; --" VALUES
 (1, '🦄 4-byte', 'NaN', '294276-12-31 23:59:59+00', '{"a": [1, 2, {"b": null}]}', 'infinity',
  '{1,NULL,3}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff', 'happy', true),
 (2, '', 1e-20, '-infinity', 'null', '-infinity', '{}', NULL, '', 'sad', false),
 (3, NULL, 123456789012345678901234567890.123456789, '2000-01-01 00:00:00.000001+00', NULL,
  '0001-01-01', NULL, NULL, NULL, NULL, NULL)
"""


def test_hostile_identifiers_and_exact_types_replicate(
    tmp_path: Path, source_db: Database, target_db: Database
) -> None:
    env = make_cli_env(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", source_db, target_db)
    cli = Cli(env, tmp_path / "home")
    source_db.execute(HOSTILE_SCHEMA)
    source_db.execute('ALTER TABLE "Mixed Case"."x""; DROP TABLE y; --" OWNER TO cdc_reader')
    source_db.execute('GRANT USAGE ON SCHEMA "Mixed Case" TO cdc_reader')
    source_db.execute(HOSTILE_ROWS.replace("(1,", "(10,").replace("(2,", "(20,").replace(
        "(3,", "(30,"))  # fmt: skip
    table = '"Mixed Case"."x""; DROP TABLE y; --"'
    cli.run("pipeline", "create", "hostile", "--source", "src", "--target", "tgt",
            "--tables", table)  # fmt: skip
    try:
        cli.run("start", "hostile", "--wait", "running", "--timeout", "120")
        source_db.execute(HOSTILE_ROWS)
        source_db.execute(
            'UPDATE "Mixed Case"."x""; DROP TABLE y; --" SET "order" = "order" + 100, '
            "m = 'ok' WHERE \"order\" = 2"
        )
        tables = [("Mixed Case", 'x"; DROP TABLE y; --', ["order"])]
        wait_converged(source_db, target_db, tables)
        assert target_db.scalar("SELECT count(*) FROM pg_class WHERE relname = 'y'") == 0
        assert source_db.scalar("SELECT count(*) FROM y") == 0
    finally:
        cli.run("stop", "hostile", "--wait", "--timeout", "60", check=False)
