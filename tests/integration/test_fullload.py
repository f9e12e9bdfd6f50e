"""Step 1 against real clusters: the copy matches the exported snapshot, whole table by checksum."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.fullload import copier
from cdc_tui.fullload.copier import FullLoadResult, run_full_load
from cdc_tui.fullload.errors import FullLoadError, SnapshotLostError
from cdc_tui.fullload.job import FullLoadJob, TableJob, plan_job
from cdc_tui.pgconn import PgParams, connect
from cdc_tui.sources.postgres.catalog import TableDef, read_tables
from cdc_tui.targets.postgres.ddl import TablePlan, plan_tables
from cdc_tui.targets.postgres.schema import apply_step0
from tests.pg import Database
from tests.tables import table_checksum

pytestmark = pytest.mark.integration

ORDERS = TableRef("public", "orders")
NO_SPLIT = 10**9


def _params(db: Database) -> PgParams:
    return PgParams(db.url(), password=db.superuser_password)


@contextmanager
def exported_snapshot(db: Database) -> Iterator[tuple[psycopg.Connection[object], str]]:
    """A logical slot created with an exported snapshot; the connection holding it is yielded."""
    slot = f"fl_{uuid.uuid4().hex[:12]}"
    conn: psycopg.Connection[object] = psycopg.connect(
        db.url(), password=db.superuser_password, replication="database", autocommit=True
    )
    try:
        command = f"CREATE_REPLICATION_SLOT \"{slot}\" LOGICAL pgoutput (SNAPSHOT 'export')"
        result = conn.pgconn.exec_(command.encode())
        assert result.status == psycopg.pq.ExecStatus.TUPLES_OK, result.error_message
        snapshot = result.get_value(0, 2)
        assert snapshot is not None
        yield conn, snapshot.decode()
    finally:
        conn.close()
        db.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


class RecordingSink:
    """Keeps every progress report and table completion, optionally cancelling on the first."""

    def __init__(self, cancel_on_first: threading.Event | None = None) -> None:
        self.calls: list[tuple[TableRef, int, int | None]] = []
        self.done: list[TableRef] = []
        self._cancel = cancel_on_first

    def __call__(self, table: TableRef, rows_copied: int, rows_estimated: int | None) -> None:
        self.calls.append((table, rows_copied, rows_estimated))
        if self._cancel is not None:
            self._cancel.set()

    def table_done(self, table: TableRef) -> None:
        self.done.append(table)


def _step0(
    source_db: Database, target_db: Database, refs: Sequence[TableRef]
) -> list[tuple[TableDef, TablePlan]]:
    with source_db.admin() as conn:
        defs = read_tables(conn, refs)
    table_defs = [d for d in (defs[r] for r in refs) if d is not None]
    plans = plan_tables(table_defs, target_schema=None)
    with connect(_params(target_db)) as conn:
        apply_step0(conn, plans, lambda _line: None)
    return list(zip(table_defs, plans, strict=True))


def _job(
    source_db: Database,
    target_db: Database,
    snapshot: str,
    tables: list[tuple[TableDef, TablePlan]],
    rows_per_range: int = NO_SPLIT,
) -> FullLoadJob:
    return plan_job(
        _params(source_db),
        _params(target_db),
        snapshot,
        tables,
        target_rows_per_range=rows_per_range,
    )


def _load(
    job: FullLoadJob,
    snapshot: str,
    sink: RecordingSink,
    *,
    workers: int = 2,
    cancel: threading.Event | None = None,
    log: list[str] | None = None,
) -> FullLoadResult:
    return run_full_load(
        job,
        workers=workers,
        snapshot_name=snapshot,
        progress=sink,
        cancel=cancel or threading.Event(),
        log=None if log is None else log.append,
    )


def _orders(db: Database, rows: int) -> None:
    db.execute("CREATE TABLE public.orders (id bigint PRIMARY KEY, qty int, note text)")
    db.execute(
        "INSERT INTO public.orders SELECT g, g %% 1000, 'order ' || g "
        "FROM generate_series(1, %s) AS g",
        (rows,),
    )
    db.execute("ANALYZE public.orders")


# Primary keys of the public tables: (table, constraint, definition).
KEYS_QUERY = """
SELECT array_agg(ARRAY[c.conrelid::regclass::text, c.conname::text, pg_get_constraintdef(c.oid)]
                 ORDER BY c.conname)
  FROM pg_constraint AS c
 WHERE c.contype = 'p' AND c.connamespace = 'public'::regnamespace
