"""The console's board against real clusters: a running pipeline, dead sources, 200 pipelines."""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import Engine, Mode, PipelineStatus, StatusField
from cdc_tui.services.board import SourceState, read_board
from cdc_tui.services.context import AppContext, build_context
from cdc_tui.sources.postgres.slots import read_slot, read_slots
from cdc_tui.store.leases import LeaseRepository
from cdc_tui.store.repositories import PipelineRepository
from tests.integration.cli_env import make_cli_env
from tests.integration.runner_support import Cli, create_pipeline, start_running
from tests.pg import Database

pytestmark = pytest.mark.integration

TIMEOUT_S = 3.0
HUNG_SOURCES = 4


@pytest.fixture
def cli(
    tmp_path: Path, metadata_url: str, source_db: Database, target_db: Database
) -> Iterator[Cli]:
    env = make_cli_env(tmp_path, metadata_url, source_db, target_db)
    c = Cli(env, tmp_path / "home")
    yield c
    c.run("stop", "orders", "--wait", "--timeout", "60", check=False)


def _context(cli: Cli) -> AppContext:
    return build_context(cli.env.config, environ=cli.env.env)


def test_running_pipeline_row_has_its_slot_and_the_status_health(cli: Cli) -> None:
    create_pipeline(cli, "orders", "shop.customers")
    start_running(cli, "orders")
    ctx = _context(cli)
    try:
        board = read_board(ctx, timeout_s=TIMEOUT_S)
    finally:
        ctx.close()
    doc = cli.status("orders")

    assert board.sources == {"src": SourceState("src", True, None)}
    (row,) = board.rows
    assert (row.name, row.status, row.cdc_status, row.source_key) == (
        "orders", "RUNNING", "RUNNING", "src",
    )  # fmt: skip
    assert row.slot_active is True
    assert row.lag_bytes is not None and row.lag_bytes >= 0
    assert row.retained_bytes is not None and row.retained_bytes >= row.lag_bytes
    assert row.wal_status == doc["slot"]["wal_status"]
    assert row.full_load_percent == 100.0
    assert row.stale is False
    assert (row.health, list(row.health_reasons)) == (doc["health"], doc["health_reasons"])
    assert row.health == "healthy"
    assert board.taken_at.tzinfo is not None


def test_unreachable_sources_are_reported_and_do_not_hold_up_the_others(
    cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    # A closed port refuses at once; a socket that listens but never answers makes libpq wait
    # its whole connect_timeout. Four of those probed one after another would take 12 s.
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(HUNG_SOURCES)]
    dead_pw, hung_pw = "dead-" + secrets.token_hex(8), "hung-" + secrets.token_hex(8)
    config = (
        '\n[connections.dead]\nurl = "postgresql://cdc_reader@127.0.0.1:1/nowhere"\n'
        'password_env = "CDC_TUI_SECRET_DEAD"\n'
    )
    for i, listener in enumerate(listeners):
        port = listener.getsockname()[1]
        config += (
            f'\n[connections.hung{i}]\nurl = "postgresql://cdc_reader@127.0.0.1:{port}/x"\n'
            'password_env = "CDC_TUI_SECRET_HUNG"\n'
        )
    with cli.env.config.open("a") as fh:
        fh.write(config)
    cli.env.env.update(CDC_TUI_SECRET_DEAD=dead_pw, CDC_TUI_SECRET_HUNG=hung_pw)
    create_pipeline(cli, "orders", "shop.customers")
    create_pipeline(cli, "idle", 'shop."Order Items"')
    sources = {"legacy": "dead", "legacy2": "dead"}
    sources.update({f"frozen{i}": f"hung{i}" for i in range(HUNG_SOURCES)})
    for name, source in sources.items():
        cli.run("pipeline", "create", name, "--source", source, "--target", "tgt",
                "--tables", "shop.customers")  # fmt: skip
    start_running(cli, "orders")
    ctx = _context(cli)
    try:
        with caplog.at_level(logging.WARNING, logger="cdc_tui.services.board"):
            started = time.monotonic()
            board = read_board(ctx, timeout_s=TIMEOUT_S)
            elapsed = time.monotonic() - started
    finally:
        ctx.close()
        for listener in listeners:
            listener.close()

    assert elapsed < 10, f"read_board took {elapsed:.1f} s"
    assert set(board.sources) == {"src", *sources.values()}
    assert board.sources["src"] == SourceState("src", True, None)
    dead = board.sources["dead"]
    assert not dead.reachable
    assert dead.error is not None and dead.error.startswith("source unreachable: ")
    assert "refused" in dead.error.lower()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for key in ("dead", *(f"hung{i}" for i in range(HUNG_SOURCES))):
        state = board.sources[key]
        assert not state.reachable, key
        assert state.error is not None and state.error.startswith("source unreachable: "), key
        assert key in logged
    for text in [logged, *(s.error or "" for s in board.sources.values())]:
        assert dead_pw not in text and hung_pw not in text
        assert cli.env.source_password not in text

    rows = {r.name: r for r in board.rows}
    assert [r.name for r in board.rows] == sorted(["orders", "idle", *sources])
    for name, source in sources.items():
        row = rows[name]
        assert (row.stale, row.source_key) == (True, source), name
        assert (row.slot_active, row.lag_bytes, row.retained_bytes, row.wal_status) == (
            None, None, None, None,
        )  # fmt: skip
    # The healthy source was read in the same poll: its running slot and its missing one.
    assert rows["orders"].stale is False and rows["orders"].slot_active is True
    assert rows["orders"].lag_bytes is not None
    assert rows["idle"].stale is False and rows["idle"].slot_active is None
    assert rows["legacy"].health == cli.status("legacy")["health"]
    assert rows["orders"].health == cli.status("orders")["health"] == "healthy"


