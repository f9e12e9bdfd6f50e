"""The console app: it composes the pipelines screen, applies key remaps, and routes errors.

Everything that reads or changes pipelines runs in thread workers on services (never here on
the event loop); the runners it starts are detached, so quitting the console stops nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import App
from textual.worker import Worker, WorkerState

from cdc_tui.services.board import Board
from cdc_tui.services.context import AppContext
from cdc_tui.ui.screens.error import ErrorModal
from cdc_tui.ui.screens.pipelines import PipelinesScreen

if TYPE_CHECKING:
    from cdc_tui.ui.pipeline_detail import DetailReader


class CdcTuiApp(App[None]):
    """`cdc-tui` without a verb."""

    CSS_PATH: ClassVar[str] = str(Path(__file__).with_name("console.tcss"))
    TITLE = "cdc-tui"

    def __init__(
        self,
        ctx: AppContext,
        *,
        read_only: bool | None = None,
        reader: Callable[[], Board] | None = None,
        detail_reader: DetailReader | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.reader = reader
        self.detail_reader = detail_reader
        console = ctx.settings.console
        self.read_only = console.read_only if read_only is None else read_only
        self.refresh_s = console.refresh_interval

    def on_mount(self) -> None:
        if self.ctx.settings.console.keys:
            self.set_keymap(dict(self.ctx.settings.console.keys))
        self.push_screen(
            PipelinesScreen(
                self.ctx,
                refresh_s=self.refresh_s,
                read_only=self.read_only,
                reader=self.reader,
                detail_reader=self.detail_reader,
            )
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that died of an unexpected error: show it rather than lose it."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.push_screen(ErrorModal(f"Unexpected error in {event.worker.name}", repr(error)))


def run_console(
    ctx: AppContext,
    *,
    read_only: bool | None = None,
    reader: Callable[[], Board] | None = None,
) -> int:
    """Run the console until the user quits; 0 on a normal exit."""
    CdcTuiApp(ctx, read_only=read_only, reader=reader).run()
    return 0
