"""The benchmark's world: two throwaway clusters, a metadata DB, a config, the real CLI.

Everything created here is registered with a `Cleanup` so it goes away again (runner
processes first, then the clusters, then the temp dir) even on a failure or Ctrl-C.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from cdc_tui.localpg import LocalCluster, PgBinaries, find_binaries

CDC_TUI = str(Path(sys.executable).parent / "cdc-tui")
SOURCE_DB = "bench_src"
TARGET_DB = "bench_tgt"  # cdc-tui's target
PIPE_DB = "bench_pipe"  # the psql | psql baseline's target
NATIVE_DB = "bench_native"  # the native logical replication baseline's target


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def lsn_int(text: str | None) -> int:
    if not text:
        return 0
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


# -- cleanup ---------------------------------------------------------------------------------


class Cleanup:
    """Callbacks run last-in first-out; each one's failure is reported, never fatal."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], None]]] = []

    def push(self, what: str, action: Callable[[], None]) -> None:
        self._actions.append((what, action))

    def run(self) -> None:
        # A second Ctrl-C during cleanup must not leave clusters behind.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            while self._actions:
                what, action = self._actions.pop()
                try:
                    action()
                except Exception as exc:
                    log(f"cleanup: {what} failed: {exc}")
        finally:
            signal.signal(signal.SIGINT, old)


def sigterm_as_interrupt() -> None:
    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    # Even when started in the background with SIGINT ignored, Ctrl-C / kill -INT cleans up.
    signal.signal(signal.SIGINT, signal.default_int_handler)


# -- processes -------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kib(value: str) -> int:
    return int(value.split()[0])


def is_our_runner(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"cdc_tui" in cmd and b"run" in cmd


def kill_runner(pid: int) -> None:
    """SIGTERM a runner this benchmark started, then SIGKILL it if it lingers."""
    if not is_our_runner(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and is_our_runner(pid):
        time.sleep(0.1)
    if is_our_runner(pid):
        os.kill(pid, signal.SIGKILL)


# -- the environment -------------------------------------------------------------------------


@dataclass
class BenchEnv:
    workdir: Path
    source: LocalCluster
    target: LocalCluster
    config: Path
    metadata: Path
    cleanup: Cleanup
    pipelines: list[str] = field(default_factory=list)
    runner_pids: set[int] = field(default_factory=set)

    # -- SQL ----------------------------------------------------------------------------------

    @contextmanager
    def conn(self, cluster: LocalCluster, db: str) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(cluster.admin_conninfo(db), autocommit=True) as c:
            yield c

    def src(self) -> Any:
        return self.conn(self.source, SOURCE_DB)

    def tgt(self, db: str = TARGET_DB) -> Any:
        return self.conn(self.target, db)

    def scalar(self, cluster: LocalCluster, db: str, query: str, params: Any = None) -> Any:
        with self.conn(cluster, db) as c:
            row = c.execute(query.encode(), params).fetchone()
            return None if row is None else row[0]

    def checkpoint(self) -> None:
        for cluster in (self.source, self.target):
            with self.conn(cluster, "postgres") as c:
                c.execute("CHECKPOINT")

    # -- CLI ----------------------------------------------------------------------------------

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CDC_TUI_", "PG"))}
        env["CDC_TUI_CONFIG"] = str(self.config)
        env["HOME"] = str(self.workdir / "home")
        return env

    def cli(
        self, *argv: str, check: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([CDC_TUI, *argv], env=self.environ(), capture_output=True,
                              text=True, timeout=timeout, check=False)  # fmt: skip
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"cdc-tui {' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}"
            )
        return proc

    def status(self, name: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.cli("status", name, "--json").stdout)
        runner = doc.get("runner") or {}
        if runner.get("pid"):
            self.runner_pids.add(int(runner["pid"]))
        return doc

    def create_pipeline(self, name: str, tables: str, mode: str) -> None:
        self.cli("pipeline", "create", name, "--source", "src", "--target", "tgt",
                 "--tables", tables, "--mode", mode)  # fmt: skip
        self.pipelines.append(name)

    def drop_pipeline(self, name: str) -> None:
        self.cli("drop", name)
        if name in self.pipelines:
            self.pipelines.remove(name)

    def stop_pipeline(self, name: str) -> None:
        self.cli("stop", name, "--wait", "--timeout", "300")

    def runner_pid(self, name: str) -> int | None:
        pid = (self.status(name).get("runner") or {}).get("pid")
        return int(pid) if pid else None

    def step_log(self, name: str, step: int) -> list[str]:
        """The pipeline's step log lines, read straight from the metadata SQLite file."""
        import sqlite3

        with sqlite3.connect(f"file:{self.metadata}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT l.message FROM step_logs l JOIN pipelines p ON p.id = l.pipeline_id "
                "WHERE p.name = ? AND l.step = ? ORDER BY l.id", (name, step)
            ).fetchall()  # fmt: skip
        return [r[0] for r in rows]

    def timeline(self, name: str) -> list[tuple[str, str, str]]:
        """(at, what, text) of the pipeline's events and step log lines, in time order."""
        import sqlite3

        with sqlite3.connect(f"file:{self.metadata}?mode=ro", uri=True) as db:
            logs = db.execute(
                "SELECT l.at, 'step' || l.step, l.message FROM step_logs l "
                "JOIN pipelines p ON p.id = l.pipeline_id WHERE p.name = ?", (name,)
            ).fetchall()  # fmt: skip
            events = db.execute(
                "SELECT at, kind, coalesce(field || ' ' || from_value || '->' || to_value "
                "|| ': ', '') || reason FROM events WHERE pipeline_name = ?", (name,)
            ).fetchall()  # fmt: skip
        return sorted((str(a), str(b), str(c)) for a, b, c in logs + events)

    def stop_all_runners(self) -> None:
        for name in list(self.pipelines):
            with suppress(Exception):
                self.status(name)
            self.cli("stop", name, "--wait", "--timeout", "60", check=False, timeout=120)
        for pid in sorted(self.runner_pids):
            kill_runner(pid)

    # -- machine ------------------------------------------------------------------------------

    def machine(self) -> dict[str, Any]:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))

        def version(cluster: LocalCluster) -> str:
            return str(self.scalar(cluster, "postgres", "SHOW server_version"))

        return {
            "nproc": len(os.sched_getaffinity(0)),
            "memory_mb": mem_kb // 1024,
            "loadavg_at_start": list(os.getloadavg()),
            "source_postgres": version(self.source),
            "target_postgres": version(self.target),
            "source_bindir": str(self.source.binaries.bindir),
            "target_bindir": str(self.target.binaries.bindir),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "hostname": socket.gethostname(),
            "postgres_settings": "localpg defaults: fsync=off, full_page_writes=off, "
            "shared_buffers=64MB, wal_level=logical",
        }


