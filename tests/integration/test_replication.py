"""The replication connection against real clusters: exported snapshots, streaming, feedback."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
import pytest
from psycopg import sql

from cdc_tui.engines.embedded.replication import (
    ReplicationConnection,
    ReplicationConnectionLost,
    ReplicationError,
    SlotExistsError,
    SlotInUseError,
    SlotMissingError,
    XLogData,
    is_lost_snapshot_error,
)
from cdc_tui.localpg import free_port
from cdc_tui.lsn import lsn_to_int
from cdc_tui.pgconn import PgParams
from tests.pg import Database, create_database, drop_database

pytestmark = pytest.mark.integration

APP = "cdc-tui-test"
T = TypeVar("T")


def _params(db: Database) -> PgParams:
    return PgParams(db.url(), password=db.superuser_password)


def _open(db: Database, status_interval_s: float = 10.0) -> ReplicationConnection:
    return ReplicationConnection.open(
        _params(db), application_name=APP, status_interval_s=status_interval_s
    )


def _wait_until(probe: Callable[[], T | None], what: str, timeout_s: float = 10.0) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value is not None and value is not False:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@contextmanager
def _slot_name(db: Database) -> Iterator[str]:
    """A fresh slot name; whatever happens, the slot is gone afterwards so DROP DATABASE works."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with db.admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                "WHERE slot_name = %s AND active_pid IS NOT NULL",
                (name,),
            )
            _wait_until(
                lambda: (
                    not conn.execute(
                        "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND active",
                        (name,),
                    ).fetchone()
                    or None
                ),
                "the slot to become inactive",
            )
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s",
                (name,),
            )


def _read_transaction(rc: ReplicationConnection, timeout_s: float = 10.0) -> list[XLogData]:
    """Read messages until a Commit ('C'); fails if none completes within the timeout."""
    deadline = time.monotonic() + timeout_s
    messages: list[XLogData] = []
    while time.monotonic() < deadline:
        message = rc.read(0.2)
        if message is None:
            continue
        messages.append(message)
        if bytes(message.payload[:1]) == b"C":
            return messages
    raise AssertionError(f"no complete transaction within {timeout_s} s: {len(messages)} msgs")


def _tags(messages: list[XLogData]) -> list[bytes]:
    return [bytes(m.payload[:1]) for m in messages]


def _confirmed_flush(db: Database, slot: str) -> int:
    text = db.scalar(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (slot,)
    )
    assert isinstance(text, str)
    return lsn_to_int(text)


def _set_snapshot(name: str | None) -> sql.Composed:
    # SET TRANSACTION SNAPSHOT takes no bind parameter: the name goes in as a quoted literal.
    return sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(name))


def _make_published_table(db: Database) -> None:
    db.execute("CREATE TABLE t (id int PRIMARY KEY, note text, at timestamptz)")
    db.execute("CREATE PUBLICATION pub FOR TABLE t")


def test_exported_snapshot_sees_exactly_the_rows_committed_before_the_slot(
    source_db: Database,
) -> None:
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    source_db.execute("INSERT INTO t SELECT generate_series(1, 3)")
    with _slot_name(source_db) as slot:
        rc = _open(source_db)
        try:
            created = rc.create_slot(slot, export_snapshot=True)
            assert created.slot_name == slot
            assert created.output_plugin == "pgoutput"
            assert created.snapshot_name
            source_db.execute("INSERT INTO t VALUES (4), (5)")
            with source_db.admin() as reader:
                reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                reader.execute(_set_snapshot(created.snapshot_name))
                seen = [r[0] for r in reader.execute("SELECT id FROM t ORDER BY id")]
                reader.execute("COMMIT")
            assert seen == [1, 2, 3]
        finally:
            rc.close()
        assert rc.closed

        # The runner must detect this (RELIABILITY 12): the snapshot died with its connection.
        with source_db.admin() as reader:
            reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
                reader.execute(_set_snapshot(created.snapshot_name))
            reader.execute("ROLLBACK")
        assert caught.value.sqlstate == "22023"
        assert is_lost_snapshot_error(caught.value)

        with _open(source_db) as again, pytest.raises(SlotExistsError) as exists:
            again.create_slot(slot, export_snapshot=False)
        assert slot in exists.value.message


def test_identify_system_and_a_slot_without_snapshot(source_db: Database) -> None:
    with _slot_name(source_db) as slot, _open(source_db) as rc:
        systemid, timeline, xlogpos, dbname = rc.identify_system()
        assert systemid.isdigit()
        assert timeline >= 1
        assert dbname == source_db.name
        assert rc.server_version_num() // 10000 == source_db.cluster.binaries.major
        created = rc.create_slot(slot, export_snapshot=False)
        assert created.snapshot_name is None
        assert created.consistent_point >= xlogpos


