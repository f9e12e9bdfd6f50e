"""The replication slot under attack (RELIABILITY rows 21, 22, 24): invalidated, dropped behind
our back, and an idle pipeline in a cluster whose other databases write WAL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.runner_support import (
    Cli,
    create_pipeline,
    pipeline_cli,
    slot_info,
    source_objects,
    start_running,
    wait_converged,
    wait_status,
    wait_until,
)
from tests.pg import Database, create_database, drop_database

NAME = "slots"
SLOT = f"cdc_tui_{NAME}"
CUSTOMERS = ("shop", "customers", ["id"])
ITEMS = ("shop", "Order Items", ["order_id", "line"])
TABLES = [CUSTOMERS, ITEMS]


@pytest.fixture
def cli(tmp_path: Path, source_db: Database, target_db: Database) -> Iterator[Cli]:
    with pipeline_cli(tmp_path, source_db, target_db, NAME) as c:
        yield c


def streaming(cli: Cli, source: Database, target: Database) -> None:
    create_pipeline(cli, NAME, "shop.customers", 'shop."Order Items"')
    start_running(cli, NAME)
    wait_converged(source, target, TABLES)


def failed_start(cli: Cli) -> dict[str, object]:
    """`start`, then the status once the runner has given up with ERROR."""
    cli.run("start", NAME)
    doc = wait_status(
        cli, NAME, lambda d: d["status"] == "ERROR" and d["runner"] is None, 60, "status ERROR"
    )
    assert doc["health"] == "failed", doc
    return doc


def test_invalidated_slot_fails_loudly_then_resync_recovers(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    """Row 21: a slot the source invalidated (wal_status lost) stops the pipeline with
    "invalidated ... resync required"; nothing re-creates it silently; `resync` recovers."""
    streaming(cli, source_db, target_db)
    cli.run("stop", NAME, "--wait", "--timeout", "60")
    source_db.execute(
        "CREATE TABLE public.filler (x text);"
        "INSERT INTO shop.customers SELECT g, 'lost' || g, NULL FROM generate_series(101, 150) g"
    )
    try:
        source_db.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
        source_db.execute("SELECT pg_reload_conf()")

        def lost() -> bool:
            # Fill and switch a few WAL segments, then a checkpoint removes what the slot needs.
            for _ in range(3):
                source_db.execute(
                    "INSERT INTO public.filler SELECT repeat('x', 1000)"
                    " FROM generate_series(1, 500); DELETE FROM public.filler"
                )
                source_db.execute("SELECT pg_switch_wal()")
            source_db.execute("CHECKPOINT")
            info = slot_info(source_db, NAME)
            return info is not None and info["wal_status"] == "lost"

        wait_until(lost, 90, "the slot to be invalidated", poll=0.1)
    finally:
        source_db.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
        source_db.execute("SELECT pg_reload_conf()")

    doc = failed_start(cli)
    error = str(doc["last_error"])
    assert "invalidated" in error and "resync required" in error, error
    info = slot_info(source_db, NAME)
    assert info is not None and info["wal_status"] == "lost", "the slot was re-created"
    assert doc["slot"]["wal_status"] == "lost", doc["slot"]  # type: ignore[index]

    cli.run("resync", NAME)
    wait_status(cli, NAME, lambda d: d["cdc_status"] == "RUNNING", 120, "cdc RUNNING after resync")
    source_db.execute("INSERT INTO shop.customers VALUES (9001, 'after resync', NULL)")
    wait_converged(source_db, target_db, TABLES)


def test_slot_advanced_or_dropped_behind_our_back_fails_loudly(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    """Row 22: a slot advanced past the target's position is a "data gap", a slot dropped
    outside cdc-tui is "missing"; both say "resync required", and no new slot appears."""
    streaming(cli, source_db, target_db)
    cli.run("stop", NAME, "--wait", "--timeout", "60")
    source_db.execute("INSERT INTO shop.customers VALUES (9001, 'skipped', NULL)")
    source_db.execute("SELECT pg_replication_slot_advance(%s, pg_current_wal_lsn())", (SLOT,))
    doc = failed_start(cli)
    error = str(doc["last_error"])
    assert "data gap" in error and "resync required" in error, error

    source_db.execute("SELECT pg_drop_replication_slot(%s)", (SLOT,))
    source_db.execute("INSERT INTO shop.customers VALUES (9002, 'in the gap', NULL)")
    cli.run("start", NAME)
    doc = wait_status(
        cli, NAME,
        lambda d: "missing" in (d["last_error"] or "") and d["runner"] is None,
        60, "ERROR: slot missing",
    )  # fmt: skip
    assert doc["status"] == "ERROR" and doc["health"] == "failed", doc
    assert "resync required" in doc["last_error"], doc["last_error"]
    assert source_objects(source_db, NAME) == (0, 1), "a slot was re-created"


def test_idle_pipeline_busy_neighbour_keeps_slot_moving(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    """Row 24: no changes on our tables while another database of the source cluster writes
    WAL; the slot's confirmed_flush_lsn and restart_lsn follow, so retained WAL stays bounded."""
    streaming(cli, source_db, target_db)
    neighbour = create_database(source_db.cluster, "busy")
    try:
        before = str(source_db.scalar("SELECT pg_current_wal_lsn()::text"))
        with neighbour.admin() as conn:
            conn.execute("CREATE TABLE noise (x text)")
            for _ in range(8):  # ~8 MB of WAL that our publication does not carry
                conn.execute(
                    "INSERT INTO noise SELECT repeat('n', 1000) FROM generate_series(1, 1000)"
                )
                conn.execute("DELETE FROM noise")
        after = str(source_db.scalar("SELECT pg_current_wal_lsn()::text"))
        written = int(source_db.scalar("SELECT pg_wal_lsn_diff(%s, %s)::bigint", (after, before)))  # type: ignore[call-overload]
        assert written > 8_000_000

        def confirmed_past(lsn: str) -> bool:
            return bool(
                source_db.scalar(
                    "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots"
                    " WHERE slot_name = %s",
                    (lsn, SLOT),
                )
            )

        wait_until(lambda: confirmed_past(after), 60, "confirmed_flush_lsn to pass the noise")

        def restart_past(lsn: str) -> bool:
            source_db.execute("CHECKPOINT")  # logs the running-xacts record restart_lsn moves to
            return bool(
                source_db.scalar(
                    "SELECT restart_lsn >= %s::pg_lsn FROM pg_replication_slots"
                    " WHERE slot_name = %s",
                    (lsn, SLOT),
                )
            )

        wait_until(lambda: restart_past(after), 60, "restart_lsn to pass the noise", poll=1)
        info = slot_info(source_db, NAME)
        assert info is not None and info["retained_bytes"] < written // 2, (info, written)
    finally:
        drop_database(neighbour)
    assert cli.status(NAME)["cdc_status"] == "RUNNING"
    source_db.execute("INSERT INTO shop.customers VALUES (9001, 'still streaming', NULL)")
    wait_converged(source_db, target_db, TABLES)
