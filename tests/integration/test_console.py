"""The console driven by Pilot against real clusters: every key asserts what the metadata DB,
the source and the target hold afterwards, not only what the screen shows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Log, Select, SelectionList, Static

from cdc_tui.services.context import AppContext, build_context
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.ui.app import CdcTuiApp
from cdc_tui.ui.screens.confirm import ConfirmModal, TypeNameModal
from cdc_tui.ui.screens.error import ErrorModal, ReportModal
from cdc_tui.ui.screens.help import HelpScreen
from cdc_tui.ui.screens.new_pipeline import NewPipelineScreen
from cdc_tui.ui.screens.pipeline import PipelineScreen
from cdc_tui.ui.screens.pipelines import COLUMN_INDEX, PipelinesScreen
from cdc_tui.ui.widgets.board_table import BoardTable
from tests.integration.runner_support import (
    Cli,
    create_pipeline,
    pipeline_cli,
    source_objects,
    wait_converged,
    wait_status,
)
from tests.pg import Database

NAME = "orders"
TABLES = ("shop.customers",)
SIZE = (120, 40)


@pytest.fixture
def cli(tmp_path: Path, source_db: Database, target_db: Database) -> Iterator[Cli]:
    with pipeline_cli(tmp_path, source_db, target_db, NAME) as c:
        create_pipeline(c, NAME, *TABLES)
        yield c


@pytest.fixture
def ctx(cli: Cli) -> Iterator[AppContext]:
    context = build_context(cli.env.config, environ=cli.environ(), actor="console:test")
    yield context
    context.close()


def stored(ctx: AppContext) -> str:
    return str(PipelineRepository(ctx.store).get(NAME).status)


async def until(
    pilot: Pilot[None], check: Callable[[], bool], what: str, timeout: float = 90
) -> None:
    """Let the app run until `check()` holds (the console polls in the background)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.2)


def table_of(app: CdcTuiApp) -> BoardTable:
    screen = app.screen
    assert isinstance(screen, PipelinesScreen)
    return screen.query_one(BoardTable)


def row_status(app: CdcTuiApp) -> str | None:
    table = table_of(app)
    if NAME not in table.keys:
        return None
    return table.row(NAME)[COLUMN_INDEX["status"]]


async def test_start_then_stop_from_the_keyboard(
    ctx: AppContext, cli: Cli, source_db: Database, target_db: Database
) -> None:
    app = CdcTuiApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_status(app) == "STOPPED", "the pipeline row")
        await pilot.press("s")
        await until(pilot, lambda: stored(ctx) == "RUNNING", "RUNNING in the metadata DB")
        await until(pilot, lambda: row_status(app) == "RUNNING", "RUNNING on screen")
        source_db.execute("INSERT INTO shop.customers VALUES (9001, 'from the console', NULL)")
        wait_converged(source_db, target_db, [("shop", "customers", ["id"])])
        await pilot.press("x")
        await until(pilot, lambda: stored(ctx) == "STOPPED", "STOPPED in the metadata DB")
    assert cli.status(NAME)["runner"] is None or not cli.status(NAME)["runner"].get("alive")


async def test_quitting_the_console_leaves_the_pipeline_replicating(
    ctx: AppContext, cli: Cli, source_db: Database, target_db: Database
) -> None:
    app = CdcTuiApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_status(app) == "STOPPED", "the pipeline row")
        await pilot.press("s")
        await until(pilot, lambda: stored(ctx) == "RUNNING", "RUNNING in the metadata DB")
        await pilot.press("q")
    source_db.execute("INSERT INTO shop.customers VALUES (9002, 'after quitting', NULL)")
    wait_converged(source_db, target_db, [("shop", "customers", ["id"])])
    assert cli.status(NAME)["cdc_status"] == "RUNNING"


async def test_read_only_hides_and_refuses_every_action(ctx: AppContext, cli: Cli) -> None:
    app = CdcTuiApp(ctx, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_status(app) == "STOPPED", "the pipeline row")
        shown = {b.binding.action for b in app.screen.active_bindings.values()}
        await pilot.press("s", "x", "R", "d")
        await pilot.pause(1.0)
        assert not isinstance(app.screen, TypeNameModal)
    assert not {"start", "stop", "restart", "resync", "drop"} & shown
    assert stored(ctx) == "STOPPED"
    assert cli.status(NAME)["runner"] is None


async def test_drop_needs_the_name_typed_and_then_leaves_nothing(
    ctx: AppContext, cli: Cli, source_db: Database
) -> None:
    cli.run("start", NAME, "--wait", "running", "--timeout", "120")
    assert source_objects(source_db, NAME) == (1, 1)
    app = CdcTuiApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_status(app) == "RUNNING", "the pipeline row")
        await pilot.press("d")
        assert isinstance(app.screen, TypeNameModal)
        await pilot.press(*"order", "enter")  # a wrong name does nothing
        await pilot.pause(0.5)
        assert PipelineRepository(ctx.store).find(NAME) is not None
        await pilot.press("d")
        await pilot.press(*NAME, "enter")
        await until(
            pilot, lambda: PipelineRepository(ctx.store).find(NAME) is None, "the pipeline gone"
        )
        await until(pilot, lambda: row_status(app) is None, "the row gone")
    assert source_objects(source_db, NAME) == (0, 0)