@pytest.mark.parametrize("db_fixture", ["source_db", "target_db"])  # PostgreSQL 15 and 16
def test_streaming_a_transaction_and_acknowledging_it(
    db_fixture: str, request: pytest.FixtureRequest
) -> None:
    db: Database = request.getfixturevalue(db_fixture)
    _make_published_table(db)
    # A database time zone the session options must override, so the text output is stable.
    db.execute(f"ALTER DATABASE \"{db.name}\" SET timezone = 'Asia/Tokyo'")
    with _slot_name(db) as slot, _open(db) as rc:
        created = rc.create_slot(slot, export_snapshot=False)
        rc.start(slot, created.consistent_point, publication_names=["pub"])
        assert rc.read(0.1) is None
        db.execute("INSERT INTO t VALUES (1, 'one', '2024-01-02 04:04:05+01'), (2, 'two', NULL)")
        messages = _read_transaction(rc)
        assert _tags(messages) == [b"B", b"R", b"I", b"I", b"C"]
        assert b"2024-01-02 03:04:05+00" in bytes(messages[2].payload)
        commit_end = messages[-1].wal_end
        assert commit_end > created.consistent_point
        assert _confirmed_flush(db, slot) < commit_end

        rc.acknowledge(commit_end)
        rc.acknowledge(created.consistent_point)  # never moves backwards
        assert rc.acknowledged_lsn == commit_end
        _wait_until(
            lambda: _confirmed_flush(db, slot) >= commit_end, "confirmed_flush_lsn to advance"
        )


def test_read_payloads_returns_every_buffered_message_in_order_up_to_its_limit(
    source_db: Database,
) -> None:
    _make_published_table(source_db)
    with _slot_name(source_db) as slot, _open(source_db) as rc:
        created = rc.create_slot(slot, export_snapshot=False)
        rc.start(slot, created.consistent_point, publication_names=["pub"])
        assert rc.read_payloads(0.1) == []
        source_db.execute("INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 50) AS g")
        payloads: list[bytes] = []
        deadline = time.monotonic() + 10
        while (not payloads or payloads[-1][:1] != b"C") and time.monotonic() < deadline:
            batch = rc.read_payloads(0.2, limit=7)
            assert len(batch) <= 7
            payloads.extend(batch)
        assert [p[:1] for p in payloads] == [b"B", b"R"] + [b"I"] * 50 + [b"C"]
        assert b"t\0\0\0\x02n1n" in payloads[2]  # note 'n1', then a NULL timestamp
        assert b"t\0\0\0\x03n50n" in payloads[-2]
        assert rc.read_payloads(0) == []


def test_keepalives_report_wal_written_by_another_database(source_db: Database) -> None:
    _make_published_table(source_db)
    other = create_database(source_db.cluster, "other")
    try:
        with _slot_name(source_db) as slot, _open(source_db) as rc:
            created = rc.create_slot(slot, export_snapshot=False)
            rc.start(slot, created.consistent_point, publication_names=["pub"])
            rc.send_status(request_reply=True)
            _wait_until(lambda: rc.read(0.1) is None and rc.server_wal_end, "a first keepalive")
            before = rc.server_wal_end
            other.execute("CREATE TABLE noise AS SELECT generate_series(1, 1000) AS n")

            def advanced() -> bool:
                assert rc.read(0.1) is None, "no change of our tables was made"
                if rc.server_wal_end <= before:
                    rc.send_status(request_reply=True)
                return rc.server_wal_end > before

            _wait_until(advanced, "server_wal_end to advance")
    finally:
        drop_database(other)


def test_missing_slot_is_a_clear_error(source_db: Database) -> None:
    _make_published_table(source_db)
    with _open(source_db) as rc:
        with pytest.raises(SlotMissingError) as caught:
            rc.start("no_such_slot", 0, publication_names=["pub"])
        assert '"no_such_slot"' in caught.value.message
        assert "resync required" in caught.value.message
        assert not caught.value.retriable
        with pytest.raises(SlotMissingError):
            rc.drop_slot("no_such_slot")
        rc.drop_slot("no_such_slot", missing_ok=True)
        assert not rc.closed  # the connection stays usable after a refused command