"""


def _sum(db: Database, ref: TableRef, keys: Sequence[str] = ("id",)) -> tuple[int, str]:
    return table_checksum(db, ref.schema, ref.name, keys)


def test_full_load_copies_the_snapshot_not_later_changes(
    source_db: Database, target_db: Database
) -> None:
    _orders(source_db, 1000)
    mixed = TableRef("public", "Mixed Case")
    source_db.execute('CREATE TABLE public."Mixed Case" ("Key" int PRIMARY KEY, "v""q" text)')
    source_db.execute(
        'INSERT INTO public."Mixed Case" SELECT g, g::text FROM generate_series(1, 9) g'
    )
    tables = _step0(source_db, target_db, [ORDERS, mixed])
    keys = target_db.scalar(KEYS_QUERY)
    assert keys == [
        ['"Mixed Case"', "Mixed Case_pkey", 'PRIMARY KEY ("Key")'],
        ["orders", "orders_pkey", "PRIMARY KEY (id)"],
    ]
    before = _sum(source_db, ORDERS)
    with exported_snapshot(source_db) as (_holder, snapshot):
        source_db.execute(
            "INSERT INTO public.orders SELECT g, 0, 'late' FROM generate_series(1001, 1100) g"
        )
        source_db.execute("UPDATE public.orders SET qty = -1 WHERE id <= 50")
        source_db.execute("DELETE FROM public.orders WHERE id BETWEEN 900 AND 950")
        source_db.execute('DELETE FROM public."Mixed Case"')
        assert _sum(source_db, ORDERS) != before
        sink = RecordingSink()
        result = _load(_job(source_db, target_db, snapshot, tables), snapshot, sink)
    assert _sum(target_db, ORDERS) == before
    assert _sum(target_db, mixed, ["Key"])[0] == 9
    assert target_db.scalar(KEYS_QUERY) == keys  # rebuilt after the load, same name and columns
    assert result.rows_copied == {ORDERS: 1000, mixed: 9} and not result.cancelled
    assert sorted(sink.done) == sorted([ORDERS, mixed]) == sorted(result.tables_done)
    assert [c for c in sink.calls if c[0] == ORDERS][-1] == (ORDERS, 1000, 1000)


COVERAGE_QUERY = "SELECT count(*) FILTER (WHERE n <> 1) FROM (SELECT {} AS n FROM {}) AS s"


def _coverage_query(job: TableJob) -> sql.Composed:
    """Rows matched by no range or by more than one: both must be zero."""
    hits = sql.SQL(" + ").join(
        sql.SQL("({})::int").format(r.condition() or sql.SQL("true")) for r in job.ranges
    )
    return sql.SQL(
        "SELECT count(*) FILTER (WHERE n <> 1) FROM (SELECT {} AS n FROM {}) AS s"
    ).format(hits, sql.Identifier(job.table.ref.schema, job.table.ref.name))


@pytest.mark.parametrize("prefill", [False, True])
def test_ranges_cover_every_row_once_and_prefilled_targets_end_clean(
    source_db: Database, target_db: Database, prefill: bool
) -> None:
    source_db.execute("CREATE TABLE public.orders (id bigint PRIMARY KEY, qty int, note text)")
    source_db.execute(
        "INSERT INTO public.orders SELECT g, g % 7, repeat('x', g % 50) "
        "FROM generate_series(-500, 2999) AS g WHERE g % 10 <> 3"
    )
    source_db.execute("ANALYZE public.orders")
    tables = _step0(source_db, target_db, [ORDERS])
    if prefill:
        # What an interrupted attempt leaves: stale copies of real keys and keys no range bounds.
        target_db.execute(
            "INSERT INTO public.orders SELECT g, -1, 'stale' FROM generate_series(-900, 3900, 7) g"
        )
    with exported_snapshot(source_db) as (_holder, snapshot):
        job = _job(source_db, target_db, snapshot, tables, rows_per_range=1000)
        [table_job] = job.tables
        assert len(table_job.ranges) == 4
        assert table_job.ranges[0].lower is None and table_job.ranges[-1].upper is None
        assert source_db.scalar(_coverage_query(table_job).as_string()) == 0
        sink = RecordingSink()
        result = _load(job, snapshot, sink, workers=2)
    expected = _sum(source_db, ORDERS)
    assert expected[0] == 3200
    assert _sum(target_db, ORDERS) == expected
    assert result.rows_copied == {ORDERS: 3200} and sink.done == [ORDERS]
    assert sink.calls[-1] == (ORDERS, 3200, 3200)


def test_prefilled_whole_table_is_truncated_first(source_db: Database, target_db: Database) -> None:
    _orders(source_db, 500)
    tables = _step0(source_db, target_db, [ORDERS])
    target_db.execute(
        "INSERT INTO public.orders SELECT g, -1, 'stale' FROM generate_series(400, 700) g"
    )
    with exported_snapshot(source_db) as (_holder, snapshot):
        job = _job(source_db, target_db, snapshot, tables)
        assert [r.whole_table for r in job.tables[0].ranges] == [True]
        _load(job, snapshot, RecordingSink())
    assert _sum(target_db, ORDERS) == _sum(source_db, ORDERS)


USER_TYPES = """
CREATE TYPE public.mood AS ENUM ('happy', 'sad', 'it''s "complicated"');
CREATE DOMAIN public.price AS numeric(10,3) CHECK (VALUE >= 0);
CREATE DOMAIN public.feeling AS public.mood;
CREATE TYPE public.pair AS (x int, y text);
CREATE TABLE public.typed (
    id int PRIMARY KEY, mood public.mood, moods public.mood[], price public.price,
    feeling public.feeling, pair public.pair, pairs public.pair[], n numeric, doc jsonb,
    at timestamptz, d date, tags text[], b bytea
);
INSERT INTO public.typed VALUES
    (1, 'happy', '{happy,sad}', 12.5, 'sad', '(1,"a b")', ARRAY['(2,x)'::public.pair], 'NaN',
     '{"k": [1, "é"]}', 'infinity', '-infinity', '{"",NULL,"𝄞"}', '\\x00ff'),
    (2, 'it''s "complicated"', '{}', 0, NULL, '(,)', NULL, 1e100, 'null', '2000-01-01 00:00+14',
     '0001-01-01 BC', '{}', ''),
    (3, NULL, NULL, NULL, NULL, NULL, '{NULL}', NULL, NULL, NULL, NULL, NULL, NULL);
