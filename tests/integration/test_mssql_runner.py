"""The runner's SQL Server path end to end, from a real PostgreSQL source through the real slot,
snapshot, bulk load, stream and applier, into a fake SQL Server (mssql_fake.py) that stands in
for a live server at the pymssql connection level. What is proven: every source row reaches
bulk copy converted, every change reaches a committed statement with the applied position in
the same transaction, a restart replays nothing already applied, the slot is acknowledged only
up to the target's position, and a value SQL Server cannot hold stops the pipeline naming table,
key and LSN. Whether SQL Server accepts the statements is for tests/live_mssql."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdc_tui.domain.spec import TableRef
from cdc_tui.lsn import lsn_to_int
from cdc_tui.runner.runner import Runner
from cdc_tui.services.context import AppContext, build_context
from cdc_tui.services.pipelines import create_pipeline
from cdc_tui.store.repositories import PipelineRepository
from tests.integration.cli_env import make_cli_env
from tests.integration.mssql_fake import FakeSqlServer
from tests.integration.runner_support import add_source_tables, slot_info, wait_until
from tests.pg import Database

pytestmark = pytest.mark.integration

NAME = "to_fake_mssql"
KINDS = """
CREATE TABLE shop.kinds (id int PRIMARY KEY, at timestamptz, price numeric(10,2), blob bytea,
                         tags text[], born date, note varchar(10));
INSERT INTO shop.kinds VALUES
  (1, '2024-02-29 12:34:56.123456+05:30', 12.5, '\\x00ff', '{a,"b c",NULL}', '0001-01-01', 'é😀'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL);
