"""Key remapping by binding id from `[console.keys]`, and the help screen that lists the keys.

The board reader returns a fixed Board (no clusters needed to look at bindings); the actions
themselves are exercised against real clusters in tests/integration/test_console.py.
"""

from __future__ import annotations

from pathlib import Path

from cdc_tui.services.context import build_context
from cdc_tui.ui.app import CdcTuiApp
from cdc_tui.ui.screens.help import HelpScreen
from tests.ui.test_snapshots import BOARD


async def test_a_remapped_binding_moves_to_its_new_key_and_help_shows_it(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'metadata_url = "sqlite:///{tmp_path / "m.db"}"\n\n'
        '[console.keys]\n"pipeline.validate" = "ctrl+t"\n"app.help" = "f1"\n'
    )
    ctx = build_context(config, environ={})
    try:
        app = CdcTuiApp(ctx, reader=lambda: BOARD)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("question_mark")  # no longer bound
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("f1")
            assert isinstance(app.screen, HelpScreen)
            keys = {row[2]: row[0] for row in app.screen.rows}
            assert keys["pipeline.validate"] == "^t"
            assert keys["pipeline.start"] == "s"
    finally:
        ctx.close()
