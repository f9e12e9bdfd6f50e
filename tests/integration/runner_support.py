"""Driving the real `cdc-tui` binary against real clusters, and waiting for convergence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.cli_env import SOURCE_ROLE, CliEnv, make_cli_env
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


# -- fault injection ----------------------------------------------------------------------------


def wait_status(
    cli: Cli,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float,
    what: str,
    poll: float = 0.3,
) -> dict[str, Any]:
    """Poll `cdc-tui status NAME --json` until `predicate(doc)`; return that document."""
    seen: list[dict[str, Any]] = []

    def check() -> bool:
        seen.append(cli.status(name))
        del seen[:-1]
        return predicate(seen[-1])

    try:
        wait_until(check, timeout, what, poll)
    except AssertionError as exc:
        last = seen[-1] if seen else None
        raise AssertionError(f"{exc}; last status: {json.dumps(last)[:2000]}") from None
    return seen[-1]


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][:1] == "Z"
    except (OSError, IndexError):
        return True


def kill_runner(cli: Cli, name: str) -> int:
    """SIGKILL the pipeline's runner (pid from its lease) and wait until it is gone."""
    pid = int(cli.status(name)["runner"]["pid"])
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: process_gone(pid), 30, f"runner pid {pid} to die")
    return pid


def runner_pids(config: Path, name: str) -> list[int]:
    """Live `cdc-tui run NAME` processes started with this config file."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        wanted = "run" in words and name in words and str(config) in words
        if wanted and not process_gone(int(entry.name)):
            found.append(int(entry.name))
    return found


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set size of `pid` in KiB (VmHWM in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


def slot_info(source: Database, pipeline: str) -> dict[str, Any] | None:
    """The pipeline's row of pg_replication_slots (plus retained bytes), or None."""
    with source.admin() as conn:
        cur = conn.execute(
            "SELECT slot_name, active, active_pid, wal_status, restart_lsn::text,"
            " confirmed_flush_lsn::text,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_bytes"
            " FROM pg_replication_slots WHERE slot_name = %s",
            (f"cdc_tui_{pipeline}",),
        )
        row = cur.fetchone()
        if row is None:
            return None
        assert cur.description is not None
        return dict(zip([d.name for d in cur.description], row, strict=True))


def add_source_tables(source: Database, ddl: str, *tables: str) -> None:
    """Run `ddl` on the source, then hand `tables` to the pipeline's least-privilege role."""
    source.execute(ddl)
    for table in tables:
        source.execute(f"ALTER TABLE {table} OWNER TO {SOURCE_ROLE}")


@contextmanager
def pipeline_cli(
    tmp_path: Path,
    source: Database,
    target: Database,
    pipeline: str,
    *,
    metadata_url: str | None = None,
    runner_toml: str = "",
) -> Iterator[Cli]:
    """A CLI (SQLite metadata DB unless `metadata_url`, plus `[runner]` settings) that stops
    `pipeline` at the end."""
    url = metadata_url or f"sqlite:///{tmp_path / 'm.db'}"
    env = make_cli_env(tmp_path, url, source, target)
    if runner_toml:
        with env.config.open("a") as fh:
            fh.write(f"\n[runner]\n{runner_toml}\n")
    cli = Cli(env, tmp_path / "home")
    try:
        yield cli
    finally:
        cli.run("stop", pipeline, "--wait", "--timeout", "60", check=False)


def create_pipeline(cli: Cli, name: str, *tables: str) -> None:
    cli.run("pipeline", "create", name, "--source", "src", "--target", "tgt",
            "--tables", ",".join(tables))  # fmt: skip


def start_running(cli: Cli, name: str) -> None:
    cli.run("start", name, "--wait", "running", "--timeout", "120")
