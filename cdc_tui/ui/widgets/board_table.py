"""A keyed table of plain-text rows that repaints only the rows whose text changed.

Textual's DataTable renders every visible cell again after any `update_cell`, which cost about
120 ms per refresh with 200 pipelines; here each row is one cached strip, so a refresh that
changes five rows renders at most five lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

# A column never grows past this many cells (a long error is cut with an ellipsis).
MAX_COLUMN_CELLS = 48
# Cells of padding on each side of a cell's text.
PAD = 1

Cells = tuple[str, ...]
# (column key, text) -> a tone ("good", "warn", "bad") or None for the row's own colours.
Toner = Callable[[str, str], str | None]


def fit(text: str, width: int) -> str:
    """`text` cut or padded to exactly `width` cells, ending in an ellipsis when cut."""
    if text.isascii() and text.isprintable():
        if len(text) <= width:
            return text + " " * (width - len(text))
        return text[: width - 1] + "…"
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"


def text_width(text: str) -> int:
    return len(text) if text.isascii() else cell_len(text)


class BoardTable(ScrollView, can_focus=True):
    """Rows keyed by a string, shown in the order given to `set_rows`, with a row cursor.

    The first column holds the key and stays on screen when the others scroll sideways.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "board-table--header",
        "board-table--even-row",
        "board-table--odd-row",
        "board-table--cursor",
        "board-table--good",
        "board-table--warn",
        "board-table--bad",
    }

    DEFAULT_CSS = """
    BoardTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        & > .board-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .board-table--even-row { background: $surface-lighten-1 50%; }
        & > .board-table--odd-row { }
        & > .board-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .board-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .board-table--good { color: $text-success; }
        & > .board-table--warn { color: $text-warning; }
        & > .board-table--bad { color: $text-error; text-style: bold; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(-1)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
        Binding("left", "column(-1)", "Scroll left", show=False),
        Binding("right", "column(1)", "Scroll right", show=False),
    ]

    class RowActivated(Message):
        """The row under the cursor was clicked again (the keyboard path is the screen's Enter)."""

        def __init__(self, table: BoardTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> BoardTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[tuple[str, str]],
        *,
        toner: Toner | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.columns = tuple(columns)
        self.toner = toner
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, Cells] = {}
        self._widths = [text_width(label) for _key, label in self.columns]
        self._cursor = 0
        # key -> (cells, variant, strip); the widths and styles are fixed between clears.
        self._strips: dict[str, tuple[Cells, str, Strip]] = {}
        self._header: Strip | None = None
        self._styles: dict[str, Style] = {}

    # -- data -------------------------------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        """The row keys in display order."""
        return list(self._keys)

    @property
    def row_count(self) -> int:
        return len(self._keys)

    def row(self, key: str) -> Cells:
        """The text of one row; KeyError when no row has that key."""
        return self._cells[key]

    @property
    def cursor_key(self) -> str | None:
        return self._keys[self._cursor] if self._keys else None

    @property
    def cursor_row(self) -> int:
        return self._cursor

    def set_rows(self, rows: Sequence[tuple[str, Cells]]) -> None:
        """Show exactly `rows`, in this order; the cursor stays on its key while it is shown."""
        selected = self.cursor_key
        old_keys = self._keys
        keys = [key for key, _cells in rows]
        cells = dict(rows)
        widths = list(self._widths)
        for key, values in rows:
            if self._cells.get(key) != values:
                for i, text in enumerate(values):
                    w = min(text_width(text), MAX_COLUMN_CELLS)
                    if w > widths[i]:
                        widths[i] = w
        relayout = widths != self._widths or len(keys) != len(old_keys)
        if widths != self._widths:
            self._widths = widths
            self._clear_strips()
        changed = [
            y for y, key in enumerate(keys)
            if y >= len(old_keys) or old_keys[y] != key or self._cells.get(key) != cells[key]
        ]  # fmt: skip
        self._keys = keys
        self._index = {key: y for y, key in enumerate(keys)}
        self._cells = cells
        for key in [k for k in self._strips if k not in cells]:
            del self._strips[key]
        if relayout:
            self.virtual_size = Size(self._total_width(), len(keys) + 1)
        if selected is not None and selected in self._index:
            self._move(self._index[selected])
        else:
            self._move(min(self._cursor, max(len(keys) - 1, 0)))
        if relayout:
            self.refresh()
            return
        top = int(self.scroll_y)
        shown = range(top, top + max(self.size.height - 1, 0))
        for y in changed:
            if y in shown:
                self.refresh(Region(0, y - top + 1, self.size.width, 1))

    # -- cursor and keys --------------------------------------------------------------------

    def _move(self, row: int) -> None:
        row = max(0, min(row, len(self._keys) - 1)) if self._keys else 0
        if row != self._cursor:
            top = int(self.scroll_y)
            for old in (self._cursor, row):
                self.refresh(Region(0, old - top + 1, self.size.width, 1))
            self._cursor = row
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        visible = max(self.size.height - 1, 1)
        top = int(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, immediate=True)

    def move_cursor(self, row: int) -> None:
        self._move(row)

    def action_cursor(self, delta: int) -> None:
        self._move(self._cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move(self._cursor + direction * max(self.size.height - 2, 1))

    def action_edge(self, direction: int) -> None:
        self._move(0 if direction < 0 else len(self._keys) - 1)

    def action_column(self, delta: int) -> None:
        """Scroll sideways by one column; the first column (the key) stays put."""
        starts = [0]
        for width in self._widths[1:-1]:
            starts.append(starts[-1] + width + 2 * PAD)
        starts.append(self.max_scroll_x)  # the end of a long last column
        x = int(self.scroll_x)
        if delta > 0:
            target = next((s for s in sorted(starts) if s > x), x)
        else:
            target = next((s for s in sorted(starts, reverse=True) if s < x), 0)
        self.scroll_to(x=min(target, self.max_scroll_x), animate=False, immediate=True)

    def on_click(self, event: events.Click) -> None:
        row = int(self.scroll_y) + event.y - 1
        if event.y == 0 or not 0 <= row < len(self._keys):
            return
        if row == self._cursor:
            self.post_message(self.RowActivated(self, self._keys[row]))
        self._move(row)

    def _on_focus(self, event: events.Focus) -> None:
        self._restyle()

    def _on_blur(self, event: events.Blur) -> None:
        self._restyle()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._restyle()

    def _restyle(self) -> None:
        """Styles depend on focus and theme: drop every cached strip and repaint."""
        self._styles.clear()
        self._clear_strips()
        self.refresh()

    def _clear_strips(self) -> None:
        self._strips.clear()
        self._header = None

    # -- rendering --------------------------------------------------------------------------

    def _total_width(self) -> int:
        return sum(w + 2 * PAD for w in self._widths)

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"board-table--{name}")
        return style

    def _line(self, values: Sequence[str], base: Style, toned: bool) -> Strip:
        segments: list[Segment] = []
        pad = " " * PAD
        for (column, _label), width, text in zip(self.columns, self._widths, values, strict=True):
            style = base
            if toned and self.toner is not None and (tone := self.toner(column, text)):
                style = base + self._style(tone)
            segments.append(Segment(pad + fit(text, width) + pad, style))
        return Strip(segments, self._total_width())

    def _row_strip(self, y: int) -> tuple[Strip, Style]:
        key = self._keys[y]
        values = self._cells[key]
        variant = "cursor" if y == self._cursor else "even-row" if y % 2 else "odd-row"
        base = self.rich_style + self._style(variant)
        cached = self._strips.get(key)
        if cached is not None and cached[0] == values and cached[1] == variant:
            return cached[2], base
        strip = self._line(values, base, toned=variant != "cursor")
        self._strips[key] = (values, variant, strip)
        return strip, base

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x = int(self.scroll_x)
        if y == 0:
            base = self.rich_style + self._style("header")
            if self._header is None:
                self._header = self._line([label for _k, label in self.columns], base, False)
            strip = self._header
        else:
            row = int(self.scroll_y) + y - 1
            if not 0 <= row < len(self._keys):
                return Strip.blank(width, self.rich_style)
            strip, base = self._row_strip(row)
        fixed = self._widths[0] + 2 * PAD
        if scroll_x:
            # The key column stays on screen while the others scroll under it.
            rest = strip.crop(fixed + scroll_x, scroll_x + width)
            strip = Strip.join([strip.crop(0, fixed), rest])
        return strip.crop(0, width).extend_cell_length(width, base)
