"""Partitioned source tables on the embedded engine (RELIABILITY row 20).

A partitioned table is listed by its root; the publication publishes via the root, so changes
to any partition (including one created or attached mid-stream) arrive as changes of the root.
Every scenario ends by comparing whole tables (count and checksum) on source and target.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from tests.integration.cli_env import make_cli_env
from tests.integration.runner_support import (
    Cli,
    add_source_tables,
    create_pipeline,
    kill_runner,
    start_running,
    wait_converged,
)
from tests.pg import Database

NAME = "events"
EVENTS = ("shop", "events", ["id", "created"])
# Rows in every partition before the start: 2024, 2025 and the DEFAULT one (dates in 2030, so a
# 2026 or 2027 partition can be added later without clashing with rows already in DEFAULT).
PARTITIONED = """
CREATE TABLE shop.events (id bigint, created date, payload text, PRIMARY KEY (id, created))
    PARTITION BY RANGE (created);
CREATE TABLE shop.events_2024 PARTITION OF shop.events
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE shop.events_2025 PARTITION OF shop.events
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE shop.events_other PARTITION OF shop.events DEFAULT;
INSERT INTO shop.events SELECT g, date '2024-01-01' + g, 'a' || g FROM generate_series(1, 40) g;
INSERT INTO shop.events SELECT g, date '2025-01-01' + g, 'b' || g FROM generate_series(41, 70) g;
INSERT INTO shop.events SELECT g, date '2030-01-01' + g, 'c' || g FROM generate_series(71, 80) g;
"""
INITIAL_ROWS = 80
LEAF_COUNTS = """
SELECT tableoid::regclass::text, count(*)::int FROM shop.events GROUP BY 1 ORDER BY 1
"""


@pytest.fixture
def cli(
    tmp_path: Path, metadata_url: str, source_db: Database, target_db: Database
) -> Iterator[Cli]:
    env = make_cli_env(tmp_path, metadata_url, source_db, target_db)
    c = Cli(env, tmp_path / "home")
    yield c
    c.run("stop", NAME, "--wait", "--timeout", "60", check=False)


def leaf_counts(db: Database) -> list[tuple[str, int]]:
    with db.admin() as conn:
        return cast("list[tuple[str, int]]", conn.execute(LEAF_COUNTS).fetchall())


def published(source: Database) -> object:
    """The tables the pipeline's publication sends changes as, and whether it uses the root."""
    return source.scalar(
        "SELECT string_agg(t.schemaname || '.' || t.tablename, ',' ORDER BY t.tablename)"
        " FROM pg_publication_tables AS t JOIN pg_publication AS p ON p.pubname = t.pubname"
        " WHERE p.pubname = %s AND p.pubviaroot",
        (f"cdc_tui_{NAME}",),
    )


def streaming(cli: Cli, source_db: Database, target_db: Database) -> None:
    """Partitioned source table, pipeline on its root, running and converged."""
    add_source_tables(source_db, PARTITIONED, "shop.events")
    assert leaf_counts(source_db) == [
        ("shop.events_2024", 40), ("shop.events_2025", 30), ("shop.events_other", 10)]  # fmt: skip
    create_pipeline(cli, NAME, "shop.events")
    start_running(cli, NAME)
    wait_converged(source_db, target_db, [EVENTS])


def assert_healthy(cli: Cli) -> None:
    doc = cli.status(NAME)
    assert (doc["status"], doc["cdc_status"], doc["last_error"]) == (
        "RUNNING", "RUNNING", None), doc  # fmt: skip


def test_partitioned_root_loads_and_streams_row_movement(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    """Step 0 creates one plain table for the root, Step 1 copies every partition, and Step 2
    applies changes in every partition, including updates that move a row between partitions."""
    streaming(cli, source_db, target_db)
    doc = cli.status(NAME)
    assert doc["full_load_status"] == "COMPLETED"
    assert [(t["table"], t["rows_copied"]) for t in doc["full_load"]["tables"]] == [
        ("shop.events", INITIAL_ROWS)]  # fmt: skip
    # The target is a single ordinary table keyed like the root; no partitions were made.
    kind = target_db.scalar("SELECT relkind::text FROM pg_class WHERE relname = 'events'")
    assert kind == "r"
    assert target_db.scalar("SELECT count(*) FROM pg_inherits") == 0
    key = target_db.scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'shop.events'::regclass AND contype = 'p'"
    )
    assert key == "PRIMARY KEY (id, created)"
    assert published(source_db) == "shop.events"

    source_db.execute(
        "INSERT INTO shop.events SELECT g, date '2024-06-01' + g, 'n'"
        " FROM generate_series(101, 110) g;"
        "INSERT INTO shop.events_2025 VALUES (111, '2025-03-03', 'into the leaf');"
        "INSERT INTO shop.events VALUES (112, '2031-01-01', 'default');"
        "UPDATE shop.events SET payload = payload || '!' WHERE id % 7 = 0;"
        "DELETE FROM shop.events WHERE id IN (2, 45, 72);"
        # A partition key change is decoded as a DELETE in one leaf and an INSERT in another.
        "UPDATE shop.events SET created = date '2025-07-07' WHERE id = 3;"
        "UPDATE shop.events SET created = date '2032-02-02', payload = 'moved' WHERE id = 46;"
        "UPDATE shop.events SET created = date '2024-12-31' WHERE id = 73;"
    )
    with source_db.admin() as conn, conn.transaction():
        # Several moves of one row in a transaction must net out to its last position.
        conn.execute("UPDATE shop.events SET id = 1004, created = '2025-01-02' WHERE id = 4")
        conn.execute("UPDATE shop.events SET created = '2024-02-02' WHERE id = 1004")
        conn.execute("UPDATE shop.events SET created = '2030-05-05' WHERE id = 5")
    wait_converged(source_db, target_db, [EVENTS])
    moved = target_db.scalar(
        "SELECT string_agg(id || '@' || created, ',' ORDER BY id) FROM shop.events"
        " WHERE id IN (3, 4, 5, 46, 73, 1004)"
    )
    assert moved == "3@2025-07-07,5@2030-05-05,46@2032-02-02,73@2024-12-31,1004@2024-02-02"
    assert leaf_counts(source_db) == [
        ("shop.events_2024", 48), ("shop.events_2025", 30), ("shop.events_other", 11)]  # fmt: skip
    assert_healthy(cli)


