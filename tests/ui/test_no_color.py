"""NO_COLOR: the console draws in greys only, and what colour said is still readable."""

from __future__ import annotations

import pytest
from rich.style import Style
from textual.app import App

from cdc_tui.services.context import AppContext
from cdc_tui.ui.widgets.board_table import BoardTable
from tests.ui.test_snapshots import app_for, ctx  # noqa: F401 - the fixture is used by name


def screen_lines(app: App[None]) -> list[list[tuple[str, Style | None]]]:
    """The screen as drawn, after the app's line filters (where NO_COLOR takes effect)."""
    return [
        [(seg.text, seg.style) for seg in strip] for strip in app.screen._compositor.render_strips()
    ]


def is_grey(style: Style | None) -> bool:
    if style is None:
        return True
    for color in (style.color, style.bgcolor):
        if color is None or color.is_default:
            continue
        r, g, b = color.get_truecolor()
        if not r == g == b:
            return False
    return True


def cell_style(line: list[tuple[str, Style | None]], text: str) -> Style | None:
    return next(style for seg, style in line if seg.strip() == text)


@pytest.fixture
def no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.mark.usefixtures("no_color")
async def test_no_color_draws_in_greys_only(ctx: AppContext) -> None:  # noqa: F811
    app = app_for(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        assert app.no_color
        lines = screen_lines(app)
        coloured = [(text, style) for line in lines for text, style in line if not is_grey(style)]
        assert coloured == []
        # Without colour, a failed pipeline's health still stands out: it is bold.
        table = app.screen.query_one(BoardTable)
        y = table.region.y + 1 + table.keys.index("payments")
        failed = cell_style(lines[y], "failed")
        healthy = cell_style(lines[table.region.y + 1 + table.keys.index("orders")], "healthy")
        assert failed is not None and failed.bold
        assert healthy is None or not healthy.bold
        # The cursor row stays distinguishable by its background.
        cursor_y = table.region.y + 1 + table.cursor_row
        other_y = cursor_y + 1
        assert lines[cursor_y][0][1] != lines[other_y][0][1]


async def test_with_colour_the_health_cells_are_coloured(ctx: AppContext) -> None:  # noqa: F811
    """The control: the same screen in colour does use colour, so the test above can fail."""
    app = app_for(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        assert not app.no_color
        lines = screen_lines(app)
        table = app.screen.query_one(BoardTable)
        y = table.region.y + 1 + table.keys.index("payments")
        assert not is_grey(cell_style(lines[y], "failed"))
