"""The harness itself: clusters are separate, logical, and a database is fresh per test."""

from __future__ import annotations

from tests.pg import Database


def test_source_and_target_are_separate_logical_clusters(
    source_db: Database, target_db: Database
) -> None:
    assert source_db.cluster.port != target_db.cluster.port
    assert source_db.scalar("SHOW wal_level") == "logical"
    assert target_db.scalar("SHOW wal_level") == "logical"
    assert source_db.scalar("SELECT count(*) FROM pg_class WHERE relname = 'harness_probe'") == 0
    source_db.execute("CREATE TABLE harness_probe (id int PRIMARY KEY)")
    assert target_db.scalar("SELECT count(*) FROM pg_class WHERE relname = 'harness_probe'") == 0
