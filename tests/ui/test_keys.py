"""Key remapping by binding id from `[console.keys]`, and the help screen that lists the keys.

The board reader returns a fixed Board (no clusters needed to look at bindings); the actions
themselves are exercised against real clusters in tests/integration/test_console.py (and the
per-table resync against a real Kafka Connect in tests/integration/test_console_kafka.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdc_tui.services.context import AppContext, build_context
from cdc_tui.ui.app import CdcTuiApp
from cdc_tui.ui.screens.confirm import ConfirmModal
from cdc_tui.ui.screens.error import ErrorModal
from cdc_tui.ui.screens.help import HelpScreen
from cdc_tui.ui.screens.pipeline import Detail, PipelineScreen
from tests.ui.test_snapshots import BOARD, CONNECT_DETAIL, DETAIL


async def test_a_remapped_binding_moves_to_its_new_key_and_help_shows_it(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'metadata_url = "sqlite:///{tmp_path / "m.db"}"\n\n'
        '[console.keys]\n"pipeline.validate" = "ctrl+t"\n"app.help" = "f1"\n'
    )
    ctx = build_context(config, environ={})
    try:
        app = CdcTuiApp(ctx, reader=lambda: BOARD)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("question_mark")  # no longer bound
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("f1")
            assert isinstance(app.screen, HelpScreen)
            keys = {row[2]: row[0] for row in app.screen.rows}
            assert keys["pipeline.validate"] == "^t"
            assert keys["pipeline.start"] == "s"
    finally:
        ctx.close()


# -- ctrl+r on the pipeline screen: resync the selected table (kafka_connect only) ----------------


@pytest.fixture
def empty_ctx(tmp_path: Path) -> Iterator[AppContext]:
    """A metadata DB without pipelines: the screens show fixed details, actions find nothing."""
    config = tmp_path / "config.toml"
    config.write_text(f'metadata_url = "sqlite:///{tmp_path / "m.db"}"\n')
    context = build_context(config, environ={})
    yield context
    context.close()


async def open_pipeline(app: CdcTuiApp, pilot: Any, detail: Detail) -> PipelineScreen:
    """A pipeline screen showing `detail`, its first poll landed (refreshed only on demand)."""
    await pilot.pause()
    screen = PipelineScreen(app.ctx, str(detail.document["name"]), refresh_s=3600,
                            reader=lambda name, after: detail)  # fmt: skip
    await app.push_screen(screen)
    await app.workers.wait_for_complete()
    await pilot.pause()
    return screen


def offered(screen: PipelineScreen) -> set[str]:
    return {b.binding.action for b in screen.active_bindings.values()}


async def test_ctrl_r_is_not_offered_on_an_embedded_pipeline(empty_ctx: AppContext) -> None:
    app = CdcTuiApp(empty_ctx, reader=lambda: BOARD)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_pipeline(app, pilot, DETAIL)  # billing: embedded
        await pilot.press("2", "tab")
        assert screen.active_tab == "tables"
        assert "resync_table" not in offered(screen)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.screen is screen  # no confirmation: nothing to confirm
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "pipeline.resync_table" not in {row[2] for row in app.screen.rows}


async def test_ctrl_r_is_not_offered_in_read_only_mode(empty_ctx: AppContext) -> None:
    app = CdcTuiApp(empty_ctx, read_only=True, reader=lambda: BOARD)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_pipeline(app, pilot, CONNECT_DETAIL)
        await pilot.press("2", "tab")
        assert "resync_table" not in offered(screen)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.screen is screen


async def test_ctrl_r_on_a_kafka_table_asks_then_shows_the_error_with_its_title(
    empty_ctx: AppContext,
) -> None:
    app = CdcTuiApp(empty_ctx, reader=lambda: BOARD)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_pipeline(app, pilot, CONNECT_DETAIL)
        assert "resync_table" not in offered(screen)  # the Overview tab
        await pilot.press("2", "tab", "down")  # the second table: shop."Order Items"
        assert "resync_table" in offered(screen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert {row[2]: row[0] for row in app.screen.rows}["pipeline.resync_table"] == "^r"
        await pilot.press("escape", "ctrl+r")
        assert isinstance(app.screen, ConfirmModal)
        assert 'shop."Order Items" of orders' in app.screen.question
        await pilot.press("n")
        assert app.screen is screen
        await pilot.press("ctrl+r", "y")
        # The fixed metadata DB has no pipeline "orders": the service's error, with a title.
        await app.workers.wait_for_complete()
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ErrorModal)
        assert modal.error_title == 'resync shop."Order Items" of orders: Not found'
        assert "orders" in modal.message
