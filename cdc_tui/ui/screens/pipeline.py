"""One pipeline (Enter on the home screen): overview, tables, logs, slot, connectors, history."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.coordinate import Coordinate
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
    Tabs,
)

from cdc_tui.errors import CdcTuiError
from cdc_tui.services.context import AppContext
from cdc_tui.store.records import EventRecord, LogRecord
from cdc_tui.ui.formatting import DASH, clock, human_bytes, human_seconds
from cdc_tui.ui.messages import ActionFinished, PollFailed
from cdc_tui.ui.pipeline_detail import (
    Detail,
    DetailReader,
    detail_reader,
    overview_text,
    progress_bar,
)
from cdc_tui.ui.screens.confirm import ConfirmModal
from cdc_tui.ui.screens.error import ErrorModal
from cdc_tui.ui.screens.help import HelpScreen, binding_rows
from cdc_tui.ui.widgets.connectors_pane import ConnectorsPane

STEPS = (0, 1, 2)
# Log lines kept per step for search, as many as each pane shows.
LOG_LINES = 2000
# Lag samples kept for the sparkline: at one poll every 2 s, the last ten minutes.
LAG_SAMPLES = 300
# Rows-per-second is measured over the polls of this window (a moving rate, not a lifetime one).
RATE_WINDOW_S = 30.0
TABLE_COLUMNS = (
    ("table", "Table"),
    ("state", "State"),
    ("rows", "Rows copied / est."),
    ("bar", "Progress"),
    ("rate", "Rows/s"),
    ("eta", "ETA"),
)
# Digit keys jump straight to a tab: (key, tab id, label).
TABS = (
    ("1", "overview", "Overview"),
    ("2", "tables", "Tables"),
    ("3", "logs", "Logs"),
    ("4", "slot", "Slot"),
    ("5", "connectors", "Connectors"),
    ("6", "history", "History"),
)
# The engine that resyncs one table while the others stream (the embedded one resyncs whole
# pipelines only, from the pipelines screen).
TABLE_RESYNC_ENGINE = "kafka_connect"
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
    detail: Detail


class PipelineScreen(Screen[None]):
    """Tabs for one pipeline; refreshed by its own polling worker while it is open."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="pipeline.back"),
        *[
            Binding(key, f"tab('{tab}')", label, show=False, id=f"pipeline.tab.{tab}")
            for key, tab, label in TABS
        ],
        Binding("f", "follow", "Follow logs", id="logs.follow"),
        Binding("slash", "search", "Search logs", id="logs.search"),
        Binding("c", "copy_trace", "Copy", id="connectors.copy_trace"),
        Binding("ctrl+r", "resync_table", "Resync table", id="pipeline.resync_table"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "app.quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        ctx: AppContext,
        name: str,
        *,
        refresh_s: float,
        reader: DetailReader | None = None,
        read_only: bool | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        # None: the app's read-only flag (`--read-only` or `[console] read_only`).
        self._read_only = read_only
        # Snapshot tests pass a reader of fixed details; everything else reads the metadata DB.
        self.reader = reader or detail_reader(ctx)
        self.pipeline = name
        self.refresh_s = refresh_s
        self.follow = True
        self.last_log_id = 0
        self.lag: deque[float] = deque(maxlen=LAG_SAMPLES)
        self.log_lines: dict[int, deque[str]] = {}
        self.search = ""
        self.newest_event = 0
        self.samples: dict[str, deque[tuple[float, int]]] = {}
        self.active_tab = "overview"
        # From the status document; None until the first poll lands.
        self.engine: str | None = None

    @property
    def read_only(self) -> bool:
        if self._read_only is not None:
            return self._read_only
        flag = getattr(self.app, "read_only", None)
        return bool(self.ctx.settings.console.read_only if flag is None else flag)

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="tabs"):
            # A focusable scroll, so the arrows reach the end of a long overview.
            with TabPane("Overview", id="overview"), VerticalScroll(id="overview-scroll"):
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
            with TabPane("Connectors", id="connectors"):
                yield ConnectorsPane(id="connectors-pane")
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
        try:
            detail = self.reader(self.pipeline, self.last_log_id)
        except CdcTuiError as exc:
            self.post_message(PollFailed(exc.title, exc.message))
            return
        self.post_message(DetailUpdated(detail))

    @on(DetailUpdated)
    def show(self, message: DetailUpdated) -> None:
        detail = message.detail
        doc = detail.document
        if doc.get("engine") != self.engine:
            self.engine = doc.get("engine")
            self.refresh_bindings()
        self.query_one("#overview-text", Static).update(overview_text(doc, detail.settings))
        self._tables(doc)
        self._logs(detail.logs)
        self._slot(doc)
        self.query_one(ConnectorsPane).update_from(doc)
        self._history(detail.events)
        self.set_timer(self.refresh_s, self.poll)

    @on(PollFailed)
    def poll_failed(self, message: PollFailed) -> None:
        self.query_one("#overview-text", Static).update(f"{message.title}: {message.text}")
        self.set_timer(self.refresh_s, self.poll)

    def _tables(self, doc: dict[str, Any]) -> None:
        table = self.query_one("#tables-table", DataTable)
        now = time.monotonic()
        for entry in (doc.get("full_load") or {}).get("tables", []):
            key = entry["table"]
            copied, estimated = entry.get("rows_copied") or 0, entry.get("rows_estimated")
            rate, eta = self._rate(key, now, copied, estimated, entry["state"])
            values = (key, entry["state"], f"{copied:,} / {estimated or 0:,}",
                      progress_bar(copied, estimated), rate, eta)  # fmt: skip
            if key in table.rows:
                current = table.get_row(key)
                for (column, _label), old, new in zip(TABLE_COLUMNS, current, values, strict=True):
                    if str(old) != new:
                        table.update_cell(key, column, Text(new))
            else:
                table.add_row(*map(Text, values), key=key)

    def _rate(
        self, key: str, now: float, copied: int, estimated: int | None, state: str
    ) -> tuple[str, str]:
        """Rows per second over the last RATE_WINDOW_S of polls, and the time left at that rate."""
        if state != "COPYING":
            self.samples.pop(key, None)
            return DASH, ("done" if state == "COMPLETED" else DASH)
        samples = self.samples.setdefault(key, deque())
        samples.append((now, copied))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW_S:
            samples.popleft()
        (t0, c0), (t1, c1) = samples[0], samples[-1]
        if t1 <= t0 or c1 <= c0:
            return DASH, DASH
        rate = (c1 - c0) / (t1 - t0)
        left = max((estimated or 0) - copied, 0)
        return f"{rate:,.0f}", (human_seconds(left / rate) if estimated else DASH)

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
        for key, label in SLOT_FIELDS:
            value = slot.get(key)
            shown = human_bytes(value) if key in ("retained_bytes", "lag_bytes", "safe_wal_size") \
                else (DASH if value is None else str(value))  # fmt: skip
            # Updated in place, so the cursor and scroll position survive the poll.
            if key not in table.rows:
                table.add_row(Text(label), Text(shown), key=key)
            elif str(table.get_row(key)[1]) != shown:
                table.update_cell_at(Coordinate(table.get_row_index(key), 1), Text(shown))
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
        newest = max((event.id for event in events), default=0)
        if newest == self.newest_event:
            return  # nothing new: keep the reader's place in the list
        self.newest_event = newest
        table = self.query_one("#history-table", DataTable)
        table.clear()
        for event in events:
            what = event.kind.value if event.field is None else f"{event.kind.value} {event.field}"
            if event.table:
                what += f" {event.table}"
            # Text cells: a reason holding "[...]" is shown as written, not read as markup.
            cells = (clock(event.at), what, event.from_value or "", event.to_value or "",
                     event.reason, event.actor)  # fmt: skip
            table.add_row(*map(Text, cells))

    def action_back(self) -> None:
        """Esc closes the log search first (showing every line again), then the screen."""
        box = self.query_one("#log-search", Input)
        if not box.has_class("hidden"):
            box.value = ""
            box.add_class("hidden")
            return
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        # Focus goes to the tab bar first: a focused widget that gets hidden hands focus to its
        # neighbour in the same pane, and TabbedContent would then show that pane again.
        self.set_focus(tabs.query_one(Tabs))
        tabs.active = tab

    @on(TabbedContent.TabActivated, "#tabs")
    def tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.active_tab = event.pane.id or ""
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`c` copies a trace only on the tab that shows traces, and is in the footer only there;
        `ctrl+r` resyncs a table only on the Tables tab of a kafka_connect pipeline, and never in
        read-only mode."""
        if action == "copy_trace":
            return self.active_tab == "connectors" and self.query_one(ConnectorsPane).shows_traces
        if action == "resync_table":
            return self.active_tab == "tables" and self.resyncs_tables and not self.read_only
        return True

    @property
    def resyncs_tables(self) -> bool:
        return self.engine == TABLE_RESYNC_ENGINE

    def selected_table(self) -> str | None:
        """The table under the Tables pane's cursor, as `str(TableRef)` (its row key)."""
        table = self.query_one("#tables-table", DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def action_resync_table(self) -> None:
        """Empty the selected table's target copy and re-read it while the others stream."""
        name = self.pipeline
        if self.read_only:
            self.notify("Read-only console: nothing is changed.", severity="warning")
            return
        if not self.resyncs_tables:
            self.notify(f"The {self.engine} engine resyncs whole pipelines only: ctrl+r on the "
                        "pipelines screen.", severity="warning", markup=False)  # fmt: skip
            return
        if (table := self.selected_table()) is None:
            self.notify("No table selected.", severity="warning")
            return
        question = (f"Resync {table} of {name}? Its target table is emptied first, then read "
                    "again from the source while the other tables keep streaming.")  # fmt: skip

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify(f"resync {table} of {name}...", timeout=2, markup=False)
                self._resync_table(table)

        self.app.push_screen(ConfirmModal(question), answered)

    @work(thread=True, group="actions", exit_on_error=False)
    def _resync_table(self, table: str) -> None:
        from cdc_tui.services.control import resync_pipeline

        action = f"resync {table} of"
        try:
            done = resync_pipeline(self.ctx, self.pipeline, table)
        except CdcTuiError as exc:
            self.post_message(ActionFinished(self.pipeline, action, exc.title, exc.message))
            return
        self.post_message(ActionFinished(self.pipeline, action, "; ".join(done) or "done"))

    @on(ActionFinished)
    def action_finished(self, message: ActionFinished) -> None:
        if message.error is not None:
            title = f"{message.action} {message.pipeline}: {message.summary}"
            self.app.push_screen(ErrorModal(title, message.error))
        else:
            self.notify(message.summary, title=f"{message.action} {message.pipeline}",
                        markup=False)  # fmt: skip

    def action_copy_trace(self) -> None:
        selected = self.query_one(ConnectorsPane).selected_trace()
        if selected is None:
            self.notify("The selected row has no trace to copy.", severity="warning")
            return
        name, trace = selected
        self.app.copy_to_clipboard(f"{name}: {trace}")
        self.notify("Trace copied to the clipboard.")

    def action_follow(self) -> None:
        self.follow = not self.follow
        self.notify("Following the logs." if self.follow else "Stopped following the logs.")

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(binding_rows(self)))
