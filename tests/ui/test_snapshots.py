"""Snapshots of the console at 80x24 and 120x40 with fixed data and no clock.

The board reader here returns a fixed Board instead of polling the metadata DB and the sources:
a stand-in for determinism only; tests/integration/test_console.py drives the same screens
against real clusters.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cdc_tui.services.board import Board, BoardRow, SourceState
from cdc_tui.services.context import AppContext, build_context
from cdc_tui.ui.app import CdcTuiApp
from cdc_tui.ui.screens.error import ErrorModal

AT = datetime(2026, 11, 23, 9, 30, 0, tzinfo=UTC)
SIZES = [(80, 24), (120, 40)]


def _row(name: str, **over: Any) -> BoardRow:
    fields: dict[str, Any] = {
        "name": name, "engine": "embedded", "mode": "full_load_and_cdc", "status": "RUNNING",
        "full_load_status": "COMPLETED", "full_load_percent": 100.0, "cdc_status": "RUNNING",
        "lag_bytes": 2048, "lag_seconds": 0.4, "retained_bytes": 5_300_000, "slot_active": True,
        "wal_status": "reserved", "health": "healthy", "health_reasons": (),
        "last_error_short": None, "source_key": "src", "stale": False, "updated_at": AT,
    }  # fmt: skip
    fields.update(over)
    return BoardRow(**fields)


BOARD = Board(
    rows=(
        _row(
            "billing",
            status="RUNNING",
            full_load_status="IN_PROGRESS",
            full_load_percent=42.0,
            cdc_status="NOT_STARTED",
            lag_bytes=None,
            lag_seconds=None,
        ),
        _row(
            "inventory",
            source_key="legacy",
            stale=True,
            health="degraded",
            health_reasons=("source unreachable",),
            lag_bytes=None,
            retained_bytes=None,
        ),
        _row("orders"),
        _row(
            "payments",
            status="ERROR",
            cdc_status="ERROR",
            health="failed",
            last_error_short='rejected change on shop."Order Items" [id=42]: value too long',
        ),
    ),
    sources={
        "src": SourceState("src", True, None),
        "legacy": SourceState("legacy", False, "source unreachable: connection refused"),
    },
    taken_at=AT,
)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'metadata_url = "sqlite:///{tmp_path / "m.db"}"\n\n'
        '[connections.src]\nurl = "postgresql://cdc_reader@db1.example:5432/shop"\n\n'
        '[connections.tgt]\nurl = "postgresql://cdc_writer@dw.example:5432/mirror"\n'
    )
    context = build_context(config, environ={})
    yield context
    context.close()


def app_for(ctx: AppContext, *, read_only: bool = False) -> CdcTuiApp:
    return CdcTuiApp(ctx, read_only=read_only, reader=lambda: BOARD)


@pytest.mark.parametrize("size", SIZES)
def test_pipelines_screen(snap_compare: Any, ctx: AppContext, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(ctx), terminal_size=size, press=["down"])


@pytest.mark.parametrize("size", SIZES)
def test_pipelines_screen_read_only(
    snap_compare: Any, ctx: AppContext, size: tuple[int, int]
) -> None:
    assert snap_compare(app_for(ctx, read_only=True), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare: Any, ctx: AppContext, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(ctx), terminal_size=size, press=["question_mark"])


@pytest.mark.parametrize("size", SIZES)
def test_drop_confirmation(snap_compare: Any, ctx: AppContext, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(ctx), terminal_size=size, press=["d"])


@pytest.mark.parametrize("size", SIZES)
def test_error_modal_escapes_markup(
    snap_compare: Any, ctx: AppContext, size: tuple[int, int]
) -> None:
    app = app_for(ctx)

    async def open_error(pilot: Any) -> None:
        await pilot.pause()
        message = "Connection to [bold]src[/bold] refused; check the host."
        app.push_screen(ErrorModal("start orders: Source error", message))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=open_error)


@pytest.mark.parametrize("size", SIZES)
def test_new_pipeline_form(snap_compare: Any, ctx: AppContext, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(ctx), terminal_size=size, press=["n"])
