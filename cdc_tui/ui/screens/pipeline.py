"""One pipeline (Enter on the home screen): overview, tables, step logs, slot, history."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Log,
    Sparkline,
    Static,
    TabbedContent,
    TabPane,
)

from cdc_tui.errors import CdcTuiError
from cdc_tui.services.context import AppContext
from cdc_tui.services.status import status_document
from cdc_tui.store.records import EventRecord, LogRecord
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.ui.formatting import DASH, clock, human_bytes, human_seconds
from cdc_tui.ui.messages import PollFailed
from cdc_tui.ui.screens.help import HelpScreen, binding_rows

STEPS = (0, 1, 2)
# Log lines kept per step for search, as many as each pane shows.
LOG_LINES = 2000
# Lag samples kept for the sparkline: at one poll every 2 s, the last ten minutes.
LAG_SAMPLES = 300
BAR_WIDTH = 20
TABLE_COLUMNS = (
    ("table", "Table"),
    ("state", "State"),
    ("rows", "Rows copied / est."),
    ("bar", "Progress"),
)
SLOT_FIELDS = (
    ("exists", "exists"),
    ("active", "active"),
    ("active_pid", "active_pid"),
    ("wal_status", "wal_status"),
    ("safe_wal_size", "safe_wal_size"),
    ("restart_lsn", "restart_lsn"),
    ("confirmed_flush_lsn", "confirmed_flush_lsn"),
    ("retained_bytes", "WAL retained"),
    ("lag_bytes", "lag (bytes)"),
)


@dataclass
class DetailUpdated(Message):
    """A poll of one pipeline: its status document, new log lines, the latest events."""

    document: dict[str, Any]
    logs: list[LogRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)


def progress_bar(copied: int, estimated: int | None) -> str:
    """`[#######.............]  35%` from rows copied against the estimate."""
    if not estimated:
        return DASH
    share = min(1.0, copied / estimated)
    filled = round(share * BAR_WIDTH)
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share * 100:3.0f}%"


def overview_text(doc: dict[str, Any]) -> str:
    """The Overview pane as plain text (no markup: names and errors show as written)."""
    full_load = doc.get("full_load") or {}
    cdc = doc.get("cdc") or {}
    runner = doc.get("runner") or {}
    lines = [
        f"Pipeline     {doc['name']}  ({doc.get('engine')}, {doc.get('mode')})",
        f"Status       {doc['status']}   full load {doc['full_load_status']}"
        f"   CDC {doc['cdc_status']}",
        f"Health       {doc['health']}",
    ]
    lines += [f"  - {reason}" for reason in doc.get("health_reasons") or []]
    lines += [
        f"Handoff LSN  {full_load.get('lsn') or DASH}",
        f"Full load    started {full_load.get('started_at') or DASH}"
        f"   completed {full_load.get('completed_at') or DASH}",
        f"Applied LSN  {cdc.get('applied_lsn') or DASH}   changes {cdc.get('changes_applied', 0)}"
        f"   lag {human_seconds(cdc.get('lag_seconds'))}",
        "Runner       "
        + (
            f"pid {runner.get('pid')} on {runner.get('host')}, "
            f"{'alive' if runner.get('heartbeat_recent') else 'not alive'}, last heartbeat "
            f"{runner.get('heartbeat_at') or DASH}"
            if runner
            else "none"
        ),
        f"Updated      {doc.get('updated_at') or DASH}",
    ]
    if doc.get("last_error"):
        lines += ["", "Last error", f"  {doc['last_error']}"]
    return "\n".join(lines)


class PipelineScreen(Screen[None]):
    """Tabs for one pipeline; refreshed by its own polling worker while it is open."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="pipeline.back"),
        Binding("f", "follow", "Follow logs", id="logs.follow"),
        Binding("slash", "search", "Search logs", id="logs.search"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "app.quit", "Quit", id="app.quit"),
    ]

    def __init__(self, ctx: AppContext, name: str, *, refresh_s: float) -> None:
        super().__init__()
        self.ctx = ctx
        self.pipeline = name
        self.refresh_s = refresh_s
        self.follow = True
        self.last_log_id = 0
        self.lag: deque[float] = deque(maxlen=LAG_SAMPLES)
        self.log_lines: dict[int, deque[str]] = {}
        self.search = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="tabs"):
            with TabPane("Overview", id="overview"):
                yield Static("loading...", id="overview-text", markup=False)
            with TabPane("Tables", id="tables"):
                tables: DataTable[str] = DataTable(id="tables-table", cursor_type="row")
                for key, label in TABLE_COLUMNS:
                    tables.add_column(label, key=key)
                yield tables
            with TabPane("Logs", id="logs"):
                yield Input(placeholder="show only log lines containing...", id="log-search",
                            classes="hidden")  # fmt: skip
                for step in STEPS:
                    yield Static(f"Step {step}", classes="log-title")
                    yield Log(id=f"log-{step}", classes="step-log", max_lines=LOG_LINES)
            with TabPane("Slot", id="slot"):
                slot: DataTable[str] = DataTable(id="slot-table", cursor_type="row")
                slot.add_columns("Field", "Value")
                yield slot
                yield Static("Lag over the last minutes (bytes)", classes="log-title")
                yield Sparkline([], id="lag-spark")
                yield Static("", id="slot-warning", markup=False)
            with TabPane("History", id="history"):
                history: DataTable[str] = DataTable(id="history-table", cursor_type="row")
                history.add_columns("At (UTC)", "What", "From", "To", "Why", "Who")
                yield history
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"cdc-tui: {self.pipeline}"
        self.poll()

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def poll(self) -> None:
        """Status (with the slot), new log lines and recent events, read off the UI thread."""
        repo = PipelineRepository(self.ctx.store)
        try:
            document = status_document(self.ctx, self.pipeline)
            logs = repo.logs(self.pipeline, after_id=self.last_log_id, limit=2000)
            events = repo.events(self.pipeline, limit=200)
        except CdcTuiError as exc:
            self.post_message(PollFailed(exc.title, exc.message))
            return
        self.post_message(DetailUpdated(document, logs, events))

    @on(DetailUpdated)
    def show(self, message: DetailUpdated) -> None:
        doc = message.document
        self.query_one("#overview-text", Static).update(overview_text(doc))
        self._tables(doc)
        self._logs(message.logs)
        self._slot(doc)
        self._history(message.events)
        self.set_timer(self.refresh_s, self.poll)

    @on(PollFailed)
    def poll_failed(self, message: PollFailed) -> None:
        self.query_one("#overview-text", Static).update(f"{message.title}: {message.text}")
        self.set_timer(self.refresh_s, self.poll)

    def _tables(self, doc: dict[str, Any]) -> None:
        table = self.query_one("#tables-table", DataTable)
        for entry in (doc.get("full_load") or {}).get("tables", []):
            copied, estimated = entry.get("rows_copied") or 0, entry.get("rows_estimated")
            values = (entry["table"], entry["state"], f"{copied:,} / {estimated or 0:,}",
                      progress_bar(copied, estimated))  # fmt: skip
            key = entry["table"]
            if key in table.rows:
                for column, value in zip(("table", "state", "rows", "bar"), values, strict=True):
                    table.update_cell(key, column, value)
            else:
                table.add_row(*values, key=key)

    def _logs(self, records: list[LogRecord]) -> None:
        for record in records:
            self.last_log_id = max(self.last_log_id, record.id)
            line = f"{clock(record.at)} {record.level:<7} {record.message}"
            kept = self.log_lines.setdefault(record.step, deque(maxlen=LOG_LINES))
            kept.append(line)
            if self.search.casefold() in line.casefold():
                log = self.query_one(f"#log-{record.step}", Log)
                log.write_line(line)
                if self.follow:
                    log.scroll_end(animate=False)

    def action_search(self) -> None:
        self.query_one("#tabs", TabbedContent).active = "logs"
        box = self.query_one("#log-search", Input)
        box.remove_class("hidden")
        box.focus()

    @on(Input.Changed, "#log-search")
    def search_changed(self, event: Input.Changed) -> None:
        """Re-show each step's kept lines that contain the text (all of them when empty)."""
        self.search = event.value
        needle = self.search.casefold()
        for step in STEPS:
            log = self.query_one(f"#log-{step}", Log)
            log.clear()
            log.write_lines(
                [line for line in self.log_lines.get(step, ()) if needle in line.casefold()]
            )

    def _slot(self, doc: dict[str, Any]) -> None:
        slot = doc.get("slot") or {}
        table = self.query_one("#slot-table", DataTable)
        table.clear()
        for key, label in SLOT_FIELDS:
            value = slot.get(key)
            shown = human_bytes(value) if key in ("retained_bytes", "lag_bytes", "safe_wal_size") \
                else (DASH if value is None else str(value))  # fmt: skip
            table.add_row(label, shown)
        if slot.get("lag_bytes") is not None:
            self.lag.append(float(slot["lag_bytes"]))
            self.query_one("#lag-spark", Sparkline).data = list(self.lag)
        warnings = []
        if slot.get("exists") and slot.get("active") is False:
            warnings.append("The slot is inactive: nothing reads it, and it retains WAL.")
        if slot.get("wal_status") in ("extended", "unreserved"):
            warnings.append(f"wal_status is {slot['wal_status']}: the slot is close to losing "
                            "WAL it needs; make the pipeline catch up or resync it.")  # fmt: skip
        if slot.get("error"):
            warnings.append(str(slot["error"]))
        self.query_one("#slot-warning", Static).update("\n".join(warnings))

    def _history(self, events: list[EventRecord]) -> None:
        table = self.query_one("#history-table", DataTable)
        table.clear()
        for event in events:
            what = event.kind.value if event.field is None else f"{event.kind.value} {event.field}"
            if event.table:
                what += f" {event.table}"
            table.add_row(clock(event.at), what, event.from_value or "", event.to_value or "",
                          event.reason, event.actor)  # fmt: skip

    def action_back(self) -> None:
        """Esc closes the log search first (showing every line again), then the screen."""
        box = self.query_one("#log-search", Input)
        if not box.has_class("hidden"):
            box.value = ""
            box.add_class("hidden")
            return
        self.app.pop_screen()

    def action_follow(self) -> None:
        self.follow = not self.follow
        self.notify("Following the logs." if self.follow else "Stopped following the logs.")

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(binding_rows(self)))
