"""BoardTable: keyed rows, a cursor that follows its key, and repaints of changed rows only."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual.app import App, ComposeResult

from cdc_tui.ui.widgets.board_table import MAX_COLUMN_CELLS, BoardTable, fit

COLUMNS = (("name", "Name"), ("state", "State"), ("lag", "Lag"), ("note", "Note"))


def rows(count: int, **states: str) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for i in range(count):
        key = f"p{i:03d}"
        out.append((key, (key, states.get(key, "RUNNING"), f"{i} kB", "")))
    return out


class TableApp(App[None]):
    def __init__(self, initial: list[tuple[str, tuple[str, ...]]]) -> None:
        super().__init__()
        self.initial = initial
        self.activated: list[str] = []

    def compose(self) -> ComposeResult:
        yield BoardTable(COLUMNS, toner=lambda column, text: "bad" if text == "ERROR" else None)

    def on_mount(self) -> None:
        table = self.query_one(BoardTable)
        table.set_rows(self.initial)
        table.focus()

    def on_board_table_row_activated(self, event: BoardTable.RowActivated) -> None:
        self.activated.append(event.key)


def line_text(table: BoardTable, y: int) -> str:
    return table.render_line(y).text


def count_renders(table: BoardTable) -> list[tuple[str, ...]]:
    """Record every row or header the table renders from scratch (cache misses)."""
    rendered: list[tuple[str, ...]] = []
    line = table._line

    def recording(values: Any, base: Any, toned: bool) -> Any:
        rendered.append(tuple(values))
        return line(values, base, toned)

    table._line = recording  # type: ignore[method-assign]
    return rendered


def test_fit_pads_cuts_and_counts_wide_characters() -> None:
    assert fit("abc", 5) == "abc  "
    assert fit("abcdef", 4) == "abc…"
    assert cell_len(fit("注文テーブル", 5)) == 5
    assert fit("注文テーブル", 5).endswith("…")
    assert cell_len(fit("注文", 6)) == 6


async def test_only_changed_rows_are_rendered_again() -> None:
    app = TableApp(rows(200))
    async with app.run_test(size=(80, 20)) as pilot:
        table = app.query_one(BoardTable)
        await pilot.pause()
        rendered = count_renders(table)
        table.set_rows(rows(200))  # same text: nothing to paint
        await pilot.pause()
        assert rendered == []
        table.set_rows(rows(200, p003="ERROR", p150="ERROR"))  # p150 is off screen
        await pilot.pause()
        assert rendered == [("p003", "ERROR", "3 kB", "")]
        assert table.row("p150")[1] == "ERROR"
        assert "ERROR" in line_text(table, 4)  # header, then p000 .. p003


async def test_cursor_follows_its_key_through_reordering_and_removal() -> None:
    app = TableApp(rows(10))
    async with app.run_test(size=(80, 20)) as pilot:
        table = app.query_one(BoardTable)
        await pilot.press("down", "down", "down")
        assert table.cursor_key == "p003"
        table.set_rows(list(reversed(rows(10))))
        assert table.cursor_key == "p003"
        assert table.cursor_row == 6
        table.set_rows([r for r in rows(10) if r[0] != "p003"])
        assert table.cursor_key is not None and table.cursor_key != "p003"
        table.set_rows([])
        assert table.cursor_key is None
        assert table.row_count == 0


async def test_header_stays_on_top_and_the_cursor_scrolls_into_view() -> None:
    app = TableApp(rows(100))
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(BoardTable)
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor_key == "p099"
        assert table.scroll_y > 0
        assert line_text(table, 0).split()[:3] == ["Name", "State", "Lag"]
        visible = [line_text(table, y).split()[0] for y in range(1, table.size.height)]
        assert "p099" in visible
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_key == "p000"
        assert line_text(table, 1).split()[0] == "p000"


async def test_sideways_scrolling_keeps_the_key_column() -> None:
    long_note = "x" * 200
    wide = [(k, (*cells[:3], long_note)) for k, cells in rows(3)]
    app = TableApp(wide)
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.query_one(BoardTable)
        await pilot.press("right", "right", "right")
        await pilot.pause()
        assert table.scroll_x > 0
        line = line_text(table, 1)
        assert line.startswith(" p000 ")
        assert "RUNNING" not in line  # the State column scrolled away under the key column
        await pilot.press("right", "right", "right")  # past the last column: clamped
        await pilot.pause()
        assert table.scroll_x == table.max_scroll_x
        assert line_text(table, 1).rstrip().endswith("x…")  # the note is capped
        assert table.virtual_size.width < 200
        assert MAX_COLUMN_CELLS < 200


async def test_clicking_the_cursor_row_activates_it() -> None:
    app = TableApp(rows(5))
    async with app.run_test(size=(80, 12)) as pilot:
        await pilot.click(BoardTable, offset=(2, 3))  # moves the cursor to p002
        assert app.activated == []
        assert app.query_one(BoardTable).cursor_key == "p002"
        await pilot.click(BoardTable, offset=(2, 3))
        await pilot.pause()
        assert app.activated == ["p002"]


async def test_the_toner_colours_cells_but_not_the_cursor_row() -> None:
    app = TableApp(rows(3, p001="ERROR"))
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(BoardTable)
        await pilot.pause()
        bad = table.get_component_rich_style("board-table--bad")
        styles = {seg.text.strip(): seg.style for seg in table.render_line(2) if seg.text.strip()}
        assert styles["ERROR"] is not None and styles["ERROR"].color == bad.color
        await pilot.press("down")
        await pilot.pause()
        styles = {seg.text.strip(): seg.style for seg in table.render_line(2) if seg.text.strip()}
        assert styles["ERROR"] == styles["p001"]
