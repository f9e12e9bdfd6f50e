"""Only cdc_tui.ui may import Textual: import every other module in a fresh interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import cdc_tui


def _headless_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(cdc_tui.__path__, prefix="cdc_tui."):
        if info.name == "cdc_tui.ui" or info.name.startswith("cdc_tui.ui."):
            continue
        if ".migrations." in info.name or info.name == "cdc_tui.__main__":
            continue  # alembic env scripts run only inside alembic; __main__ runs the CLI
        names.append(info.name)
    return names


def test_headless_packages_do_not_load_textual() -> None:
    modules = _headless_modules()
    for required in ("cdc_tui.cli", "cdc_tui.services.status", "cdc_tui.store.db"):
        assert required in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(loaded))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"textual was imported: {proc.stdout.strip()}"
