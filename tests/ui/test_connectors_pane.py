"""The Connectors tab driven by the keyboard: the selected row's trace, and the cursor across polls.

The detail reader returns fixed status documents (the Connect side is exercised against a real
worker in the integration tests); each test changes what it returns and polls again.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, Static, TextArea

from cdc_tui.services.context import AppContext
from cdc_tui.ui.app import CdcTuiApp
from cdc_tui.ui.screens.help import HelpScreen
from cdc_tui.ui.screens.pipeline import Detail, PipelineScreen
from cdc_tui.ui.widgets.connectors_pane import ConnectorsPane, task_key
from tests.ui.test_snapshots import (  # noqa: F401 - the fixture is used by name
    BOARD,
    CONNECT_DETAIL,
    DETAIL,
    UNREACHABLE_DETAIL,
    connector,
    ctx,
)

SINK = "cdc-tui.orders.6753a1b2g1.sink"
FAILED_TASK = task_key(SINK, 0)


class Reader:
    """Returns whatever detail the test last set, like a status that changes between polls."""

    def __init__(self, detail: Detail) -> None:
        self.detail = detail

    def __call__(self, name: str, after_log_id: int) -> Detail:
        return self.detail


def with_connectors(*connectors: dict[str, Any]) -> Detail:
    return Detail(document={**CONNECT_DETAIL.document, "connectors": list(connectors)})


async def open_connectors(app: CdcTuiApp, pilot: Any, reader: Reader) -> PipelineScreen:
    """The pipeline screen of orders on its Connectors tab, the table focused."""
    await pilot.pause()
    # A refresh far away: the test decides when the screen polls again.
    screen = PipelineScreen(app.ctx, "orders", refresh_s=3600, reader=reader)
    await app.push_screen(screen)
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press("5", "tab")
    return screen


async def poll_again(app: CdcTuiApp, pilot: Any, screen: PipelineScreen) -> None:
    screen.poll()
    await app.workers.wait_for_complete()
    await pilot.pause()


def cursor_key(table: DataTable[Any]) -> str | None:
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


def trace_text(screen: PipelineScreen) -> str:
    return screen.query_one("#connector-trace", TextArea).text


def drawn(app: CdcTuiApp) -> str:
    """The screen's text as drawn."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def test_the_failed_task_shows_its_trace_and_keeps_the_cursor_across_polls(
    ctx: AppContext,  # noqa: F811
) -> None:
    reader = Reader(CONNECT_DETAIL)
    app = CdcTuiApp(ctx, reader=lambda: BOARD, detail_reader=reader)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_connectors(app, pilot, reader)
        table = screen.query_one("#connectors-table", DataTable)
        assert app.focused is table
        assert trace_text(screen) == "no trace"  # the source connector has none
        await pilot.press("down", "down", "down")
        assert cursor_key(table) == FAILED_TASK
        failed = table.get_row(FAILED_TASK)[2]
        assert str(failed) == "FAILED"
        assert failed.style.bold  # the error colour, and bold for NO_COLOR
        trace = trace_text(screen)
        assert 'relation "shop.customers" does not exist' in trace
        # Shown as written: the "[...]" of the jar names is not read as markup.
        assert "~[connect-runtime-3.7.0.jar:?]" in trace
        assert "~[connect-runtime-3.7.0.jar:?]" in drawn(app)

        # The states change (the task was restarted and runs): updated in place.
        reader.detail = with_connectors(
            connector("source", "PAUSED", ("PAUSED", None)),
            connector("sink", "RUNNING", ("RUNNING", None)),
        )
        await poll_again(app, pilot, screen)
        assert cursor_key(table) == FAILED_TASK
        assert str(table.get_row(FAILED_TASK)[2]) == "RUNNING"
        assert str(table.get_row("cdc-tui.orders.6753a1b2g1.source")[2]) == "PAUSED"
        assert trace_text(screen) == "no trace"

        # A task comes and the rows are laid out again: the cursor stays on its row's key.
        reader.detail = with_connectors(
            connector("source", "RUNNING", ("RUNNING", None), ("RUNNING", None)),
            connector("sink", "RUNNING", ("FAILED", "boom [again]")),
        )
        await poll_again(app, pilot, screen)
        assert table.row_count == 5
        assert cursor_key(table) == FAILED_TASK
        assert trace_text(screen) == "boom [again]"


async def test_c_copies_the_selected_trace(
    ctx: AppContext,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = Reader(CONNECT_DETAIL)
    app = CdcTuiApp(ctx, reader=lambda: BOARD, detail_reader=reader)
    copied: list[str] = []
    monkeypatch.setattr(app, "copy_to_clipboard", copied.append)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_connectors(app, pilot, reader)
        await pilot.press("c")  # the source connector: nothing to copy
        assert copied == []
        await pilot.press("down", "down", "down", "c")
        assert len(copied) == 1
        assert copied[0].startswith(f"{SINK} task 0: org.apache.kafka.connect.errors.")
        assert 'relation "shop.customers" does not exist' in copied[0]


async def test_connect_unreachable_is_a_warning(ctx: AppContext) -> None:  # noqa: F811
    reader = Reader(UNREACHABLE_DETAIL)
    app = CdcTuiApp(ctx, reader=lambda: BOARD, detail_reader=reader)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_connectors(app, pilot, reader)
        status = screen.query_one("#connect-status", Static)
        assert status.has_class("-warning")
        assert "did not answer GET /connectors (ConnectError)" in str(status.content)
        assert screen.query_one("#connectors-table", DataTable).row_count == 0
        assert not screen.query_one("#connector-trace", TextArea).display


async def test_without_connect_in_the_status_there_is_no_kafka_connect(
    ctx: AppContext,  # noqa: F811
) -> None:
    """Until the status carries `connect`, a kafka_connect pipeline says Connect is unknown."""
    document = {k: v for k, v in CONNECT_DETAIL.document.items() if k != "connect"}
    reader = Reader(Detail(document={**document, "connectors": []}))
    app = CdcTuiApp(ctx, reader=lambda: BOARD, detail_reader=reader)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_connectors(app, pilot, reader)
        status = screen.query_one("#connect-status", Static)
        assert str(status.content).startswith("Kafka Connect  unknown")


async def test_the_embedded_engine_has_no_connectors_and_no_copy_key(
    ctx: AppContext,  # noqa: F811
) -> None:
    reader = Reader(DETAIL)
    app = CdcTuiApp(ctx, reader=lambda: BOARD, detail_reader=reader)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_connectors(app, pilot, reader)
        status = screen.query_one("#connect-status", Static)
        assert str(status.content).startswith("The embedded engine has no connectors")
        assert not screen.query_one(ConnectorsPane).shows_traces
        assert "copy_trace" not in {b.binding.action for b in screen.active_bindings.values()}
        assert not screen.query_one("#connectors-table", DataTable).display


async def test_help_lists_the_tab_keys_and_c_on_the_connectors_tab(
    ctx: AppContext,  # noqa: F811
) -> None:
    reader = Reader(CONNECT_DETAIL)
    app = CdcTuiApp(ctx, reader=lambda: BOARD, detail_reader=reader)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_connectors(app, pilot, reader)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        ids = {row[2]: row[0] for row in app.screen.rows}
        assert ids["pipeline.tab.slot"] == "4"
        assert ids["pipeline.tab.connectors"] == "5"
        assert ids["pipeline.tab.history"] == "6"
        assert ids["connectors.copy_trace"] == "c"
        await pilot.press("escape", "1", "question_mark")
        assert "connectors.copy_trace" not in {row[2] for row in app.screen.rows}
