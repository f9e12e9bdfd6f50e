"""Driving the real `cdc-tui` binary against real clusters, and waiting for convergence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.cli_env import CliEnv
from tests.pg import Database
from tests.tables import table_checksum

CDC_TUI = str(Path(sys.executable).parent / "cdc-tui")


@dataclass
class Cli:
    """Runs `cdc-tui` as a user would, with the test's config and secrets in the environment."""

    env: CliEnv
    home: Path

    def environ(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("CDC_TUI_")}
        base.update(self.env.env)
        base["HOME"] = str(self.home)
        return base

    def run(
        self, *argv: str, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [CDC_TUI, *argv], env=self.environ(), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(
                f"cdc-tui {' '.join(argv)} exited {proc.returncode}: {proc.stderr}"
            )
        return proc

    def status(self, name: str) -> dict[str, Any]:
        return json.loads(self.run("status", name, "--json").stdout)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def tables_equal(
    source: Database, target: Database, tables: Sequence[tuple[str, str, Sequence[str]]]
) -> bool:
    """True when every (schema, table, key) has the same count and checksum on both sides."""
    return all(
        table_checksum(source, s, t, k) == table_checksum(target, s, t, k) for s, t, k in tables
    )


def wait_converged(
    source: Database,
    target: Database,
    tables: Sequence[tuple[str, str, Sequence[str]]],
    timeout: float = 60,
) -> None:
    wait_until(lambda: tables_equal(source, target, tables), timeout, "target to equal source")
    for s, t, k in tables:
        assert table_checksum(source, s, t, k) == table_checksum(target, s, t, k), (s, t)


def source_objects(source: Database, pipeline: str) -> tuple[int, int]:
    """(slots, publications) named after the pipeline on the source."""
    name = f"cdc_tui_{pipeline}"
    slots = source.scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (name,))
    pubs = source.scalar("SELECT count(*) FROM pg_publication WHERE pubname = %s", (name,))
    return int(slots), int(pubs)  # type: ignore[call-overload]