def _start_with_retry(
    rc_factory: Callable[[], ReplicationConnection], slot: str, lsn: int
) -> ReplicationConnection:
    """Start streaming, retrying while the killed walsender still holds the slot (as a runner)."""

    def attempt() -> ReplicationConnection | None:
        rc = rc_factory()
        try:
            rc.start(slot, lsn, publication_names=["pub"])
        except SlotInUseError:
            rc.close()
            return None
        return rc

    return _wait_until(attempt, "the slot to be free again")


def test_killed_walsender_then_resume_repeats_only_the_unacknowledged(
    source_db: Database,
) -> None:
    _make_published_table(source_db)
    with _slot_name(source_db) as slot:
        with _open(source_db, status_interval_s=0.5) as rc:
            created = rc.create_slot(slot, export_snapshot=False)
            rc.start(slot, created.consistent_point, publication_names=["pub"])
            source_db.execute("INSERT INTO t VALUES (1, 'first', NULL)")
            rc.acknowledge(_read_transaction(rc)[-1].wal_end)
            source_db.execute("INSERT INTO t VALUES (2, 'second', NULL)")
            assert b"second" in bytes(_read_transaction(rc)[-2].payload)

            pid = source_db.scalar(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            )
            assert source_db.scalar("SELECT pg_terminate_backend(%s)", (pid,)) is True
            with pytest.raises(ReplicationConnectionLost) as lost:
                _wait_until(lambda: rc.read(0.2), "the stream to break")
            assert lost.value.retriable
            resume_at = rc.acknowledged_lsn

        rc2 = _start_with_retry(lambda: _open(source_db), slot, resume_at)
        with rc2:
            again = _read_transaction(rc2)
            assert _tags(again) == [b"B", b"R", b"I", b"C"]
            assert b"second" in bytes(again[2].payload)


def test_slot_creation_waits_for_open_transactions_and_its_timeout_cancels(
    source_db: Database,
) -> None:
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with _slot_name(source_db) as slot, source_db.admin() as blocker, _open(source_db) as rc:
        blocker.execute("BEGIN")
        blocker.execute("INSERT INTO t VALUES (1)")  # holds an xid the snapshot must wait for
        with pytest.raises(ReplicationError, match="Timed out") as caught:
            rc.create_slot(slot, export_snapshot=True, timeout_s=0.5)
        assert not caught.value.retriable
        blocker.execute("ROLLBACK")
        assert rc.identify_system()[3] == source_db.name  # still usable after the cancel
        assert rc.create_slot(slot, export_snapshot=False).slot_name == slot


def test_errors_inside_the_stream_are_classified(source_db: Database) -> None:
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with _slot_name(source_db) as slot, _open(source_db) as rc:
        created = rc.create_slot(slot, export_snapshot=False)
        rc.start(slot, created.consistent_point, publication_names=["nope"])
        source_db.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ReplicationError) as caught:
            _wait_until(lambda: rc.read(0.2), "the server to refuse the publication")
        assert '"nope"' in caught.value.message
        assert type(caught.value) is ReplicationError
        assert not rc.streaming


def test_open_failures_say_whether_to_retry_and_leak_no_password(source_db: Database) -> None:
    wrong = PgParams(source_db.url(), password="not-the-password-1234")
    with pytest.raises(ReplicationError) as auth:
        ReplicationConnection.open(wrong, application_name=APP)
    assert not auth.value.retriable
    assert "not-the-password-1234" not in auth.value.message
    assert "password authentication failed" in auth.value.message

    closed_port = source_db.url().replace(f":{source_db.cluster.port}/", f":{free_port()}/")
    with pytest.raises(ReplicationConnectionLost) as down:
        ReplicationConnection.open(PgParams(closed_port, password="x"), application_name=APP)
    assert down.value.retriable


def test_status_updates_go_out_on_their_interval(source_db: Database) -> None:
    _make_published_table(source_db)
    now = [0.0]
    params = _params(source_db)
    conn = psycopg.connect(
        params.url, autocommit=True, replication="database", **params.connect_kwargs()
    )
    with (
        _slot_name(source_db) as slot,
        ReplicationConnection(conn, status_interval_s=10.0, clock=lambda: now[0]) as rc,
    ):
        created = rc.create_slot(slot, export_snapshot=False)
        rc.start(slot, created.consistent_point, publication_names=["pub"])
        assert rc.read(0) is None  # the first read reports our position at once

        def reply_time() -> object:
            return source_db.scalar(
                "SELECT r.reply_time FROM pg_stat_replication r "
                "JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = %s",
                (slot,),
            )

        first = _wait_until(reply_time, "a first status update")
        now[0] += 9.9
        assert rc.maybe_send_status() is False
        now[0] += 0.2
        assert rc.maybe_send_status() is True
        _wait_until(lambda: reply_time() != first or None, "a second status update")