"""


def test_enum_domain_composite_and_array_columns_copy_through_casts(
    source_db: Database, target_db: Database
) -> None:
    with source_db.admin() as conn:
        conn.execute(USER_TYPES.encode())
    typed = TableRef("public", "typed")
    tables = _step0(source_db, target_db, [typed])
    targets = {c.name: c.target_type for c in tables[0][1].columns}
    assert (targets["moods"], targets["feeling"], targets["pairs"]) == ("text[]", "text", "text[]")
    with exported_snapshot(source_db) as (_holder, snapshot):
        result = _load(_job(source_db, target_db, snapshot, tables), snapshot, RecordingSink())
    assert result.rows_copied == {typed: 3}
    assert _sum(target_db, typed) == _sum(source_db, typed)


def _wait_gone(db: Database, pid: int) -> None:
    """The walsender removes its exported snapshot as it exits; wait until it has."""
    deadline = time.monotonic() + 10
    while db.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) != 0:
        assert time.monotonic() < deadline, "the walsender did not exit"
        time.sleep(0.05)


def test_lost_snapshot_raises_snapshot_lost(source_db: Database, target_db: Database) -> None:
    _orders(source_db, 10)
    tables = _step0(source_db, target_db, [ORDERS])
    with exported_snapshot(source_db) as (holder, snapshot):
        job = _job(source_db, target_db, snapshot, tables)
        pid = holder.info.backend_pid
        holder.close()
        _wait_gone(source_db, pid)
        with pytest.raises(SnapshotLostError) as lost:
            _load(job, snapshot, RecordingSink())
        assert snapshot in lost.value.message and "restart Step 1" in lost.value.message
        with pytest.raises(SnapshotLostError):
            _job(source_db, target_db, snapshot, tables)
    assert _sum(target_db, ORDERS)[0] == 0


def test_cancel_stops_between_units(source_db: Database, target_db: Database) -> None:
    _orders(source_db, 3000)
    tables = _step0(source_db, target_db, [ORDERS])
    with exported_snapshot(source_db) as (_holder, snapshot):
        job = _job(source_db, target_db, snapshot, tables, rows_per_range=1000)
        already = threading.Event()
        already.set()
        idle = _load(job, snapshot, RecordingSink(), cancel=already)
        assert idle.cancelled and idle.rows_copied == {ORDERS: 0}
        cancel = threading.Event()
        sink = RecordingSink(cancel_on_first=cancel)
        result = _load(job, snapshot, sink, workers=1, cancel=cancel)
    assert result.cancelled and result.tables_done == () and sink.done == []
    copied = result.rows_copied[ORDERS]
    assert 0 < copied < 3000
    assert _sum(target_db, ORDERS)[0] == copied  # only the one committed unit


def test_permanent_error_names_table_and_range(source_db: Database, target_db: Database) -> None:
    _orders(source_db, 2000)
    target_db.execute(
        "CREATE TABLE public.orders (id bigint PRIMARY KEY, qty int, note text, CHECK (id < 1900))"
    )
    tables = _step0(source_db, target_db, [ORDERS])
    log: list[str] = []
    with exported_snapshot(source_db) as (_holder, snapshot):
        job = _job(source_db, target_db, snapshot, tables, rows_per_range=1000)
        with pytest.raises(FullLoadError) as failed:
            _load(job, snapshot, RecordingSink(), log=log)
    upper = job.tables[0].ranges[-1]
    assert f"Copying public.orders (id in [{upper.lower}, )) failed:" in failed.value.message
    assert "violates check constraint" in failed.value.message
    assert not any("retrying" in line for line in log)


def test_lost_target_connection_is_retried(source_db: Database, target_db: Database) -> None:
    _orders(source_db, 3000)
    tables = _step0(source_db, target_db, [ORDERS])

    class KillOnce(RecordingSink):
        def __call__(self, table: TableRef, rows_copied: int, rows_estimated: int | None) -> None:
            super().__call__(table, rows_copied, rows_estimated)
            if len(self.calls) == 1:
                target_db.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'cdc-tui'"
                )

    log: list[str] = []
    with exported_snapshot(source_db) as (_holder, snapshot):
        job = _job(source_db, target_db, snapshot, tables, rows_per_range=1000)
        result = _load(job, snapshot, KillOnce(), workers=1, log=log)
    assert any("retrying public.orders" in line for line in log), log
    assert result.rows_copied == {ORDERS: 3000}
    assert _sum(target_db, ORDERS) == _sum(source_db, ORDERS)


def test_progress_moves_within_a_unit_and_cancel_rolls_it_back(
    source_db: Database, target_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copier, "PROGRESS_INTERVAL_S", 0.0)  # a report after every block
    source_db.execute("CREATE TABLE public.orders (id bigint PRIMARY KEY, qty int, note text)")
    source_db.execute(
        "INSERT INTO public.orders SELECT g, g, repeat('n', 100) FROM generate_series(1, 20000) g"
    )
    source_db.execute("VACUUM ANALYZE public.orders")
    tables = _step0(source_db, target_db, [ORDERS])
    with exported_snapshot(source_db) as (_holder, snapshot):
        job = _job(source_db, target_db, snapshot, tables)
        sink = RecordingSink()
        _load(job, snapshot, sink)
        rows = [copied for _table, copied, _estimate in sink.calls]
        assert any(0 < n < 20000 for n in rows), rows  # movement before the unit's end
        assert rows == sorted(rows) and rows[-1] == 20000
        assert {estimate for _table, _copied, estimate in sink.calls} == {20000}
        cancel = threading.Event()
        result = _load(job, snapshot, RecordingSink(cancel_on_first=cancel), cancel=cancel)
    assert result.cancelled and result.rows_copied == {ORDERS: 0}
    assert _sum(target_db, ORDERS) == _sum(source_db, ORDERS)  # the cancelled rerun rolled back


def test_partitioned_source_into_partitioned_target(
    source_db: Database, target_db: Database
) -> None:
    for db in (source_db, target_db):
        db.execute(
            "CREATE TABLE public.events (id int, at date, v text, PRIMARY KEY (id, at)) "
            "PARTITION BY RANGE (at)"
        )
        db.execute(
            "CREATE TABLE public.events_2026 PARTITION OF public.events "
            "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"
        )
    source_db.execute(
        "INSERT INTO public.events SELECT g, date '2026-01-01' + g %% 300, g::text "
        "FROM generate_series(1, %s) AS g",
        (500,),
    )
    source_db.execute("ANALYZE public.events")
    events = TableRef("public", "events")
    tables = _step0(source_db, target_db, [events])
    with exported_snapshot(source_db) as (_holder, snapshot):
        job = _job(source_db, target_db, snapshot, tables)
        assert job.tables[0].size_bytes and job.tables[0].size_bytes > 0
        result = _load(job, snapshot, RecordingSink())
    assert result.rows_copied == {events: 500}
    assert _sum(target_db, events, ["id", "at"]) == _sum(source_db, events, ["id", "at"])
