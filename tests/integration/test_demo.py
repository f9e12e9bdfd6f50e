"""`cdc-tui demo` (the README's first command) starts, shows the pipeline live, and cleans up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

CDC_TUI = str(Path(sys.executable).parent / "cdc-tui")


def test_demo_runs_and_removes_its_cluster(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDC_TUI_")}
    env["HOME"] = str(tmp_path)
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.run(
        [CDC_TUI, "demo", "--duration", "4", "--interval", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Created pipeline 'demo'" in out
    assert "check error" not in out, out
    assert 'CREATE TABLE IF NOT EXISTS "shop"."Order Items"' in out
    assert "Warning" not in proc.stderr, proc.stderr
    assert "Step 1: full load complete" in out
    status_lines = [line for line in out.splitlines() if "status=RUNNING" in line]
    assert len(status_lines) >= 2, out
    assert all("cdc=RUNNING" in line and "health=healthy" in line for line in status_lines)
    changes = [int(m) for m in re.findall(r"writer: (\d+) changes", out)]
    assert changes[-1] > 0, "the writer made no change"
    assert not list(tmp_path.glob("cdc-tui-demo-*")), "the demo left its directory behind"
    assert leftover_runners(tmp_path) == [], "the demo left its runner running"


def leftover_runners(tmp_path: Path) -> list[str]:
    """Processes (runner, embedded PostgreSQL) still running from the demo's directory."""
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        if str(tmp_path) in cmdline and ("run" in cmdline or "postgres" in cmdline):
            leftovers.append(cmdline.replace("\0", " "))
    return leftovers


def test_a_terminated_demo_still_removes_everything(tmp_path: Path) -> None:
    """SIGTERM (or SIGHUP, a lost SSH session) ends the demo like Ctrl-C: nothing is left."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDC_TUI_")}
    env["HOME"] = str(tmp_path)
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [CDC_TUI, "demo", "--no-console", "--interval", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        seen = ""
        while "status=RUNNING" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert "status=RUNNING" in seen, seen
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Stopping the demo." in out, err
    assert not list(tmp_path.glob("cdc-tui-demo-*")), "the demo left its directory behind"
    assert leftover_runners(tmp_path) == [], "the demo left processes behind"


def test_kafka_connect_demo_streams_through_debezium_and_stops_its_stack(tmp_path: Path) -> None:
    from cdc_tui import kafka_stack as ks

    env = {k: v for k, v in os.environ.items() if not k.startswith("CDC_TUI_")}
    env["HOME"] = str(tmp_path)
    env["TMPDIR"] = str(tmp_path)
    env["CDC_TUI_KAFKA_HOME"] = str(ks.default_home())  # the machine's jar cache, not a new one
    proc = subprocess.run(
        [CDC_TUI, "demo", "--engine", "kafka_connect", "--duration", "12", "--interval", "2"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    out = proc.stdout
    assert "Step 2: created connector cdc-tui.demo." in out
    assert "REPLICA IDENTITY FULL" in out
    status_lines = [line for line in out.splitlines() if "status=RUNNING" in line]
    assert status_lines and all("cdc=RUNNING" in line for line in status_lines), out
    assert not list(tmp_path.glob("cdc-tui-demo-*")), "the demo left its directory behind"
    java = [c for c in leftover_processes(tmp_path) if "java" in c]
    assert java == [], "the demo left its Kafka stack running"
    assert leftover_runners(tmp_path) == []


def leftover_processes(tmp_path: Path) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        if str(tmp_path) in cmdline:
            found.append(cmdline.replace("\0", " "))
    return found