def test_read_slots_matches_read_slot_in_one_query(source_db: Database) -> None:
    names = ["cdc_tui_board_a", "cdc_tui_board_b"]
    with source_db.admin() as conn:
        for name in names:
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))
        try:
            assert read_slots(conn, []) == {}
            found = read_slots(conn, [*names, "cdc_tui_board_missing", names[0]])
            assert sorted(found) == names
            for name in names:
                single = read_slot(conn, name)
                assert single is not None and single.name == name
                assert found[name].restart_lsn == single.restart_lsn
                assert found[name].confirmed_flush_lsn == single.confirmed_flush_lsn
                assert (found[name].active, found[name].wal_status) == (False, "reserved")
            assert read_slot(conn, "cdc_tui_board_missing") is None
        finally:
            for name in names:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))


def test_two_hundred_pipelines_in_a_bounded_number_of_queries(
    tmp_path: Path, metadata_url: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'metadata_url = "{metadata_url}"\n')
    ctx = build_context(config, environ={})
    try:
        repo = PipelineRepository(ctx.store)
        source = ConnectionRef("postgresql://cdc@127.0.0.1:1/shop", "postgresql", "shop")
        target = ConnectionRef("postgresql://cdc@127.0.0.1:1/dw", "postgresql", "dw")
        names = [f"p{i:03d}" for i in range(200)]
        for name in random.Random(7).sample(names, len(names)):
            repo.create(
                name=name, engine=Engine.EMBEDDED, mode=Mode.FULL_LOAD_AND_CDC, source=source,
                target=target, tables=[TableRef("public", "t")], target_schema=None,
                connect_url=None, actor="test",
            )  # fmt: skip
        # Two RUNNING pipelines, only one with a live lease: health must come from the leases.
        for name in ("p010", "p020"):
            for status in (PipelineStatus.STARTING, PipelineStatus.RUNNING):
                repo.transition(name, StatusField.STATUS, status, reason="test", actor="test")
        LeaseRepository(ctx.store).acquire(
            "p010", owner="test", pid=os.getpid(), host=socket.gethostname(), ttl_s=60
        )

        statements: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
            statements.append(statement)

        event.listen(ctx.store.engine, "before_cursor_execute", count)
        try:
            board = read_board(ctx, probe_sources=False)
        finally:
            event.remove(ctx.store.engine, "before_cursor_execute", count)
    finally:
        ctx.close()

    assert [r.name for r in board.rows] == names
    assert board.sources == {}
    assert not any(r.stale for r in board.rows)
    assert {r.source_key for r in board.rows} == {"shop"}
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 5, selects
    rows = {r.name: r for r in board.rows}
    assert rows["p010"].health == "healthy"
    assert rows["p020"].health == "degraded"
    assert rows["p020"].health_reasons == ("the runner's heartbeat is stale",)
    assert all(r.slot_active is None and r.lag_bytes is None for r in board.rows)
