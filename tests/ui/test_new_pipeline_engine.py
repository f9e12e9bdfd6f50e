"""The new-pipeline form's Engine select: kafka_connect shows the Kafka Connect REST URL field
right after it (keyboard only) and the draft carries the URL; the edit form of a kafka_connect
pipeline shows its URL read-only.

The source catalog is a stand-in (the hosts do not exist); tests/integration/test_drafts.py
checks and saves kafka_connect drafts against a real Connect worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Select

from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import Engine
from cdc_tui.services.context import AppContext, build_context
from cdc_tui.services.drafts import CatalogTable, Draft, save_draft
from cdc_tui.ui.app import CdcTuiApp
from cdc_tui.ui.screens.new_pipeline import NewPipelineScreen
from tests.ui.test_snapshots import BOARD

CUSTOMERS = TableRef("shop", "customers")
URL = "http://connect.example.com:8083"


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppContext]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'metadata_url = "sqlite:///{tmp_path / "m.db"}"\n\n'
        '[connections.src]\nurl = "postgresql://cdc_reader@db1.example:5432/shop"\n\n'
        '[connections.tgt]\nurl = "postgresql://cdc_writer@dw.example:5432/mirror"\n'
    )
    from cdc_tui.ui.screens import new_pipeline

    def catalog(ctx: AppContext, source: str, **_: Any) -> list[CatalogTable]:
        return [CatalogTable(CUSTOMERS, ("id",), "default", 100, False)]

    monkeypatch.setattr(new_pipeline, "source_catalog", catalog)
    context = build_context(config, environ={})
    yield context
    context.close()


async def open_form(app: CdcTuiApp, pilot: Any) -> NewPipelineScreen:
    await pilot.pause()
    await pilot.press("n")
    await pilot.pause()
    assert isinstance(app.screen, NewPipelineScreen)
    return app.screen


async def pick(pilot: Any, select: Select[Any], *moves: str) -> None:
    """Focus a Select, open it with enter, move its highlight (from the current value), choose
    with enter."""
    select.focus()
    await pilot.press("enter", *moves, "enter")
    await pilot.pause()


async def test_kafka_connect_shows_the_url_after_the_engine_and_the_draft_carries_it(
    ctx: AppContext,
) -> None:
    app = CdcTuiApp(ctx, reader=lambda: BOARD)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        url = form.query_one("#connect-url", Input)
        engine = form.query_one("#engine", Select)
        # Embedded by default: no URL field, and Tab goes from the engine to the target schema.
        assert engine.value == Engine.EMBEDDED
        assert not url.display
        engine.focus()
        await pilot.press("tab")
        assert app.focused is not None and app.focused.id == "target-schema"

        await pick(pilot, engine, "down")
        assert engine.value == Engine.KAFKA_CONNECT
        assert url.display and not url.disabled
        assert form.query_one("#connect-url-label").display
        engine.focus()
        await pilot.press("tab")
        assert app.focused is url
        await pilot.press(*URL)

        # The rest of the form, by keyboard: name, source, target, one table.
        form.query_one("#name", Input).focus()
        await pilot.press(*"orders")
        # The prompt, src, tgt.
        await pick(pilot, form.query_one("#source", Select), "down")
        await pick(pilot, form.query_one("#target", Select), "down", "down")
        await app.workers.wait_for_complete()
        await pilot.pause()
        form.query_one("#tables").focus()
        await pilot.press("down", "space")  # highlight the only table, select it
        await pilot.pause()

        assert form.draft() == Draft(
            "orders", "src", "tgt", (CUSTOMERS,), engine=Engine.KAFKA_CONNECT, connect_url=URL
        )

        # Back to embedded: the field hides, and the draft leaves the URL out.
        await pick(pilot, engine, "up")
        assert engine.value == Engine.EMBEDDED
        assert not url.display
        draft = form.draft()
        assert draft is not None
        assert (draft.engine, draft.connect_url) == (Engine.EMBEDDED, None)


async def test_the_edit_form_of_a_kafka_pipeline_keeps_its_engine_and_url_read_only(
    ctx: AppContext,
) -> None:
    record = save_draft(
        ctx,
        Draft("orders", "src", "tgt", (CUSTOMERS,), engine=Engine.KAFKA_CONNECT, connect_url=URL),
    )
    app = CdcTuiApp(ctx, reader=lambda: BOARD)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        form = NewPipelineScreen(ctx, editing=record)
        await app.push_screen(form)
        await app.workers.wait_for_complete()
        await pilot.pause()
        url = form.query_one("#connect-url", Input)
        engine = form.query_one("#engine", Select)
        assert (engine.value, engine.disabled) == (Engine.KAFKA_CONNECT, True)
        assert url.display and url.disabled
        assert url.value == URL
        draft = form.draft()
        assert draft is not None
        assert (draft.engine, draft.connect_url, draft.tables) == (
            Engine.KAFKA_CONNECT,
            URL,
            (CUSTOMERS,),
        )