def test_partition_created_and_attached_mid_stream(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    """A partition created with PARTITION OF and another attached (columns in a different order
    and a dropped column) while RUNNING: their rows reach the target through the root."""
    streaming(cli, source_db, target_db)
    source_db.execute(
        "CREATE TABLE shop.events_2026 PARTITION OF shop.events"
        " FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');"
        "INSERT INTO shop.events SELECT g, date '2026-01-01' + g, 'new'"
        " FROM generate_series(201, 220) g;"
        "INSERT INTO shop.events_2026 VALUES (221, '2026-12-31', 'into the new leaf');"
    )
    # Attribute numbers differ from the root's, so pgoutput must map the tuple to the root.
    source_db.execute(
        "CREATE TABLE shop.events_2027 (junk int, payload text, created date NOT NULL,"
        " id bigint NOT NULL);"
        "ALTER TABLE shop.events_2027 DROP COLUMN junk;"
        "ALTER TABLE shop.events ATTACH PARTITION shop.events_2027"
        " FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');"
        "INSERT INTO shop.events SELECT g, date '2027-01-01' + g, 'att'"
        " FROM generate_series(301, 320) g;"
        "INSERT INTO shop.events_2027 (id, created, payload) VALUES (321, '2027-12-30', 'leaf');"
    )
    source_db.execute(
        "UPDATE shop.events SET payload = 'upd' WHERE id IN (205, 305);"
        "DELETE FROM shop.events WHERE id IN (206, 306);"
        # Moves between the two new partitions and from an old one into a new one.
        "UPDATE shop.events SET created = '2027-06-06' WHERE id = 207;"
        "UPDATE shop.events SET created = '2026-06-06' WHERE id = 307;"
        "UPDATE shop.events SET created = '2027-07-07' WHERE id = 10;"
    )
    wait_converged(source_db, target_db, [EVENTS])
    assert leaf_counts(source_db) == [
        ("shop.events_2024", 39), ("shop.events_2025", 30), ("shop.events_2026", 20),
        ("shop.events_2027", 21), ("shop.events_other", 10)]  # fmt: skip
    # Still only the root is published, so the new leaves' changes come under its name.
    assert published(source_db) == "shop.events"
    landed = target_db.scalar(
        "SELECT count(*) FROM shop.events WHERE created >= '2026-01-01' AND created < '2028-01-01'"
    )
    assert landed == 41
    assert_healthy(cli)


def test_runner_killed_on_partitioned_table_resumes(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    """SIGKILL in Step 2, changes (a partition move and a new partition) while down, `start`."""
    streaming(cli, source_db, target_db)
    source_db.execute(
        "INSERT INTO shop.events SELECT g, date '2025-02-01' + (g - 400), 'pre'"
        " FROM generate_series(401, 420) g;"
        "UPDATE shop.events SET created = '2031-03-03' WHERE id = 11;"
    )
    kill_runner(cli, NAME)
    source_db.execute(
        "UPDATE shop.events SET created = '2024-03-03' WHERE id = 401;"
        "DELETE FROM shop.events WHERE id BETWEEN 12 AND 15;"
        "CREATE TABLE shop.events_2026 PARTITION OF shop.events"
        " FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');"
        "INSERT INTO shop.events SELECT g, date '2026-03-01' + (g - 500), 'down'"
        " FROM generate_series(501, 510) g;"
    )
    start_running(cli, NAME)
    source_db.execute("INSERT INTO shop.events VALUES (601, '2026-09-09', 'after restart')")
    wait_converged(source_db, target_db, [EVENTS])
    assert target_db.scalar("SELECT count(*) FROM shop.events WHERE created >= '2026-01-01'"
                            " AND created < '2027-01-01'") == 11  # fmt: skip
    assert_healthy(cli)