async def test_a_failed_action_opens_the_error_modal_with_its_title(
    tmp_path: Path, cli: Cli
) -> None:
    environ = {k: v for k, v in cli.environ().items() if k != "CDC_TUI_SECRET_SRC"}
    context = build_context(cli.env.config, environ=environ, actor="console:test")
    try:
        app = CdcTuiApp(context)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: row_status(app) == "STOPPED", "the pipeline row")
            await pilot.press("s")
            await until(pilot, lambda: isinstance(app.screen, ErrorModal), "the error modal")
            modal = app.screen
            assert isinstance(modal, ErrorModal)
            assert "start orders" in modal.error_title
            assert "CDC_TUI_SECRET_SRC" in modal.message
            await pilot.press("escape")
            assert isinstance(app.screen, PipelinesScreen)
        assert stored(context) == "STOPPED"
    finally:
        context.close()


async def test_help_lists_every_binding_with_its_id_and_filter_narrows(
    ctx: AppContext, cli: Cli
) -> None:
    cli.run("pipeline", "create", "other", "--source", "src", "--target", "tgt",
            "--tables", "shop.customers")  # fmt: skip
    app = CdcTuiApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table_of(app).row_count == 2, "two rows")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        ids = {row[2] for row in app.screen.rows}
        assert {"pipeline.start", "pipeline.stop", "pipeline.drop", "app.quit"} <= ids
        await pilot.press("escape")
        await pilot.press("slash", *"oth")
        await until(pilot, lambda: table_of(app).row_count == 1, "the filtered row")
        assert table_of(app).keys == ["other"]
        await pilot.press("escape")
        await until(pilot, lambda: table_of(app).row_count == 2, "both rows again")


async def test_pipeline_screen_shows_overview_tables_logs_slot_and_history(
    ctx: AppContext, cli: Cli
) -> None:
    cli.run("start", NAME, "--wait", "running", "--timeout", "120")
    app = CdcTuiApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_status(app) == "RUNNING", "the pipeline row")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PipelineScreen), "the pipeline screen")
        screen = app.screen
        assert isinstance(screen, PipelineScreen)

        def overview() -> str:
            return str(screen.query_one("#overview-text", Static).content)

        await until(pilot, lambda: "Handoff LSN" in overview(), "the overview")
        handoff = cli.status(NAME)["full_load"]["lsn"]
        assert handoff and handoff in overview()
        record = PipelineRepository(ctx.store).get(NAME)
        assert "Settings" in overview() and record.slot_name in overview()
        assert "shop.customers" in overview()
        step1 = screen.query_one("#log-1", Log)
        await until(pilot, lambda: any("Step 1" in line for line in step1.lines), "Step 1 log")
        tables = screen.query_one("#tables-table", DataTable)
        assert str(tables.get_cell("shop.customers", "state")) == "COMPLETED"
        slot = screen.query_one("#slot-table", DataTable)
        fields = {
            str(slot.get_row_at(i)[0]): str(slot.get_row_at(i)[1]) for i in range(slot.row_count)
        }
        assert fields["exists"] == "True" and fields["active"] == "True"
        await pilot.press("slash", *"copied")
        await until(pilot, lambda: step1.line_count > 0, "the searched lines")
        assert all("copied" in line for line in step1.lines)
        assert screen.query_one("#log-0", Log).line_count == 0  # Step 0 never says "copied"
        await pilot.press("escape")  # closes the search and shows every line again
        assert any("Step 1: full load complete" in line for line in step1.lines)
        assert isinstance(app.screen, PipelineScreen)
        history = screen.query_one("#history-table", DataTable)
        reasons = [str(history.get_row_at(i)[4]) for i in range(history.row_count)]
        assert "Step 1 completed" in reasons
        await pilot.press("escape")
        assert isinstance(app.screen, PipelinesScreen)


async def test_validate_shows_the_comparison_and_reads_only(
    ctx: AppContext, cli: Cli, source_db: Database, target_db: Database
) -> None:
    cli.run("start", NAME, "--wait", "running", "--timeout", "120")
    app = CdcTuiApp(ctx, read_only=True)  # validating changes nothing, so read-only allows it
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_status(app) == "RUNNING", "the pipeline row")
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ErrorModal), "the validation result")
        modal = app.screen
        assert isinstance(modal, ReportModal)
        assert "equal" in modal.error_title
        assert "shop.customers" in modal.message
        await pilot.press("escape")
        cli.run("stop", NAME, "--wait", "--timeout", "60")
        target_db.execute("DELETE FROM shop.customers WHERE id = 1")  # the target now differs
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ErrorModal), "the second result")
        modal = app.screen
        assert not isinstance(modal, ReportModal)
        assert "DIFFERENT" in modal.error_title


