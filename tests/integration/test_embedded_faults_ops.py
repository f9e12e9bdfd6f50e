"""Faults around a streaming embedded pipeline (RELIABILITY rows 17, 23, 25-28).

Target down, walsender killed, two runners, drop while running, schema drift, a change the
target rejects. Every scenario that recovers ends with whole-table equality.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.integration.runner_support import (
    CDC_TUI,
    Cli,
    create_pipeline,
    pipeline_cli,
    runner_pids,
    slot_info,
    source_objects,
    start_running,
    wait_converged,
    wait_status,
    wait_until,
)
from tests.pg import Database

NAME = "ops"
CUSTOMERS = ("shop", "customers", ["id"])
ITEMS = ("shop", "Order Items", ["order_id", "line"])
TABLES = [CUSTOMERS, ITEMS]


@pytest.fixture
def cli(tmp_path: Path, source_db: Database, target_db: Database) -> Iterator[Cli]:
    # A short backoff cap keeps recovery after an outage within seconds.
    with pipeline_cli(
        tmp_path, source_db, target_db, NAME, runner_toml="retry_max_backoff = 2"
    ) as c:
        yield c


@pytest.fixture
def any_meta_cli(
    tmp_path: Path, metadata_url: str, source_db: Database, target_db: Database
) -> Iterator[Cli]:
    """The same, once with a SQLite and once with a PostgreSQL metadata DB (the lease lives
    there)."""
    with pipeline_cli(tmp_path, source_db, target_db, NAME, metadata_url=metadata_url) as c:
        yield c


def streaming(cli: Cli, source: Database, target: Database) -> None:
    create_pipeline(cli, NAME, "shop.customers", 'shop."Order Items"')
    start_running(cli, NAME)
    wait_converged(source, target, TABLES)


class Ticker(threading.Thread):
    """Commits a small source transaction every `interval` seconds until stopped."""

    def __init__(self, db: Database, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.db, self.interval = db, interval
        self.halt = threading.Event()
        self.count = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.db.admin() as conn:
                while not self.halt.wait(self.interval):
                    n = 50_000 + self.count
                    with conn.transaction():
                        conn.execute("INSERT INTO shop.customers VALUES (%s, 'tick', NULL)", (n,))
                        conn.execute("UPDATE shop.customers SET email = 'ticked' WHERE id = %s",
                                     (n % 100 + 1,))  # fmt: skip
                        conn.execute('INSERT INTO shop."Order Items" VALUES (%s, 1, NULL)', (n,))
                    self.count += 1
        except BaseException as exc:  # surfaced by the test
            self.error = exc


@contextmanager
def ticking(db: Database) -> Iterator[Ticker]:
    """A running Ticker, stopped (and checked, when the block succeeded) at the end."""
    ticker = Ticker(db)
    ticker.start()
    try:
        yield ticker
    finally:
        ticker.halt.set()
        ticker.join(30)
    assert ticker.error is None, ticker.error
    assert ticker.count > 0


def test_target_down_reconnects_by_itself(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    """Row 26: the target is down ~20 s while the source keeps changing; the runner shows
    RECONNECTING with the last error, then resumes without a new start and loses nothing."""
    streaming(cli, source_db, target_db)
    pid = cli.status(NAME)["runner"]["pid"]
    cluster = target_db.cluster
    with ticking(source_db) as ticker:
        try:
            down_at = time.monotonic()
            cluster.stop("fast")

            def reconnecting(d: dict[str, Any]) -> bool:
                assert d["status"] != "ERROR", f"the runner gave up: {d['last_error']}"
                return bool(d["cdc_status"] == "RECONNECTING")

            doc = wait_status(cli, NAME, reconnecting, 30, "cdc RECONNECTING")
            assert doc["last_error"], doc
            assert (doc["status"], doc["runner"]["pid"]) == ("RUNNING", pid)
            start = ticker.count
            wait_until(
                lambda: time.monotonic() - down_at > 20 and ticker.count > start + 20,
                60,
                "the source to keep changing while the target is down",
                poll=1,
            )
            assert cli.status(NAME)["cdc_status"] == "RECONNECTING"
        finally:
            cluster.start()
        start = ticker.count
        wait_until(lambda: ticker.count > start + 20, 30, "changes after the target is back")
    wait_converged(source_db, target_db, TABLES, timeout=90)
    doc = wait_status(cli, NAME, lambda d: d["cdc_status"] == "RUNNING", 30, "cdc RUNNING")
    assert doc["runner"]["pid"] == pid, "a new runner was started"


def test_walsender_terminated_reconnects(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    """Row 28: the source kills our walsender mid-stream; the runner reconnects by itself."""
    streaming(cli, source_db, target_db)
    pid = cli.status(NAME)["runner"]["pid"]
    with ticking(source_db) as ticker:
        wait_until(lambda: ticker.count > 20, 30, "changes before the kill")
        old = slot_info(source_db, NAME)
        assert old is not None and old["active_pid"]
        assert source_db.scalar(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
            " WHERE slot_name = %s",
            (f"cdc_tui_{NAME}",),
        )

        def new_walsender() -> bool:
            now = slot_info(source_db, NAME)
            return now is not None and now["active_pid"] not in (None, old["active_pid"])

        wait_until(new_walsender, 60, "a new walsender on the slot")
        start = ticker.count
        wait_until(lambda: ticker.count > start + 20, 30, "changes after the reconnect")
    wait_converged(source_db, target_db, TABLES, timeout=60)
    doc = cli.status(NAME)
    assert (doc["cdc_status"], doc["runner"]["pid"]) == ("RUNNING", pid)


def test_second_runner_refused_and_concurrent_starts(
    any_meta_cli: Cli, source_db: Database, target_db: Database
) -> None:
    """Row 23: `run` beside a live runner is refused; two simultaneous `start`s give one
    runner, one lease, one walsender."""
    cli = any_meta_cli
    streaming(cli, source_db, target_db)
    second = cli.run("run", NAME, check=False, timeout=60)
    assert second.returncode == 1, second
    assert "already being run" in second.stderr
    assert cli.status(NAME)["status"] == "RUNNING"
    cli.run("stop", NAME, "--wait", "--timeout", "60")

    argv = [CDC_TUI, "start", NAME, "--wait", "running", "--timeout", "120"]

    def launch() -> subprocess.Popen[str]:
        return subprocess.Popen(argv, env=cli.environ(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    procs = [launch(), launch()]
    results = [p.communicate(timeout=150) for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes, results
    wait_until(lambda: len(runner_pids(cli.env.config, NAME)) == 1, 30, "exactly one runner")
    time.sleep(1)  # a late loser would show up now
    pids = runner_pids(cli.env.config, NAME)
    doc = cli.status(NAME)
    assert pids == [doc["runner"]["pid"]], (pids, doc["runner"])
    assert (doc["status"], doc["cdc_status"], doc["last_error"]) == ("RUNNING", "RUNNING", None)
    walsenders = source_db.scalar(
        "SELECT count(*) FROM pg_stat_replication WHERE application_name = %s", (f"cdc-tui {NAME}",)
    )
    assert walsenders == 1
    source_db.execute("INSERT INTO shop.customers VALUES (777, 'one runner', NULL)")
    wait_converged(source_db, target_db, TABLES)


def test_drop_while_running(cli: Cli, source_db: Database, target_db: Database) -> None:
    """Row 25: `drop` of a streaming pipeline stops it and leaves no slot, no publication."""
    streaming(cli, source_db, target_db)
    assert source_objects(source_db, NAME) == (1, 1)
    cli.run("drop", NAME)
    assert source_objects(source_db, NAME) == (0, 0)
    assert runner_pids(cli.env.config, NAME) == []
    gone = cli.run("status", NAME, check=False)
    assert gone.returncode == 2, gone
    assert NAME in gone.stderr


def test_schema_drift_add_column_follows_drop_column_pauses(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    """Row 17: ADD COLUMN mid-stream is followed (column and values); DROP COLUMN pauses the
    pipeline with "schema drift on ..." and never drops data silently."""
    streaming(cli, source_db, target_db)
    source_db.execute(
        "ALTER TABLE shop.customers ADD COLUMN note text;"
        "INSERT INTO shop.customers VALUES (1001, 'noted', NULL, 'hello');"
        "UPDATE shop.customers SET note = 'n' || id WHERE id <= 10;"
    )
    wait_converged(source_db, target_db, TABLES)
    assert target_db.scalar("SELECT note FROM shop.customers WHERE id = 1001") == "hello"

    source_db.execute("ALTER TABLE shop.customers DROP COLUMN email")
    source_db.execute("INSERT INTO shop.customers VALUES (1002, 'after drop', 'x')")
    doc = wait_status(cli, NAME, lambda d: d["cdc_status"] == "PAUSED", 60, "cdc PAUSED")
    assert doc["last_error"].startswith("schema drift on shop.customers"), doc["last_error"]
    assert "email" in doc["last_error"] and "LSN" in doc["last_error"], doc["last_error"]
    assert slot_info(source_db, NAME) is not None
    # Everything before the drift was applied; the change after it was not skipped silently.
    assert target_db.scalar("SELECT count(*) FROM shop.customers WHERE id <= 1001") == 101
    assert target_db.scalar("SELECT count(*) FROM shop.customers WHERE id = 1002") == 0


@pytest.mark.parametrize(
    "wait",
    [
        False,
        True,
    ],
    ids=["start", "start-wait"],
)  # fmt: skip
def test_permanent_apply_error_keeps_slot_then_recovers(
    cli: Cli, source_db: Database, target_db: Database, wait: bool
) -> None:
    """Row 27: a target-only CHECK rejects a change → ERROR naming table, key and LSN, slot
    kept; once the constraint is gone, `start` converges (also with `--wait running`)."""
    streaming(cli, source_db, target_db)
    target_db.execute("ALTER TABLE shop.customers ADD CONSTRAINT target_only CHECK (id < 100000)")
    source_db.execute("INSERT INTO shop.customers VALUES (500, 'fine', NULL)")
    source_db.execute(
        "INSERT INTO shop.customers VALUES (501, 'fine too', NULL), (100001, 'rejected', NULL)"
    )
    source_db.execute("INSERT INTO shop.customers VALUES (502, 'after', NULL)")
    doc = wait_status(cli, NAME, lambda d: d["status"] == "ERROR", 60, "status ERROR")
    error = doc["last_error"]
    assert "shop.customers" in error and "100001" in error and "LSN" in error, error
    assert doc["health"] == "failed"
    assert slot_info(source_db, NAME) is not None
    wait_until(lambda: cli.status(NAME)["runner"] is None, 30, "the runner to exit")
    # The rejected transaction (and any grouped with it) is rolled back whole: nothing at or
    # after it is on the target, and the slot replays it once the cause is fixed.
    assert target_db.scalar("SELECT count(*) FROM shop.customers WHERE id >= 501") == 0

    target_db.execute("ALTER TABLE shop.customers DROP CONSTRAINT target_only")
    if wait:
        start_running(cli, NAME)
    else:
        cli.run("start", NAME)
        wait_status(cli, NAME, lambda d: d["cdc_status"] == "RUNNING", 60, "cdc RUNNING again")
    wait_converged(source_db, target_db, TABLES)
    doc = cli.status(NAME)
    assert (doc["status"], doc["cdc_status"], doc["health"]) == ("RUNNING", "RUNNING", "healthy")
