"""The home screen: every pipeline, refreshed by a polling worker, driven from the keyboard."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from cdc_tui.errors import CdcTuiError
from cdc_tui.services.board import Board, BoardRow, read_board
from cdc_tui.services.context import AppContext
from cdc_tui.ui.formatting import human_bytes, human_seconds, percent
from cdc_tui.ui.messages import (
    ActionFinished,
    BoardUpdated,
    EditLoaded,
    PollFailed,
    ValidationDone,
)
from cdc_tui.ui.screens.confirm import ConfirmModal, TypeNameModal
from cdc_tui.ui.screens.error import ErrorModal, ReportModal
from cdc_tui.ui.screens.help import HelpScreen, binding_rows
from cdc_tui.ui.widgets.board_table import BoardTable

if TYPE_CHECKING:
    from cdc_tui.ui.pipeline_detail import DetailReader

log = logging.getLogger(__name__)

# The services and screens that only actions need are imported where they are used, so they
# load after the first frame instead of before it (about 0.1 s of the console's start).

# (column key, header): the row key is the pipeline name, so updates never move the cursor.
# What a DBA scans first comes first, so an 80-column terminal shows status and health.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "Pipeline"),
    ("status", "Status"),
    ("health", "Health"),
    ("full_load", "Full load"),
    ("cdc", "CDC"),
    ("lag_bytes", "Lag"),
    ("lag_s", "Lag s"),
    ("retained", "WAL kept"),
    ("engine", "Engine"),
    ("mode", "Mode"),
    ("error", "Last error"),
)
COLUMN_INDEX = {key: i for i, (key, _label) in enumerate(COLUMNS)}
# `o` cycles through these sort columns, then back to the name order.
SORT_CYCLE: tuple[str | None, ...] = (None, "status", "health", "cdc", "lag_bytes")
# Actions that change a pipeline: hidden and refused in read-only mode.
# Text that deserves a colour on the board (NO_COLOR keeps only the bold of "bad").
TONES: dict[str, dict[str, str]] = {
    "status": {"RUNNING": "good", "STARTING": "warn", "STOPPING": "warn", "ERROR": "bad"},
    "health": {"healthy": "good", "degraded": "warn", "failed": "bad"},
    "cdc": {"RUNNING": "good", "RECONNECTING": "warn", "FAILED": "bad"},
}
MUTATING = frozenset({"start", "stop", "restart", "resync", "drop", "new", "edit"})
STOP_TIMEOUT_S = 120.0


def tone(column: str, text: str) -> str | None:
    """The colour class of one cell: good, warn or bad (a stale health is always warn)."""
    tones = TONES.get(column)
    if tones is None:
        return "bad" if column == "full_load" and text == "FAILED" else None
    if text.endswith(" (stale)"):
        return "warn"
    return tones.get(text)


def cells(row: BoardRow) -> tuple[str, ...]:
    """The text of each column for one pipeline, in COLUMNS order."""
    full_load = row.full_load_status
    if row.full_load_percent is not None and full_load == "IN_PROGRESS":
        full_load = f"{full_load} {percent(row.full_load_percent)}"
    health = f"{row.health} (stale)" if row.stale else row.health
    return (
        row.name,
        row.status,
        health,
        full_load,
        row.cdc_status,
        human_bytes(row.lag_bytes),
        human_seconds(row.lag_seconds),
        human_bytes(row.retained_bytes),
        row.engine,
        row.mode,
        row.last_error_short or "",
    )


class PipelinesScreen(Screen[None]):
    """Every pipeline with its statuses, lag and health; `?` lists the keys."""

    # Footer order: at 80 columns the first ones show, so help and open come first.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("enter", "open", "Open", id="pipelines.open"),
        Binding("n", "new", "New", id="pipelines.new"),
        Binding("e", "edit", "Edit", id="pipeline.edit"),
        Binding("s", "start", "Start", id="pipeline.start"),
        Binding("x", "stop", "Stop", id="pipeline.stop"),
        Binding("R", "restart", "Restart", id="pipeline.restart"),
        Binding("ctrl+r", "resync", "Resync", id="pipeline.resync"),
        Binding("d", "drop", "Drop", id="pipeline.drop"),
        Binding("v", "validate", "Validate", id="pipeline.validate"),
        Binding("slash", "filter", "Filter", id="pipelines.filter"),
        Binding("o", "sort", "Sort", id="pipelines.sort"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="pipelines.unfilter"),
        Binding("q", "app.quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        ctx: AppContext,
        *,
        refresh_s: float,
        read_only: bool,
        reader: Callable[[], Board] | None = None,
        detail_reader: DetailReader | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.detail_reader = detail_reader
        # Snapshot tests pass a reader of fixed boards; everything else polls the metadata DB.
        self.reader = reader or (lambda: read_board(ctx))
        self.refresh_s = refresh_s
        self.read_only = read_only
        self.board: Board | None = None
        self.filter_text = ""
        self.sort_column: str | None = None
        self._unreachable: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: part of a name or status", id="filter", classes="hidden")
        yield BoardTable(COLUMNS, toner=tone, id="pipelines")
        # Plain text: a filter or an error message must not be read as markup.
        yield Static("", id="board-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "cdc-tui" + ("  [read-only]" if self.read_only else "")
        self.sub_title = "pipelines"
        self.query_one(BoardTable).focus()
        self.poll()

    # -- polling ----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll(self) -> None:
        """Read the board off the UI thread; the next poll is scheduled when this one lands."""
        try:
            board = self.reader()
        except CdcTuiError as exc:
            self.post_message(PollFailed(exc.title, exc.message))
            return
        self.post_message(BoardUpdated(board))

    @on(BoardUpdated)
    def show_board(self, message: BoardUpdated) -> None:
        self.board = message.board
        self._announce_sources(message.board)
        self.refill()
        self.set_timer(self.refresh_s, self.poll)

    @on(PollFailed)
    def poll_failed(self, message: PollFailed) -> None:
        self._set_status(f"{message.title}: {message.text}")
        self.set_timer(self.refresh_s, self.poll)

    def _announce_sources(self, board: Board) -> None:
        """Say once that a source went away (its rows turn stale) and once that it is back."""
        down = {key for key, source in board.sources.items() if not source.reachable}
        for key in sorted(down - self._unreachable):
            error = board.sources[key].error or "unreachable"
            self.notify(f"{key}: {error}", title="Source unreachable", severity="warning")
        for key in sorted(self._unreachable - down):
            self.notify(f"{key} answers again.", title="Source reachable")
        self._unreachable = down

    def visible_rows(self) -> list[BoardRow]:
        rows = list(self.board.rows) if self.board is not None else []
        needle = self.filter_text.casefold()
        if needle:
            rows = [r for r in rows if any(needle in c.casefold() for c in cells(r)[:5])]
        return rows

    def refill(self) -> None:
        """Show the visible rows in the chosen order (name by default); the table repaints only
        the rows whose text changed and keeps the cursor on its pipeline."""
        rows = self.visible_rows()
        index = COLUMN_INDEX[self.sort_column] if self.sort_column is not None else 0
        shown = [(row.name, cells(row)) for row in rows]
        shown.sort(key=lambda item: (item[1][index], item[0]))
        self.query_one(BoardTable).set_rows(shown)
        self._status_line(len(rows))

    def _status_line(self, shown: int) -> None:
        board = self.board
        total = len(board.rows) if board is not None else 0
        noun = "pipeline" if total == 1 else "pipelines"
        parts = [f"{shown} of {total} {noun}" if shown != total else f"{total} {noun}"]
        if self.filter_text:
            parts.append(f"filter: {self.filter_text}")
        if board is not None:
            parts.append(f"updated {board.taken_at:%H:%M:%S} UTC")
        self._set_status("  |  ".join(parts))

    def _set_status(self, text: str) -> None:
        # One line of fixed height: no layout pass (it cost the whole screen a reflow per poll).
        self.query_one("#board-status", Static).update(text, layout=False)

    # -- filter, sort, help -----------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("hidden")
        box.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.refill()

    @on(Input.Submitted, "#filter")
    def filter_done(self, _event: Input.Submitted) -> None:
        self.query_one(BoardTable).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.add_class("hidden")
        self.filter_text = ""
        self.query_one(BoardTable).focus()
        self.refill()

    def action_sort(self) -> None:
        """Cycle the sort column: status, health, CDC, lag, then back to the name."""
        self.sort_column = SORT_CYCLE[(SORT_CYCLE.index(self.sort_column) + 1) % len(SORT_CYCLE)]
        column = self.sort_column or "name"
        self.notify(f"Sorted by {COLUMNS[COLUMN_INDEX[column]][1]}.")
        self.refill()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(binding_rows(self)))

    def action_open(self) -> None:
        if (name := self.selected()) is not None:
            from cdc_tui.ui.screens.pipeline import PipelineScreen

            screen = PipelineScreen(self.ctx, name, refresh_s=self.refresh_s,
                                    reader=self.detail_reader)  # fmt: skip
            self.app.push_screen(screen)

    @on(BoardTable.RowActivated, "#pipelines")
    def row_activated(self, _event: BoardTable.RowActivated) -> None:
        self.action_open()

    # -- actions ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only mode hides and refuses every action that changes a pipeline."""
        return not (self.read_only and action in MUTATING)

    def selected(self) -> str | None:
        key = self.query_one(BoardTable).cursor_key
        if key is None:
            self.notify("No pipeline selected.", severity="warning")
        return key

    def action_start(self) -> None:
        if (name := self.selected()) is not None:
            self.launch(name, "start", lambda: _start(self.ctx, name))

    def action_stop(self) -> None:
        if (name := self.selected()) is not None:
            self.launch(name, "stop", lambda: _stop(self.ctx, name))

    def action_restart(self) -> None:
        if (name := self.selected()) is not None:

            def restart() -> str:
                _stop(self.ctx, name)
                return _start(self.ctx, name)

            self.launch(name, "restart", restart)

    def action_resync(self) -> None:
        if (name := self.selected()) is None:
            return
        from cdc_tui.services.control import resync_pipeline

        question = (f"Resync {name}? This drops its slot, empties its target tables and copies "
                    "everything again.")  # fmt: skip

        def answered(yes: bool | None) -> None:
            if yes:
                self.launch(name, "resync", lambda: _joined(resync_pipeline(self.ctx, name, None)))

        self.app.push_screen(ConfirmModal(question), answered)

    def action_drop(self) -> None:
        if (name := self.selected()) is None:
            return
        from cdc_tui.services.control import drop_pipeline_everywhere

        question = (f"Drop {name}: its runner stops, its slot and publication are dropped and it "
                    "is forgotten (target tables stay). Type its name to confirm.")  # fmt: skip

        def answered(yes: bool | None) -> None:
            if yes:
                self.launch(name, "drop", lambda: _joined(drop_pipeline_everywhere(self.ctx, name)))

        self.app.push_screen(TypeNameModal(question, name), answered)

    def action_new(self) -> None:
        def created(name: str | None) -> None:
            if name is not None:
                self.notify(f"Pipeline {name} created; s starts it.", title="new pipeline")
                self.poll()

        from cdc_tui.ui.screens.new_pipeline import NewPipelineScreen

        self.app.push_screen(NewPipelineScreen(self.ctx), created)

    def action_edit(self) -> None:
        if (name := self.selected()) is None:
            return
        row = next((r for r in self.board.rows if r.name == name), None) if self.board else None
        if row is not None and row.status not in ("STOPPED", "ERROR"):
            self.notify(f"{name} is {row.status}; stop it (x) before editing it.",
                        severity="warning")  # fmt: skip
            return
        self._load_for_edit(name)

    @work(thread=True, group="actions", exit_on_error=False)
    def _load_for_edit(self, name: str) -> None:
        from cdc_tui.store.repositories import PipelineRepository

        try:
            record = PipelineRepository(self.ctx.store).get(name)
        except CdcTuiError as exc:
            self.post_message(ActionFinished(name, "edit", exc.title, exc.message))
            return
        self.post_message(EditLoaded(record))

    @on(EditLoaded)
    def open_edit(self, message: EditLoaded) -> None:
        from cdc_tui.ui.screens.new_pipeline import NewPipelineScreen

        def edited(name: str | None) -> None:
            if name is not None:
                self.notify(f"Pipeline {name} saved.", title="edit")
                self.poll()

        self.app.push_screen(NewPipelineScreen(self.ctx, editing=message.record), edited)

    def action_validate(self) -> None:
        if (name := self.selected()) is not None:
            self.notify(f"validating {name}: counts and checksums per key range...", timeout=3)
            self._validate(name)

    @work(thread=True, group="actions", exit_on_error=False)
    def _validate(self, name: str) -> None:
        from cdc_tui.cli_output import validation_text
        from cdc_tui.services.validate import validate_pipeline

        try:
            report = validate_pipeline(self.ctx, name)
        except CdcTuiError as exc:
            self.post_message(ActionFinished(name, "validate", exc.title, exc.message))
            return
        verdict = "equal" if report.ok else "DIFFERENT: resync if it persists"
        self.post_message(ValidationDone(name, verdict, validation_text(report)))

    @on(ValidationDone)
    def validation_done(self, message: ValidationDone) -> None:
        title = f"validate {message.pipeline}: {message.verdict}"
        modal = ReportModal(title, message.text) if message.ok else ErrorModal(title, message.text)
        self.app.push_screen(modal)

    def launch(self, name: str, action: str, call: Callable[[], str]) -> None:
        self.notify(f"{action} {name}...", timeout=2)
        self._act(name, action, call)

    @work(thread=True, group="actions", exit_on_error=False)
    def _act(self, name: str, action: str, call: Callable[[], str]) -> None:
        try:
            summary = call()
        except CdcTuiError as exc:
            self.post_message(ActionFinished(name, action, exc.title, exc.message))
            return
        self.post_message(ActionFinished(name, action, summary))

    @on(ActionFinished)
    def action_finished(self, message: ActionFinished) -> None:
        if message.error is not None:
            title = f"{message.action} {message.pipeline}: {message.summary}"
            self.app.push_screen(ErrorModal(title, message.error))
        else:
            self.notify(f"{message.pipeline}: {message.summary}", title=message.action)
        self.poll()


def _start(ctx: AppContext, name: str) -> str:
    from cdc_tui.services.control import start_pipeline

    return f"runner started (pid {start_pipeline(ctx, name)})"


def _joined(done: list[str]) -> str:
    return "; ".join(done) or "done"


def _stop(ctx: AppContext, name: str) -> str:
    from cdc_tui.services.control import stop_pipeline

    stopped = stop_pipeline(ctx, name, wait=True, timeout_s=STOP_TIMEOUT_S)
    return "stopped" if stopped else f"still stopping after {STOP_TIMEOUT_S:g} s"