async def test_new_pipeline_form_checks_then_saves(
    ctx: AppContext, cli: Cli, source_db: Database
) -> None:
    app = CdcTuiApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_status(app) == "STOPPED", "the pipeline row")
        await pilot.press("n")
        assert isinstance(app.screen, NewPipelineScreen)
        form = app.screen
        form.query_one("#name", Input).value = "fresh"
        form.query_one("#source", Select).value = "src"
        form.query_one("#target", Select).value = "tgt"
        tables = form.query_one("#tables", SelectionList)
        await until(pilot, lambda: tables.option_count > 0, "the source catalog")
        labels = [str(tables.get_option_at_index(i).prompt) for i in range(tables.option_count)]
        assert any("shop.customers" in label and "key: id" in label for label in labels)
        tables.select("shop.customers")
        await pilot.press("ctrl+s")  # not checked yet: refused
        await pilot.pause(0.5)
        assert PipelineRepository(ctx.store).find("fresh") is None
        await pilot.press("ctrl+t")
        findings = form.query_one("#findings", DataTable)
        await until(pilot, lambda: findings.row_count > 0, "the findings")
        assert source_objects(source_db, "fresh") == (0, 0)  # checking creates nothing
        assert PipelineRepository(ctx.store).find("fresh") is None
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, PipelinesScreen), "back home")
        await until(pilot, lambda: table_of(app).row_count == 2, "the new row")
    stored_tables = [str(t.table) for t in PipelineRepository(ctx.store).get("fresh").tables]
    assert stored_tables == ["shop.customers"]


async def _edit_tables(app: CdcTuiApp, pilot: Pilot[None], add: str) -> NewPipelineScreen:
    """`e` on the pipeline, wait for its tables to be preselected, add one, check, save."""
    await pilot.press("e")
    await until(pilot, lambda: isinstance(app.screen, NewPipelineScreen), "the edit form")
    form = app.screen
    assert isinstance(form, NewPipelineScreen)
    name = form.query_one("#name", Input)
    assert name.value == NAME and name.disabled
    tables = form.query_one("#tables", SelectionList)
    await until(pilot, lambda: list(tables.selected) == list(TABLES), "its tables preselected")
    tables.select(add)
    await pilot.press("ctrl+t")
    findings = form.query_one("#findings", DataTable)
    await until(pilot, lambda: findings.row_count > 0, "the findings")
    await pilot.press("ctrl+s")
    return form


async def test_edit_a_pipeline_that_never_ran_touches_no_server(
    ctx: AppContext, cli: Cli, source_db: Database
) -> None:
    app = CdcTuiApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_status(app) == "STOPPED", "the pipeline row")
        await _edit_tables(app, pilot, 'shop."Order Items"')
        await until(pilot, lambda: isinstance(app.screen, PipelinesScreen), "back home")
    record = PipelineRepository(ctx.store).get(NAME)
    assert [str(t.table) for t in record.tables] == ["shop.customers", 'shop."Order Items"']
    assert any(e.reason.startswith("edited:") for e in PipelineRepository(ctx.store).events(NAME))
    assert source_objects(source_db, NAME) == (0, 0)


async def test_edit_is_refused_while_running_then_resyncs_after_a_stop(
    ctx: AppContext, cli: Cli, source_db: Database, target_db: Database
) -> None:
    cli.run("start", NAME, "--wait", "running", "--timeout", "120")
    wait_status(cli, NAME, lambda d: d["cdc_status"] == "RUNNING", 120, "CDC running")
    app = CdcTuiApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_status(app) == "RUNNING", "the running row")
        await pilot.press("e")  # refused: the form does not open
        await pilot.pause(0.5)
        assert isinstance(app.screen, PipelinesScreen)
        await pilot.press("x")
        await until(pilot, lambda: stored(ctx) == "STOPPED", "stopped")
        await until(pilot, lambda: row_status(app) == "STOPPED", "the stopped row")
        source_db.execute(
            "INSERT INTO shop.\"Order Items\" VALUES (1, 1, 'sku-1'), (1, 2, 'sku-2')"
        )
        await _edit_tables(app, pilot, 'shop."Order Items"')
        # It has copied data: saving asks before resyncing.
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the resync question")
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, PipelinesScreen), "back home")
    wait_status(cli, NAME, lambda d: d["cdc_status"] == "RUNNING", 120, "CDC running again")
    source_db.execute("INSERT INTO shop.\"Order Items\" VALUES (2, 1, 'after the edit')")
    source_db.execute("UPDATE shop.customers SET email = 'x@example' WHERE id <= 10")
    both = [("shop", "customers", ["id"]), ("shop", "Order Items", ["order_id", "line"])]
    wait_converged(source_db, target_db, both)
    assert source_objects(source_db, NAME) == (1, 1)
    published = source_db.scalar(
        "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY tablename) "
        "FROM pg_publication_tables WHERE pubname = %s", (f"cdc_tui_{NAME}",))  # fmt: skip
    assert published == "shop.Order Items,shop.customers"