def pick_binaries() -> tuple[PgBinaries, PgBinaries]:
    """(oldest, newest) major available; the same one twice when only one is installed."""
    found = find_binaries()
    if not found:
        raise SystemExit("no PostgreSQL binaries found (install pgserver or Debian's postgresql)")
    by_major: dict[int, PgBinaries] = {}
    for b in found:
        by_major.setdefault(b.major, b)
    majors = sorted(by_major)
    return by_major[majors[0]], by_major[majors[-1]]


def _secret_file(path: Path, password: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    path.chmod(0o600)
    return path


def start_env(cleanup: Cleanup) -> BenchEnv:
    workdir = Path(tempfile.mkdtemp(prefix="cdc-tui-bench-"))
    cleanup.push(f"remove {workdir}", lambda: __import__("shutil").rmtree(workdir, True))
    old, new = pick_binaries()
    clusters = []
    for role, binaries in (("source", old), ("target", new)):
        cluster = LocalCluster(workdir / role, binaries)
        cleanup.push(f"destroy {role} cluster", cluster.destroy)
        cluster.init()
        cluster.start()
        log(
            f"{role} cluster: PostgreSQL {binaries.major} ({binaries.origin}) "
            f"on port {cluster.port}"
        )
        clusters.append(cluster)
    source, target = clusters
    for cluster, dbs in ((source, [SOURCE_DB]), (target, [TARGET_DB, PIPE_DB, NATIVE_DB])):
        with psycopg.connect(cluster.admin_conninfo(), autocommit=True) as c:
            for db in dbs:
                c.execute(f"CREATE DATABASE {db}".encode())
    secrets = workdir / "secrets"
    secrets.mkdir(mode=0o700)
    src_pw = _secret_file(secrets / "source.pw", source.superuser_password)
    tgt_pw = _secret_file(secrets / "target.pw", target.superuser_password)
    metadata = workdir / "metadata.db"
    config = workdir / "config.toml"
    config.write_text(
        f'metadata_url = "sqlite:///{metadata}"\n\n'
        f'[logging]\nlevel = "INFO"\nfile = "{workdir / "logs" / "cdc-tui.log"}"\n\n'
        f'[connections.src]\nurl = "{source.url(SOURCE_DB)}"\npassword_file = "{src_pw}"\n\n'
        f'[connections.tgt]\nurl = "{target.url(TARGET_DB)}"\npassword_file = "{tgt_pw}"\n'
    )
    config.chmod(0o600)
    (workdir / "home").mkdir()
    env = BenchEnv(workdir, source, target, config, metadata, cleanup)
    cleanup.push("stop cdc-tui runners", env.stop_all_runners)
    return env


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]
