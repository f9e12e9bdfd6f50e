"""The home screen: every pipeline, refreshed by a polling worker, driven from the keyboard."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.widgets.data_table import RowDoesNotExist

from cdc_tui.cli_output import validation_text
from cdc_tui.errors import CdcTuiError
from cdc_tui.services.board import Board, BoardRow, read_board
from cdc_tui.services.context import AppContext
from cdc_tui.services.control import (
    drop_pipeline_everywhere,
    resync_pipeline,
    start_pipeline,
    stop_pipeline,
)
from cdc_tui.services.validate import validate_pipeline
from cdc_tui.ui.formatting import human_bytes, human_seconds, percent
from cdc_tui.ui.messages import ActionFinished, BoardUpdated, PollFailed, ValidationDone
from cdc_tui.ui.screens.confirm import ConfirmModal, TypeNameModal
from cdc_tui.ui.screens.error import ErrorModal, ReportModal
from cdc_tui.ui.screens.help import HelpScreen, binding_rows
from cdc_tui.ui.screens.new_pipeline import NewPipelineScreen
from cdc_tui.ui.screens.pipeline import PipelineScreen

log = logging.getLogger(__name__)

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
MUTATING = frozenset({"start", "stop", "restart", "resync", "drop", "new"})
STOP_TIMEOUT_S = 120.0


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

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New", id="pipelines.new"),
        Binding("s", "start", "Start", id="pipeline.start"),
        Binding("x", "stop", "Stop", id="pipeline.stop"),
        Binding("R", "restart", "Restart", id="pipeline.restart"),
        Binding("ctrl+r", "resync", "Resync", id="pipeline.resync"),
        Binding("d", "drop", "Drop", id="pipeline.drop"),
        Binding("v", "validate", "Validate", id="pipeline.validate"),
        Binding("enter", "open", "Open", id="pipelines.open"),
        Binding("slash", "filter", "Filter", id="pipelines.filter"),
        Binding("o", "sort", "Sort", id="pipelines.sort"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="pipelines.unfilter"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "app.quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        ctx: AppContext,
        *,
        refresh_s: float,
        read_only: bool,
        reader: Callable[[], Board] | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
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
        table: DataTable[str] = DataTable(id="pipelines", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="board-status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "cdc-tui" + ("  [read-only]" if self.read_only else "")
        self.sub_title = "pipelines"
        self.query_one(DataTable).focus()
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
        self.query_one("#board-status", Static).update(f"{message.title}: {message.text}")
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
        """Update the table by row key: change only cells that differ, keep the cursor."""
        table = self.query_one(DataTable)
        rows = self.visible_rows()
        wanted = [r.name for r in rows]
        with self.app.batch_update():
            keep = set(wanted)
            for key in [k for k in table.rows if k.value not in keep]:
                table.remove_row(key)
            for row in rows:
                values = cells(row)
                try:
                    current = table.get_row(row.name)
                except RowDoesNotExist:
                    table.add_row(*values, key=row.name)
                    continue
                for (column, _label), old, new in zip(COLUMNS, current, values, strict=True):
                    if old != new:
                        table.update_cell(row.name, column, new)
            self._order(table, rows)
        self._status_line(len(rows))

    def _order(self, table: DataTable[str], rows: list[BoardRow]) -> None:
        """Sort by the chosen column (name by default), keeping the cursor on its pipeline.

        Sorting repaints every row, so it runs only when the order on screen is wrong (a poll
        that changes nothing then costs a few ms instead of ~100 ms with 200 pipelines).
        """
        index = COLUMN_INDEX[self.sort_column] if self.sort_column is not None else 0
        wanted = [r.name for r in sorted(rows, key=lambda r: (cells(r)[index], r.name))]
        if [row.key.value for row in table.ordered_rows] == wanted:
            return
        selected = None
        if table.row_count:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        columns = [self.sort_column] if self.sort_column is not None else []
        table.sort(*columns, "name")
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected), animate=False)

    def _status_line(self, shown: int) -> None:
        board = self.board
        total = len(board.rows) if board is not None else 0
        noun = "pipeline" if total == 1 else "pipelines"
        parts = [f"{shown} of {total} {noun}" if shown != total else f"{total} {noun}"]
        if self.filter_text:
            parts.append(f"filter: {self.filter_text}")
        if board is not None:
            parts.append(f"updated {board.taken_at:%H:%M:%S} UTC")
        self.query_one("#board-status", Static).update("  |  ".join(parts))

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
        self.query_one(DataTable).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.add_class("hidden")
        self.filter_text = ""
        self.query_one(DataTable).focus()
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
            self.app.push_screen(PipelineScreen(self.ctx, name, refresh_s=self.refresh_s))

    @on(DataTable.RowSelected, "#pipelines")
    def row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_open()

    # -- actions ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only mode hides and refuses every action that changes a pipeline."""
        return not (self.read_only and action in MUTATING)

    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            self.notify("No pipeline selected.", severity="warning")
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(key) if key is not None else None

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
        question = (f"Resync {name}? This drops its slot, empties its target tables and copies "
                    "everything again.")  # fmt: skip

        def answered(yes: bool | None) -> None:
            if yes:
                self.launch(name, "resync", lambda: _joined(resync_pipeline(self.ctx, name, None)))

        self.app.push_screen(ConfirmModal(question), answered)

    def action_drop(self) -> None:
        if (name := self.selected()) is None:
            return
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

        self.app.push_screen(NewPipelineScreen(self.ctx), created)

    def action_validate(self) -> None:
        if (name := self.selected()) is not None:
            self.notify(f"validating {name}: counts and checksums per key range...", timeout=3)
            self._validate(name)

    @work(thread=True, group="actions", exit_on_error=False)
    def _validate(self, name: str) -> None:
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
    return f"runner started (pid {start_pipeline(ctx, name)})"


def _joined(done: list[str]) -> str:
    return "; ".join(done) or "done"


def _stop(ctx: AppContext, name: str) -> str:
    stopped = stop_pipeline(ctx, name, wait=True, timeout_s=STOP_TIMEOUT_S)
    return "stopped" if stopped else f"still stopping after {STOP_TIMEOUT_S:g} s"
