"""Pipeline repository on both metadata backends: CRUD, updates, events, logs, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, func, select

from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import (
    CdcStatus,
    Engine,
    FullLoadStatus,
    Mode,
    PipelineStatus,
    StatusField,
    TableState,
)
from cdc_tui.errors import NotFoundError, UsageError
from cdc_tui.store.db import Store, open_store
from cdc_tui.store.leases import LeaseRepository
from cdc_tui.store.models import Connection, Event, PipelineTable, RunnerLease, StepLog
from cdc_tui.store.records import EventKind
from cdc_tui.store.repositories import PipelineRepository
from tests.unit.store_support import SOURCE, START, TABLES, TARGET, FakeClock, create_pipeline


@pytest.fixture
def repo(store: Store) -> PipelineRepository:
    return PipelineRepository(store)


def _count(store: Store, model: type[object]) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_create_then_get_round_trips_every_field(repo: PipelineRepository) -> None:
    created = create_pipeline(repo)
    got = repo.get("orders")
    assert got == created
    assert got.name == "orders"
    assert got.engine is Engine.EMBEDDED
    assert got.mode is Mode.FULL_LOAD_AND_CDC
    assert got.status is PipelineStatus.STOPPED
    assert got.full_load_status is FullLoadStatus.NOT_STARTED
    assert got.cdc_status is CdcStatus.NOT_STARTED
    assert (got.slot_name, got.publication_name) == ("cdc_tui_orders", "cdc_tui_orders")
    assert (got.generation, got.changes_applied, got.target_schema) == (1, 0, "replica")
    assert got.source == SOURCE
    assert got.target == TARGET
    assert [t.table for t in got.tables] == list(TABLES)
    assert all(t.state is TableState.PENDING and t.rows_copied == 0 for t in got.tables)
    assert got.created_at == got.updated_at == START
    [created_event] = repo.events("orders")
    assert (created_event.kind, created_event.to_value, created_event.actor) == (
        EventKind.ACTION,
        "created",
        "test",
    )


def test_cdc_only_pipeline_starts_with_full_load_skipped(repo: PipelineRepository) -> None:
    record = create_pipeline(repo, "live", mode=Mode.CDC_ONLY)
    assert record.full_load_status is FullLoadStatus.SKIPPED
    assert repo.get("live").full_load_status is FullLoadStatus.SKIPPED


def test_duplicate_name_is_a_usage_error_and_keeps_the_first(
    repo: PipelineRepository, store: Store
) -> None:
    first = create_pipeline(repo)
    with pytest.raises(UsageError) as info:
        create_pipeline(repo, tables=(TableRef("public", "other"),))
    assert info.value.message == (
        "Pipeline 'orders' already exists; choose another name or drop it first with "
        "`cdc-tui drop orders`."
    )
    assert repo.get("orders") == first
    assert _count(store, PipelineTable) == len(TABLES)


def test_url_with_a_password_is_refused(repo: PipelineRepository) -> None:
    leaky = ConnectionRef(url="postgresql://cdc:hunter2@src/shop", kind="postgresql")
    with pytest.raises(UsageError, match="contains a password"):
        repo.create(
            name="leak", engine=Engine.EMBEDDED, mode=Mode.FULL_LOAD_ONLY, source=leaky,
            target=TARGET, tables=TABLES, target_schema=None, connect_url=None, actor="t",
        )  # fmt: skip
    assert repo.find("leak") is None


def test_missing_pipeline(repo: PipelineRepository) -> None:
    assert repo.find("nope") is None
    with pytest.raises(NotFoundError) as info:
        repo.get("nope")
    assert info.value.message == (
        "Pipeline 'nope' does not exist; run `cdc-tui list` to see the pipelines."
    )


def test_list_is_ordered_by_name_in_a_fixed_number_of_queries(
    repo: PipelineRepository, store: Store
) -> None:
    for name in ("zeta", "alpha", "mid"):
        create_pipeline(repo, name)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        records = repo.list()
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert [r.name for r in records] == ["alpha", "mid", "zeta"]
    assert all(len(r.tables) == len(TABLES) and r.target == TARGET for r in records)
    queries = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 3


def test_delete_removes_children_and_keeps_history(
    repo: PipelineRepository, store: Store, clock: FakeClock
) -> None:
    create_pipeline(repo)
    create_pipeline(repo, "kept")
    repo.append_log("orders", 0, "INFO", "schema created")
    LeaseRepository(store).acquire("orders", owner="o", pid=1, host="h", ttl_s=30)
    clock.advance()
    repo.delete("orders", actor="dba", reason="no longer needed")
    assert repo.find("orders") is None
    assert [p.name for p in repo.list()] == ["kept"]
    assert _count(store, PipelineTable) == len(TABLES)
    assert _count(store, Connection) == 2
    assert _count(store, StepLog) == 0
    assert _count(store, RunnerLease) == 0
    history = repo.events("orders")
    assert [e.to_value for e in history] == ["dropped", "created"]
    assert (history[0].reason, history[0].actor, history[0].at) == (
        "no longer needed",
        "dba",
        clock(),
    )
    with store.session() as session:
        ids = session.scalars(select(Event.pipeline_id).where(Event.pipeline_name == "orders"))
        assert list(ids) == [None, None]
    with pytest.raises(NotFoundError):
        repo.delete("orders", actor="dba", reason="again")


def test_update_sets_columns_and_updated_at(repo: PipelineRepository, clock: FakeClock) -> None:
    create_pipeline(repo)
    applied_at = clock.advance(5)
    repo.update(
        "orders", full_load_lsn="0/1553E40", applied_lsn="0/16B3748", changes_applied=12345,
        lag_seconds=0.25, last_applied_at=applied_at, last_error="boom",
    )  # fmt: skip
    got = repo.get("orders")
    assert (got.full_load_lsn, got.applied_lsn, got.changes_applied) == (
        "0/1553E40",
        "0/16B3748",
        12345,
    )
    assert (got.lag_seconds, got.last_error) == (0.25, "boom")
    assert got.last_applied_at == applied_at == got.updated_at
    assert got.status is PipelineStatus.STOPPED


@pytest.mark.parametrize("field", [f.value for f in StatusField])
def test_update_rejects_status_columns(repo: PipelineRepository, field: str) -> None:
    create_pipeline(repo)
    before = repo.get("orders")
    with pytest.raises(ValueError, match=r"transition\(\)|cannot set"):
        repo.update("orders", **{field: "RUNNING"})
    assert repo.get("orders") == before


def test_update_rejects_unknown_and_identity_columns(repo: PipelineRepository) -> None:
    create_pipeline(repo)
    for field in ("name", "id", "slot_name", "created_at", "no_such_column"):
        with pytest.raises(ValueError, match="cannot set"):
            repo.update("orders", **{field: "x"})
    with pytest.raises(NotFoundError):
        repo.update("nope", last_error="x")
    assert repo.get("orders").name == "orders"


def test_update_table_progress(repo: PipelineRepository, clock: FakeClock) -> None:
    create_pipeline(repo)
    now = clock.advance()
    repo.update_table_progress("orders", TABLES[1], rows_copied=500, rows_estimated=2000)
    by_table = {t.table: t for t in repo.get("orders").tables}
    assert (by_table[TABLES[1]].rows_copied, by_table[TABLES[1]].rows_estimated) == (500, 2000)
    assert by_table[TABLES[1]].updated_at == now
    assert by_table[TABLES[0]].rows_copied == 0
    with pytest.raises(NotFoundError, match="not part of pipeline 'orders'"):
        repo.update_table_progress(
            "orders", TableRef("public", "ghost"), rows_copied=1, rows_estimated=None
        )


def test_record_event_and_events_newest_first(repo: PipelineRepository, clock: FakeClock) -> None:
    create_pipeline(repo)
    for i in range(5):
        clock.advance()
        repo.record_event(
            "orders", kind=EventKind.ACTION, reason=f"r{i}", actor="dba", action="start"
        )
    recorded = repo.record_event("orders", kind=EventKind.ERROR, reason="slot lost", actor="run")
    newest = repo.events("orders", limit=3)
    assert newest[0] == recorded
    assert [e.reason for e in newest] == ["slot lost", "r4", "r3"]
    assert newest[1].to_value == "start"
    assert len(repo.events("orders")) == 7
    with pytest.raises(ValueError, match="transition"):
        repo.record_event("orders", kind=EventKind.TRANSITION, reason="x", actor="y")
    with pytest.raises(NotFoundError):
        repo.record_event("nope", kind=EventKind.INFO, reason="x", actor="y")


def test_logs_tail_with_after_id_step_and_limit(repo: PipelineRepository) -> None:
    create_pipeline(repo)
    create_pipeline(repo, "other")
    repo.append_log("other", 0, "INFO", "not mine")
    written = [repo.append_log("orders", i % 3, "info", f"line {i}") for i in range(7)]
    assert [r.level for r in written] == ["INFO"] * 7
    first = repo.logs("orders", limit=4)
    assert [r.message for r in first] == ["line 0", "line 1", "line 2", "line 3"]
    rest = repo.logs("orders", after_id=first[-1].id)
    assert [r.message for r in rest] == ["line 4", "line 5", "line 6"]
    assert repo.logs("orders", after_id=rest[-1].id) == []
    step1 = repo.logs("orders", step=1)
    assert [r.message for r in step1] == ["line 1", "line 4"]
    assert [r.id for r in step1] == sorted(r.id for r in step1)
    with pytest.raises(ValueError, match="step"):
        repo.append_log("orders", 3, "INFO", "bad step")
    with pytest.raises(ValueError, match="level"):
        repo.append_log("orders", 0, "LOUD", "bad level")
    with pytest.raises(NotFoundError):
        repo.logs("nope")


def test_timestamps_round_trip_timezone_aware_utc(metadata_url: str) -> None:
    # A clock in UTC+02:00 must still come back as the same instant, in UTC.
    offset_clock = FakeClock(datetime(2026, 11, 23, 20, 30, tzinfo=timezone(timedelta(hours=2))))
    store = open_store(metadata_url, clock=offset_clock)
    try:
        repo = PipelineRepository(store)
        create_pipeline(repo)
        got = repo.get("orders")
        assert got.created_at.tzinfo is UTC
        assert got.created_at == START
        assert got.tables[0].updated_at.utcoffset() == timedelta(0)
        assert repo.logs("orders") == []
        log = repo.append_log("orders", 1, "INFO", "x")
        assert repo.logs("orders")[0].at == log.at == START
        assert repo.logs("orders")[0].at.tzinfo is UTC
        with pytest.raises(ValueError, match="timezone-aware"):
            repo.update("orders", last_applied_at=datetime(2026, 1, 1))
    finally:
        store.dispose()
