"""The Connectors tab: Kafka Connect's view of a pipeline's connectors, their tasks and traces."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Static, TextArea

from cdc_tui.ui.formatting import DASH

COLUMNS = (
    ("name", "Connector/task"),
    ("role", "Role"),
    ("state", "State"),
    ("worker", "Worker"),
)
# Connect states that deserve a colour; NO_COLOR keeps only the bold of "bad".
TONES = {
    "RUNNING": "good",
    "FAILED": "bad",
    "MISSING": "warn",
    "UNASSIGNED": "warn",
    "PAUSED": "warn",
    "STOPPED": "warn",
    "RESTARTING": "warn",
}
NO_TRACE = "no trace"
EMBEDDED = (
    "The embedded engine has no connectors: its runner streams the slot itself (see the Slot tab)."
)
NO_CONNECT = "Kafka Connect  unknown: the status names no Connect worker for this pipeline."

# (row key, cells, what the row is called when copied, trace)
Row = tuple[str, tuple[str, str, str, str], str, str | None]


def task_key(connector: str, task: Any) -> str:
    return f"{connector}/task/{task}"


def connector_rows(connectors: list[dict[str, Any]]) -> list[Row]:
    """One row per connector, then one per task of it, in the order Connect gave them."""
    rows: list[Row] = []
    for c in connectors:
        name = c["name"]
        cells = (name, c.get("role") or c.get("type") or DASH, c.get("state") or DASH,
                 c.get("worker_id") or DASH)  # fmt: skip
        rows.append((name, cells, name, c.get("trace")))
        for t in c.get("tasks") or []:
            cells = (f"└ task {t['id']}", "", t.get("state") or DASH, t.get("worker_id") or DASH)
            rows.append((task_key(name, t["id"]), cells, f"{name} task {t['id']}", t.get("trace")))
    return rows


def connect_line(connect: dict[str, Any] | None) -> tuple[str, bool]:
    """The Connect URL and whether it answers; True when the line is a warning."""
    if not connect:
        return NO_CONNECT, True
    if connect.get("reachable"):
        return f"Kafka Connect  {connect.get('url') or DASH}  reachable", False
    return connect.get("error") or f"Kafka Connect at {connect.get('url')} is unreachable.", True


class ConnectorsTable(DataTable[Text]):
    """A DataTable whose state cells take their colours from the theme (see console.tcss)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {
        "connectors-table--good",
        "connectors-table--warn",
        "connectors-table--bad",
    }

    def cell(self, column: str, text: str) -> Text:
        tone = TONES.get(text) if column == "state" else None
        if tone is None:
            return Text(text)
        style = self.get_component_rich_style(f"connectors-table--{tone}", partial=True)
        return Text(text, style=style)


class ConnectorsPane(Vertical):
    """Connect's URL and reachability, a row per connector and task, the selected row's trace."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.names: dict[str, str] = {}
        self.traces: dict[str, str | None] = {}
        # False until a document says the engine is Kafka Connect (the screen shows `c` then).
        self.shows_traces = False

    def compose(self) -> ComposeResult:
        yield Static("loading...", id="connect-status", markup=False)
        table = ConnectorsTable(id="connectors-table", cursor_type="row")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("Trace of the selected row", classes="log-title connect-only")
        # Read-only text, like the error modal's: never parsed as markup, scrolled with the keys.
        yield TextArea(NO_TRACE, read_only=True, soft_wrap=True, id="connector-trace",
                       classes="connect-only")  # fmt: skip

    def update_from(self, doc: dict[str, Any]) -> None:
        """Show one status document; rows are updated by key, so the cursor stays put."""
        embedded = doc.get("engine") == "embedded"
        self._engine(embedded)
        line, warning = (EMBEDDED, False) if embedded else connect_line(doc.get("connect"))
        status = self.query_one("#connect-status", Static)
        status.update(line)
        status.set_class(warning, "-warning")
        if not embedded:
            self._rows(connector_rows(doc.get("connectors") or []))

    def _engine(self, embedded: bool) -> None:
        """The embedded engine hides the table and the trace, and the screen hides `c`."""
        self.set_class(embedded, "-embedded")
        if self.shows_traces == embedded:
            self.shows_traces = not embedded
            self.screen.refresh_bindings()

    def _rows(self, rows: list[Row]) -> None:
        self.set_class(not rows, "-no-rows")
        self.names = {key: name for key, _cells, name, _trace in rows}
        self.traces = {key: trace for key, _cells, _name, trace in rows}
        self._sync(rows)
        self._show_trace(self.selected_key())

    def _sync(self, rows: list[Row]) -> None:
        table = self.query_one(ConnectorsTable)
        if [key.value for key in table.rows] != [key for key, *_ in rows]:
            self._rebuild(table, rows)
            return
        for key, values, _name, _trace in rows:
            for (column, _label), old, text in zip(
                COLUMNS, table.get_row(key), values, strict=True
            ):
                new = table.cell(column, text)
                if old.plain != new.plain or old.style != new.style:
                    table.update_cell(key, column, new)

    def _rebuild(self, table: ConnectorsTable, rows: list[Row]) -> None:
        """A connector or task came or went: lay the rows out again, the cursor on its key."""
        selected = self.selected_key()
        table.clear()
        for key, values, _name, _trace in rows:
            cells = zip(COLUMNS, values, strict=True)
            table.add_row(*(table.cell(column, text) for (column, _label), text in cells), key=key)
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected), animate=False)

    def selected_key(self) -> str | None:
        table = self.query_one(ConnectorsTable)
        if table.row_count == 0:
            return None
        row_key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        return row_key.value

    @on(DataTable.RowHighlighted, "#connectors-table")
    def row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_trace(event.row_key.value)

    def _show_trace(self, key: str | None) -> None:
        trace = (self.traces.get(key) if key is not None else None) or NO_TRACE
        area = self.query_one("#connector-trace", TextArea)
        if area.text != trace:  # reloading would move the reader back to the top
            area.load_text(trace)

    def selected_trace(self) -> tuple[str, str] | None:
        """(what the selected row is called, its trace), or None when it has no trace."""
        key = self.selected_key()
        trace = self.traces.get(key) if key is not None else None
        if key is None or not trace:
            return None
        return self.names[key], trace
