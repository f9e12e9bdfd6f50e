"""The installed `cdc-tui` console in a real terminal (tmux): start a pipeline from the keyboard,
read its Step 1 log on the pipeline screen, quit, and check the pipeline keeps replicating."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.runner_support import (
    CDC_TUI,
    Cli,
    create_pipeline,
    pipeline_cli,
    wait_converged,
)
from tests.pg import Database

pytestmark = pytest.mark.integration

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NAME = "orders"
TABLES = ("shop.customers",)
WIDTH, HEIGHT = 120, 40
PANE_TIMEOUT = 60.0
# A line of the Step 1 log as the Logs tab shows it ("HH:MM:SS INFO    Step 1: ..."), which the
# "Step 1" title above that log cannot match.
STEP1_LINE = re.compile(r"\d\d:\d\d:\d\d INFO +Step 1: \S")


def tmux_binary() -> str:
    found = "/usr/bin/tmux" if Path("/usr/bin/tmux").is_file() else shutil.which("tmux")
    if found is None:
        message = "tmux is not installed: the console cannot be run in a real terminal."
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


@dataclass
class Tmux:
    """One detached session on a private tmux server (its own socket name)."""

    binary: str
    socket: str
    session: str
    environ: dict[str, str]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.binary, "-f", "/dev/null", "-L", self.socket, *argv], env=self.environ,
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(argv)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session).stdout

    def send(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def alive(self) -> bool:
        return self.run("has-session", "-t", self.session, check=False).returncode == 0


def wait_pane(
    tmux: Tmux, check: Callable[[str], bool], what: str, timeout: float = PANE_TIMEOUT
) -> str:
    """Capture the pane until `check(pane)` holds; fail with the last capture."""
    deadline = time.monotonic() + timeout
    pane = ""
    while time.monotonic() < deadline:
        if not tmux.alive():
            raise AssertionError(f"the console exited while waiting for {what}; last pane:\n{pane}")
        pane = tmux.capture()
        if check(pane):
            return pane
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last pane:\n{pane}")


def row_shows(status: str) -> Callable[[str], bool]:
    """The pipelines table has the pipeline's row with `status` in it."""
    return lambda pane: any(
        NAME in line.split() and status in line.split() for line in pane.splitlines()
    )


@pytest.fixture
def cli(tmp_path: Path, source_db: Database, target_db: Database) -> Iterator[Cli]:
    with pipeline_cli(tmp_path, source_db, target_db, NAME) as c:
        create_pipeline(c, NAME, *TABLES)
        yield c


@pytest.fixture
def tmux(cli: Cli) -> Iterator[Tmux]:
    binary = tmux_binary()
    server = Tmux(binary, f"cdc-tui-test-{uuid.uuid4().hex[:12]}", "console", cli.environ())
    try:
        yield server
    finally:
        server.run("kill-server", check=False)


def test_console_in_a_real_terminal_starts_shows_logs_and_quits(
    tmp_path: Path, cli: Cli, tmux: Tmux, source_db: Database, target_db: Database
) -> None:
    exit_file = tmp_path / "console.exit"
    # sh whatever the login shell; the exit status is kept to tell a clean quit from a crash.
    script = f"TERM=xterm-256color {shlex.quote(CDC_TUI)}; echo $? > {shlex.quote(str(exit_file))}"
    command = shlex.join(["sh", "-c", script])
    passed = {k: v for k, v in cli.environ().items() if k.startswith("CDC_TUI_") or k == "HOME"}
    tmux.run(
        "new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), "-s", tmux.session,
        "-c", str(tmp_path), *[f"-e{k}={v}" for k, v in passed.items()], command,
    )  # fmt: skip

    wait_pane(tmux, row_shows("STOPPED"), "the pipeline row, STOPPED")
    tmux.send("s")
    wait_pane(tmux, row_shows("RUNNING"), "the pipeline row, RUNNING")

    tmux.send("Enter")
    wait_pane(tmux, lambda p: f"Pipeline     {NAME}" in p and "Logs" in p, "the pipeline screen")
    # The tab bar has the focus on the pipeline screen: right arrow moves Overview > Tables > Logs.
    tmux.send("Right")
    tmux.send("Right")
    pane = wait_pane(
        tmux,
        lambda p: "Step 0" in p and "Step 2" in p and bool(STEP1_LINE.search(p)),
        "a Step 1 log line on the Logs tab",
    )
    assert "Pipeline     " not in pane, f"still on the Overview tab:\n{pane}"

    tmux.send("q")
    deadline = time.monotonic() + 30
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not tmux.alive(), f"the console did not exit on q; pane:\n{tmux.capture()}"
    assert exit_file.is_file(), "the shell around the console did not record its exit status"
    assert exit_file.read_text().strip() == "0", "the console exited with an error"

    source_db.execute("INSERT INTO shop.customers VALUES (9003, 'after the tmux console', NULL)")
    wait_converged(source_db, target_db, [("shop", "customers", ["id"])])
    assert cli.status(NAME)["cdc_status"] == "RUNNING"