"""


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSqlServer:
    server = FakeSqlServer()
    monkeypatch.setattr("cdc_tui.runner.mssql_target.connect", server.connect)
    return server


@pytest.fixture
def ctx(tmp_path: Path, source_db: Database, target_db: Database) -> Iterator[AppContext]:
    env = make_cli_env(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", source_db, target_db)
    add_source_tables(source_db, KINDS, "shop.kinds")
    with env.config.open("a") as fh:
        fh.write('\n[connections.dwh]\nurl = "mssql://loader@sql.invalid:1433/dwh"\n'
                 'password_env = "CDC_TUI_SECRET_DWH"\n')  # fmt: skip
    context = build_context(env.config, environ={**env.env, "CDC_TUI_SECRET_DWH": "pw"})
    create_pipeline(context, name=NAME, source="src", target="dwh",
                    tables=[TableRef("shop", "customers"), TableRef("shop", "kinds")])  # fmt: skip
    yield context
    context.close()


RUNNING: list[RunnerThread] = []


@pytest.fixture(autouse=True)
def _stop_runners() -> Iterator[None]:
    """A failed assertion must not leave a runner holding the slot (the database drop waits)."""
    yield
    while RUNNING:
        RUNNING.pop().stop()


class RunnerThread:
    def __init__(self, ctx: AppContext) -> None:
        RUNNING.append(self)
        self.runner = Runner(ctx, NAME)
        self.exit_code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.exit_code = self.runner.run()

    def stop(self) -> int | None:
        if self in RUNNING:
            RUNNING.remove(self)
        self.runner.stop_event.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        return self.exit_code


def _pipeline(ctx: AppContext) -> Any:
    return PipelineRepository(ctx.store).get(NAME)


def _wait_streaming(ctx: AppContext) -> None:
    wait_until(lambda: _pipeline(ctx).cdc_status == "RUNNING", 90, "Step 2 to stream")


def _changes_for(fake: FakeSqlServer, table: str) -> list[str]:
    """The data statements sent for `table`, as pymssql sends them (values inline)."""
    return [s for s in fake.statements() if table in s and not s.startswith("TRUNCATE")]


def test_steps_0_to_2_into_the_fake_server(
    ctx: AppContext, fake: FakeSqlServer, source_db: Database
) -> None:
    run = RunnerThread(ctx)
    _wait_streaming(ctx)

    # Step 0: the position table and both tables, with the planned columns.
    assert fake.tables["[dbo].[kinds]"] == ["id", "at", "price", "blob", "tags", "born", "note"]
    assert "[cdc_tui].[applied_position]" in fake.tables
    # Step 1: every row, converted once, in the form bulk copy sends.
    customers = sorted(fake.rows["[dbo].[customers]"])
    assert [(r[0], r[1]) for r in customers] == [(i, f"c{i}") for i in range(1, 101)]
    kinds = dict((r[0], r) for r in fake.rows["[dbo].[kinds]"])
    assert kinds[1][1:] == ("2024-02-29 07:04:56.123456 +00:00", "12.50", b"\x00\xff",
                            '["a","b c",null]', "0001-01-01", "é😀")  # fmt: skip
    assert kinds[2][1:] == (None,) * 6
    handoff = fake.positions[NAME][1]
    assert handoff == lsn_to_int(_pipeline(ctx).full_load_lsn)

    # Step 2: one source transaction with every kind of change, then a key change.
    source_db.execute(
        "INSERT INTO shop.customers VALUES (101, 'new', NULL);"
        "UPDATE shop.customers SET email = 'x@y' WHERE id = 5;"
        "DELETE FROM shop.customers WHERE id = 6;"
    )
    source_db.execute("UPDATE shop.customers SET id = 1000 WHERE id = 7")
    end = lsn_to_int(str(source_db.scalar("SELECT pg_current_wal_lsn()::text")))
    wait_until(lambda: fake.positions[NAME][1] >= end, 30, "the position to pass the changes")

    statements = _changes_for(fake, "[dbo].[customers]")
    values = "VALUES (CAST({} AS bigint), CAST(N'{}' AS nvarchar(max)), {})"
    assert any(values.format(101, "new", "CAST(NULL AS nvarchar(max))") in s for s in statements)
    assert any(values.format(5, "c5", "CAST(N'x@y' AS nvarchar(max))") in s for s in statements)
    assert any(s.startswith("DELETE") and "[id] = CAST(6 AS bigint)" in s for s in statements)
    assert any(s.startswith("UPDATE") and "[id] = CAST(1000 AS bigint)" in s
               and "WHERE [id] = CAST(7 AS bigint)" in s for s in statements)  # fmt: skip
    # The data and the position commit together: each group ends with the position upsert.
    for txn in fake.committed:
        if any("[dbo].[customers]" in s and not s.startswith("TRUNCATE") for s in txn):
            assert "[cdc_tui].[applied_position]" in txn[-1]
    slot = slot_info(source_db, NAME)
    assert slot is not None
    assert lsn_to_int(slot["confirmed_flush_lsn"]) <= fake.positions[NAME][1]
    assert run.stop() == 0
    assert _pipeline(ctx).status == "STOPPED"

    # A restart resumes from the stored position: nothing applied twice.
    before = len(_changes_for(fake, "[dbo].[customers]"))
    again = RunnerThread(ctx)
    _wait_streaming(ctx)
    source_db.execute("DELETE FROM shop.customers WHERE id = 8")
    end = lsn_to_int(str(source_db.scalar("SELECT pg_current_wal_lsn()::text")))
    wait_until(lambda: fake.positions[NAME][1] >= end, 30, "the position to pass the delete")
    after = _changes_for(fake, "[dbo].[customers]")[before:]
    assert after == ["DELETE FROM [dbo].[customers] WHERE [id] = CAST(8 AS bigint);"]
    assert again.stop() == 0


def test_a_value_sql_server_cannot_hold_stops_the_pipeline(
    ctx: AppContext, fake: FakeSqlServer, source_db: Database
) -> None:
    run = RunnerThread(ctx)
    _wait_streaming(ctx)
    source_db.execute("INSERT INTO shop.kinds (id, born) VALUES (77, '10000-01-01')")
    wait_until(lambda: _pipeline(ctx).status == "ERROR", 30, "the pipeline to stop in ERROR")
    run.thread.join(30)
    assert run.exit_code == 1
    error = _pipeline(ctx).last_error
    assert "shop.kinds (key id=77)" in error and "LSN" in error, error
    assert "10000-01-01" in error and "9999-12-31" in error
    assert not any("CAST(77 AS int)" in s for s in fake.statements())
    assert slot_info(source_db, NAME) is not None  # kept, so nothing is lost while it is fixed
