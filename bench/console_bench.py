"""console.*: the Textual console with 200 pipelines, each number next to its baseline.

- `first_frame_s`: the installed `cdc-tui` (no verb: the console) on a 120x40 pseudo-terminal,
  from spawn to the first frame that shows the table's rows and the status line "200 pipelines".
  Baselines, interleaved with it: an empty Textual app, a bare Textual DataTable app showing the
  same 200 rows (no cdc-tui code, no database), `cdc-tui list --json` over the same 200
  pipelines, `python -c "import textual.app"` and `python -c pass`.
- `rss_mb`: the console's VmHWM once it has polled POLLS_AFTER_FRAME more times after that frame;
  baselines: the two Textual apps' VmHWM once they have shown their first frame.
- `tick_ms`: in a fresh interpreter (`python bench/console_bench.py ticks VARIANT N`), the real
  CdcTuiApp under `App.run_test()` (headless, 120x40) polls a reader of prepared boards (the
  real board of the 200 pipelines with a few cells changed each tick) every TICK_S; the
  BoardUpdated handler and the repaints that follow are timed on the UI thread. Baseline: the
  same app and boards with the board shown in Textual's DataTable instead, updated by row key
  with `update_cell` and sorted only when the order is wrong (the console's first version).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import random
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from common import CDC_TUI, BenchEnv, cpu_seconds, kib, log, median, percentile, proc_status

PREFIX = "pl"  # pipelines pl000 .. pl199
SIZE = (120, 40)  # columns, lines: the terminal of the first-frame runs and of run_test()
POLLS_AFTER_FRAME = 3  # console polls between the first frame and the RSS reading
BASELINE_SETTLE_S = 1.0  # the baseline apps do not poll: their RSS is read after this
FRAME_TIMEOUT_S = 60.0
# The tick benchmark's refresh interval (the console's default is 2 s): long enough for the UI
# thread to be idle again before the next board lands, so ticks do not overlap.
TICK_S = 0.25
WARMUP_TICKS = 5
IDLE_S = 2.0  # the UI thread's idle CPU is measured over this long after the ticks
FEW_ROWS = 5  # rows whose lag and lag seconds change each tick in the "few" variants
# board: the product's BoardTable; datatable: Textual's DataTable updated by key. few: FEW_ROWS
# rows change per tick, all: every row, none: only the board's time (the status line) changes.
TICK_VARIANTS = ("board_few", "datatable_few", "board_all", "datatable_all", "board_none")
UPDATED_RE = re.compile(rb"updated (\d\d:\d\d:\d\d) UTC")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# The baselines of first_frame_s and rss_mb, run with the same interpreter on the same pty.
BASELINE_APPS = '''\
"""Baselines for console.first_frame_s / console.rss_mb, written by bench/console_bench.py."""
import json
import sys

from textual.app import App
from textual.widgets import DataTable, Footer, Header, Static


class Empty(App):
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self):
        yield Static("empty app ready")


class Table(App):
    """The pipelines table without cdc-tui: same columns, same 200 rows, read from a file."""

    BINDINGS = [("q", "quit", "Quit")]
    CSS = "DataTable { height: 1fr; } #status { height: 1; padding: 0 1; }"

    def __init__(self, path):
        super().__init__()
        with open(path) as fh:
            self.doc = json.load(fh)

    def compose(self):
        yield Header()
        table = DataTable(cursor_type="row", zebra_stripes=True)
        for key, label in self.doc["columns"]:
            table.add_column(label, key=key)
        yield table
        yield Static(self.doc["status"], id="status")
        yield Footer()

    def on_mount(self):
        table = self.query_one(DataTable)
        for row in self.doc["rows"]:
            table.add_row(*row, key=row[0])
        table.focus()


if __name__ == "__main__":
    (Empty() if sys.argv[1] == "empty" else Table(sys.argv[2])).run()
'''


def pipeline_names(count: int) -> list[str]:
    return [f"{PREFIX}{i:03d}" for i in range(count)]


# -- the 200 pipelines ----------------------------------------------------------------------


def seed_pipelines(env: BenchEnv, count: int) -> list[str]:
    """Create `count` pipelines src -> tgt straight in the metadata DB, in random order.

    None is started: every tenth is RUNNING without a runner (health from the stale lease),
    every fortieth is in ERROR with a last error; the rest are STOPPED. All share the source
    connection `src`, so one board poll sends one slot query to the source cluster.
    """
    from cdc_tui.config.connections import resolve_connection
    from cdc_tui.domain.spec import TableRef
    from cdc_tui.domain.status import Engine, Mode, PipelineStatus, StatusField
    from cdc_tui.services.context import build_context
    from cdc_tui.store.repositories import PipelineRepository

    names = pipeline_names(count)
    ctx = build_context(env.config, environ=env.environ(), actor="bench:console")
    try:
        source = resolve_connection("src", ctx.settings, role="source")
        target = resolve_connection("tgt", ctx.settings, role="target")
        repo = PipelineRepository(ctx.store)
        for name in random.Random(7).sample(names, len(names)):
            i = int(name[len(PREFIX) :])
            tables = [TableRef("bench", f"t{(i + k) % 20}") for k in range(1 + i % 3)]
            repo.create(name=name, engine=Engine.EMBEDDED, mode=Mode.FULL_LOAD_AND_CDC,
                        source=source, target=target, tables=tables, target_schema=None,
                        connect_url=None, actor="bench")  # fmt: skip
        for name in names[::10]:
            for status in (PipelineStatus.STARTING, PipelineStatus.RUNNING):
                repo.transition(name, StatusField.STATUS, status, reason="bench", actor="bench")
        for name in names[5::40]:
            repo.transition(name, StatusField.STATUS, PipelineStatus.ERROR, reason="bench",
                            actor="bench", error=f"source error: slot cdc_tui_{name} is "
                            "already active for PID 4242\nDETAIL: ...")  # fmt: skip
    finally:
        ctx.close()
    return names


def drop_pipelines(env: BenchEnv, names: list[str]) -> None:
    from cdc_tui.services.context import build_context
    from cdc_tui.store.repositories import PipelineRepository

    ctx = build_context(env.config, environ=env.environ(), actor="bench:console")
    try:
        repo = PipelineRepository(ctx.store)
        for name in names:
            repo.delete(name, actor="bench", reason="console benchmark done")
    finally:
        ctx.close()


# -- a process on a pseudo-terminal ---------------------------------------------------------


class Pty:
    """A child on a fresh pseudo-terminal of SIZE; everything it writes is kept in `out`."""

    def __init__(self, argv: list[str], environ: dict[str, str]) -> None:
        master, slave = pty.openpty()
        cols, lines = SIZE
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, cols, 0, 0))
        self.master = master
        self.out = bytearray()
        self.eof = False
        self.t0 = time.perf_counter()
        try:
            self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                         env=environ, start_new_session=True)  # fmt: skip
        finally:
            os.close(slave)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pump(self, timeout: float) -> None:
        """Read whatever the child writes within `timeout` seconds."""
        if self.eof:
            time.sleep(timeout)
            return
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return
        try:
            chunk = os.read(self.master, 1 << 16)
        except OSError:  # EIO: the child closed its side
            chunk = b""
        if chunk:
            self.out += chunk
        else:
            self.eof = True

    def wait_for(self, markers: list[bytes], timeout: float = FRAME_TIMEOUT_S) -> float:
        """Seconds from spawn until the child has written every marker."""
        deadline = time.perf_counter() + timeout
        while not all(m in self.out for m in markers):
            if self.eof or self.proc.poll() is not None:
                raise RuntimeError(f"exited {self.proc.poll()} before the frame: {self.tail()}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no frame with {markers} after {timeout:g} s: {self.tail()}")
            self.pump(0.05)
        return time.perf_counter() - self.t0

    def tail(self) -> str:
        text = re.sub(rb"\x1b\[[0-9;?<>=$]*[A-Za-z]", b" ", bytes(self.out[-3000:]))
        return " ".join(text.decode(errors="replace").split())[-600:]

    def quit(self, timeout: float = 15.0) -> tuple[float, int | None]:
        """Press q; (seconds until the process exited, its exit code)."""
        t = time.perf_counter()
        os.write(self.master, b"q")
        deadline = t + timeout
        while self.proc.poll() is None and time.perf_counter() < deadline:
            self.pump(0.02)
        seconds = time.perf_counter() - t
        return seconds, self.proc.poll()

    def close(self) -> None:
        """End the child (ours, by its pid) if it is still there, and close the pty."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        os.close(self.master)


def pty_environ(env: BenchEnv) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE would make every launch compile cdc_tui's modules again, which
    # an installed cdc-tui never does (bench_first_frame compiles them once first).
    dropped = ("COLUMNS", "LINES", "NO_COLOR", "PYTHONDONTWRITEBYTECODE")
    environ = {k: v for k, v in env.environ().items()
               if not k.startswith("TEXTUAL") and k not in dropped}  # fmt: skip
    environ["TERM"] = "xterm-256color"
    environ["COLORTERM"] = "truecolor"
    return environ


# -- first frame and RSS --------------------------------------------------------------------


def run_console(environ: dict[str, str], markers: list[bytes], polls: int) -> dict[str, Any]:
    """One console launch: first frame, then `polls` more polls, then RSS, then `q`."""
    p = Pty([CDC_TUI], environ)
    try:
        frame_s = p.wait_for(markers)
        at_frame = proc_status(p.pid)
        cpu_at_frame = cpu_seconds(p.pid)
        t_frame = time.perf_counter()
        first = set(UPDATED_RE.findall(p.out))
        deadline = t_frame + 10 + polls * 5
        while len(set(UPDATED_RE.findall(p.out)) - first) < polls:
            if time.perf_counter() > deadline or p.proc.poll() is not None:
                raise RuntimeError(f"the console did not poll {polls} times: {p.tail()}")
            p.pump(0.05)
        polled_s = time.perf_counter() - t_frame
        after = proc_status(p.pid)
        cpu_after = cpu_seconds(p.pid)
        quit_s, rc = p.quit()
    finally:
        p.close()
    return {
        "first_frame_s": frame_s,
        "rss_at_frame_mb": kib(at_frame["VmRSS"]) / 1024,
        "hwm_mb": kib(after["VmHWM"]) / 1024,
        "rss_mb": kib(after["VmRSS"]) / 1024,
        "threads": int(after["Threads"]),
        "cpu_to_frame_s": cpu_at_frame,
        "polls": polls,
        "polls_took_s": polled_s,
        "cpu_per_poll_ms": (cpu_after - cpu_at_frame) / polls * 1000,
        "quit_s": quit_s,
        "exit_code": rc,
    }


def run_app(environ: dict[str, str], argv: list[str], markers: list[bytes]) -> dict[str, Any]:
    """One launch of a baseline Textual app: first frame, settle, RSS, `q`."""
    p = Pty(argv, environ)
    try:
        frame_s = p.wait_for(markers)
        deadline = time.perf_counter() + BASELINE_SETTLE_S
        while time.perf_counter() < deadline:
            p.pump(0.05)
        after = proc_status(p.pid)
        cpu = cpu_seconds(p.pid)
        quit_s, rc = p.quit()
    finally:
        p.close()
    return {
        "first_frame_s": frame_s,
        "hwm_mb": kib(after["VmHWM"]) / 1024,
        "rss_mb": kib(after["VmRSS"]) / 1024,
        "cpu_s": cpu,
        "quit_s": quit_s,
        "exit_code": rc,
    }


def run_exit(argv: list[str], environ: dict[str, str], check: Callable[[str], None]) -> float:
    """Seconds from spawn to exit of a non-interactive command."""
    t = time.perf_counter()
    proc = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    check(proc.stdout)
    return seconds


def bench_first_frame(env: BenchEnv, runs: int) -> dict[str, Any]:
    environ = pty_environ(env)
    # Bytecode as pip leaves it for an installed package (an editable install compiles lazily).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "cdc_tui")], check=True,
                   timeout=300)  # fmt: skip
    apps = env.workdir / "console_baseline_apps.py"
    apps.write_text(BASELINE_APPS)
    rows = env.workdir / "console_rows.json"
    proc = subprocess.run([sys.executable, str(HERE / "console_bench.py"), "cells", str(rows)],
                          env=env.environ(), check=True, timeout=120, capture_output=True,
                          text=True)  # fmt: skip
    board_read = json.loads(proc.stdout.strip().splitlines()[-1])
    if not board_read["sources_reachable"]:
        raise RuntimeError("the board could not probe the source cluster")
    # Every pipeline of the metadata DB is on the board: the seeded ones and, in a full run,
    # those of the other benchmarks.
    total = board_read["rows"]
    markers = [f"{total} pipelines".encode(), board_read["first"].encode()]

    def listed(stdout: str) -> None:
        if len(json.loads(stdout)) != total:
            raise RuntimeError("cdc-tui list --json did not list every pipeline")

    def nothing(_stdout: str) -> None:
        return None

    kinds: dict[str, Callable[[], Any]] = {
        "console": lambda: run_console(environ, markers, POLLS_AFTER_FRAME),
        "empty_app": lambda: run_app(environ, [sys.executable, str(apps), "empty"],
                                     [b"empty app ready"]),
        "table_app": lambda: run_app(environ, [sys.executable, str(apps), "table", str(rows)],
                                     markers),
        "list_json": lambda: run_exit([CDC_TUI, "list", "--json"], environ, listed),
        "cli_help": lambda: run_exit([CDC_TUI, "--help"], environ, nothing),
        "import_textual": lambda: run_exit([sys.executable, "-c", "import textual.app"],
                                           environ, nothing),
        "python": lambda: run_exit([sys.executable, "-c", "pass"], environ, nothing),
    }  # fmt: skip
    for kind, run in kinds.items():  # warm the page cache and the .pyc files; not counted
        run()
        log(f"console: warm-up {kind} done")
    out: dict[str, Any] = {kind: [] for kind in kinds}
    order = list(kinds)
    for rep in range(runs):
        for kind in order[rep % len(order) :] + order[: rep % len(order)]:
            out[kind].append(kinds[kind]())
        c = out["console"][-1]
        log(f"console: run {rep + 1}/{runs}: first frame {c['first_frame_s']:.3f} s "
            f"(empty app {out['empty_app'][-1]['first_frame_s']:.3f} s), "
            f"VmHWM {c['hwm_mb']:.0f} MB after {POLLS_AFTER_FRAME} polls")  # fmt: skip
    out["board_read"] = board_read
    return out


# -- tick: the UI-thread time of one refresh ------------------------------------------------


def tick_boards(base: Any, count: int, changed: int | None) -> list[Any]:
    """`count` successive boards: `changed` random rows (None: all) get a new lag and lag
    seconds each, and each board is taken 2 s after the last (the status line changes too)."""
    rng = random.Random(11)
    rows = list(base.rows)
    boards = []
    for k in range(count):
        picked = range(len(rows)) if changed is None else rng.sample(range(len(rows)), changed)
        for i in picked:
            rows[i] = replace(rows[i], lag_bytes=rng.randrange(1, 50_000_000),
                              lag_seconds=rng.uniform(0.01, 9.9))  # fmt: skip
        boards.append(replace(base, rows=tuple(rows),
                              taken_at=base.taken_at + timedelta(seconds=2 * (k + 1))))  # fmt: skip
    return boards


def datatable_refill(screen: Any, table: Any) -> Callable[[], None]:
    """The baseline's refill: the console's first version, on Textual's DataTable."""
    from cdc_tui.ui.screens.pipelines import COLUMN_INDEX, COLUMNS, cells
    from textual.widgets.data_table import RowDoesNotExist

    def refill() -> None:
        rows = screen.visible_rows()
        with screen.app.batch_update():
            keep = {r.name for r in rows}
            for key in [k for k in table.rows if k.value not in keep]:
                table.remove_row(key)
            for row in rows:
                values = cells(row)
                try:
                    current = table.get_row(row.name)
                except RowDoesNotExist:
                    table.add_row(*values, key=row.name)
                    continue
                for (column, _label), old, new in zip(COLUMNS, current, values, strict=True):
                    if old != new:
                        table.update_cell(row.name, column, new)
            index = COLUMN_INDEX[screen.sort_column] if screen.sort_column is not None else 0
            wanted = [r.name for r in sorted(rows, key=lambda r: (cells(r)[index], r.name))]
            if [r.key.value for r in table.ordered_rows] != wanted:
                table.sort(*([screen.sort_column] if screen.sort_column else []), "name")
        screen._status_line(len(rows))

    return refill


async def drive_ticks(ctx: Any, boards: list[Any], datatable: bool, ticks: int) -> dict[str, Any]:
    """Run the console headless on `boards` and time each BoardUpdated on the UI thread."""
    from cdc_tui.ui.app import CdcTuiApp
    from cdc_tui.ui.messages import BoardUpdated
    from cdc_tui.ui.screens.pipelines import COLUMNS, PipelinesScreen, cells
    from cdc_tui.ui.widgets.board_table import BoardTable
    from textual.widgets import DataTable

    served = iter(boards)

    def reader() -> Any:  # called by the poll worker, one call at a time
        return next(served, boards[-1])

    app = CdcTuiApp(ctx, reader=reader)
    app.refresh_s = TICK_S
    samples: list[dict[str, float]] = []
    paint = {"ms": 0.0, "depth": 0, "calls": 0}
    last_cpu: list[float] = []
    last_wall: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        while not isinstance(app.screen, PipelinesScreen):
            await pilot.pause(0.01)
        screen = app.screen
        board_table = screen.query_one(BoardTable)
        if datatable:
            table: DataTable[str] = DataTable(id="baseline", cursor_type="row", zebra_stripes=True)
            for key, label in COLUMNS:
                table.add_column(label, key=key)
            await screen.mount(table, before=board_table)
            await board_table.remove()
            table.styles.height = "1fr"
            table.focus()
            refill = datatable_refill(screen, table)

            def shown_rows() -> dict[str, list[str]]:
                return {str(k.value): [str(c) for c in table.get_row(k)] for k in table.rows}
        else:
            refill = screen.refill

            def shown_rows() -> dict[str, list[str]]:
                return {k: list(board_table.row(k)) for k in board_table.keys}

        def timed_refill() -> None:
            t = time.perf_counter()
            refill()
            samples[-1]["refill_ms"] = (time.perf_counter() - t) * 1000

        def timed(method: Callable[..., Any]) -> Callable[..., Any]:
            """Time a repaint step; a layout refresh can run a compositor refresh inside it,
            so only the outermost call counts."""

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if paint["depth"]:
                    return method(*args, **kwargs)
                paint["depth"] = 1
                t = time.perf_counter()
                try:
                    return method(*args, **kwargs)
                finally:
                    paint["ms"] += (time.perf_counter() - t) * 1000
                    paint["calls"] += 1
                    paint["depth"] = 0

            return wrapper

        dispatch = screen._dispatch_message

        async def timed_dispatch(message: Any) -> None:
            if not isinstance(message, BoardUpdated):
                await dispatch(message)
                return
            cpu = time.thread_time()
            if samples:  # close the previous tick: its repaints and all its UI-thread CPU
                samples[-1]["paint_ms"] = paint["ms"]
                samples[-1]["repaints"] = paint["calls"]
                samples[-1]["cpu_ms"] = (cpu - last_cpu[-1]) * 1000
                samples[-1]["interval_ms"] = (time.perf_counter() - last_wall[-1]) * 1000
            last_cpu.append(cpu)
            last_wall.append(time.perf_counter())
            paint["ms"] = 0.0
            paint["calls"] = 0
            samples.append({})
            t = time.perf_counter()
            await dispatch(message)
            samples[-1]["handler_ms"] = (time.perf_counter() - t) * 1000

        # Instance attributes: the message loop and show_board() look these up on the instance.
        screen._dispatch_message = timed_dispatch  # type: ignore[method-assign]
        screen.refill = timed_refill  # type: ignore[method-assign]
        screen._compositor_refresh = timed(screen._compositor_refresh)  # type: ignore[method-assign]
        screen._refresh_layout = timed(screen._refresh_layout)  # type: ignore[method-assign]
        need = WARMUP_TICKS + ticks + 1
        deadline = time.monotonic() + 60 + need * TICK_S * 5
        while len(samples) < need:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(samples)} refreshes in time")
            await pilot.pause(0.05)
        shown = shown_rows()
        board = screen.board
        # The idle floor: UI-thread CPU per second with no refresh (the poll already scheduled
        # lands first), subtracted from each tick's UI-thread CPU below.
        screen.refresh_s = 3600
        await pilot.pause(2 * TICK_S + 0.5)
        cpu, wall = time.thread_time(), time.perf_counter()
        await pilot.pause(IDLE_S)
        idle_per_s = (time.thread_time() - cpu) / (time.perf_counter() - wall)
    assert board is not None
    wanted = {r.name: list(cells(r)) for r in board.rows}
    measured = [s for s in samples[WARMUP_TICKS:] if "cpu_ms" in s][:ticks]

    def stats(key: str) -> dict[str, float]:
        values = [s[key] for s in measured]
        return {"median": median(values), "p95": percentile(values, 95), "max": max(values)}

    for s in measured:
        s["ui_ms"] = s["handler_ms"] + s["paint_ms"]
        s["busy_ms"] = s["cpu_ms"] - idle_per_s * s["interval_ms"]
    return {
        "ticks": len(measured),
        "rows": len(shown),
        "table_matches_board": shown == wanted,
        "handler_ms": stats("handler_ms"),
        "refill_ms": stats("refill_ms"),
        "paint_ms": stats("paint_ms"),
        "ui_ms": stats("ui_ms"),
        "ui_cpu_ms": stats("cpu_ms"),
        "idle_cpu_ms_per_s": idle_per_s * 1000,
        "busy_ms": stats("busy_ms"),
        "interval_ms": stats("interval_ms"),
        "repaints_per_tick": stats("repaints"),
        "samples": [{k: round(v, 2) for k, v in s.items()} for s in measured],
    }


def ticks_main(variant: str, ticks: int) -> dict[str, Any]:
    """In a fresh interpreter: the real board of the bench's pipelines, then the ticks."""
    from cdc_tui.services.board import read_board
    from cdc_tui.services.context import build_context

    ctx = build_context()  # CDC_TUI_CONFIG: the bench config
    try:
        base = read_board(ctx)
        changed = {"few": FEW_ROWS, "all": None, "none": 0}[variant.split("_")[1]]
        boards = tick_boards(base, WARMUP_TICKS + ticks + 30, changed)
        result = asyncio.run(drive_ticks(ctx, boards, variant.startswith("datatable"), ticks))
    finally:
        ctx.close()
    result["board_rows"] = len(base.rows)
    result["changed_rows_per_tick"] = len(base.rows) if changed is None else changed
    result["sources"] = {k: s.reachable for k, s in base.sources.items()}
    return result


def cells_main(path: Path, reads: int = 10) -> dict[str, Any]:
    """Write the real board's cells, as the table baseline app shows them, to `path`; return
    the time of `reads` more board reads (what the poll worker does off the UI thread)."""
    from cdc_tui.services.board import read_board
    from cdc_tui.services.context import build_context
    from cdc_tui.ui.screens.pipelines import COLUMNS, cells

    ctx = build_context()
    try:
        board = read_board(ctx)
        times = []
        for _ in range(reads):
            t = time.perf_counter()
            read_board(ctx)
            times.append((time.perf_counter() - t) * 1000)
    finally:
        ctx.close()
    path.write_text(json.dumps({
        "columns": COLUMNS,
        "rows": [cells(r) for r in board.rows],
        "status": f"{len(board.rows)} pipelines  |  updated {board.taken_at:%H:%M:%S} UTC",
    }))  # fmt: skip
    reachable = all(s.reachable for s in board.sources.values())
    return {"read_board_ms": median(times), "read_board_ms_max": max(times),
            "rows": len(board.rows), "first": board.rows[0].name,
            "sources": len(board.sources), "sources_reachable": reachable}  # fmt: skip


def bench_ticks(env: BenchEnv, ticks: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variant in TICK_VARIANTS:
        proc = subprocess.run([sys.executable, str(HERE / "console_bench.py"), "ticks", variant,
                               str(ticks)], env=env.environ(), capture_output=True, text=True,
                              timeout=600, check=False)  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"ticks {variant} exited {proc.returncode}: {proc.stderr[-2000:]}")
        out[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = out[variant]
        if not r["table_matches_board"] or r["rows"] != r["board_rows"]:
            raise RuntimeError(f"ticks {variant}: the table does not show the last board")
        log(f"console: tick {variant}: UI thread busy {r['busy_ms']['median']:.1f} ms "
            f"(p95 {r['busy_ms']['p95']:.1f}); handler {r['handler_ms']['median']:.1f} ms, "
            f"repaints {r['paint_ms']['median']:.1f} ms")  # fmt: skip
    return out


# -- the benchmark --------------------------------------------------------------------------


def _med(runs: list[dict[str, Any]], key: str) -> float:
    return median([r[key] for r in runs])


def _span(values: list[float]) -> list[float]:
    return [min(values), max(values)]


def bench_console(env: BenchEnv, pipelines: int, runs: int, ticks: int) -> dict[str, Any]:
    t = time.perf_counter()
    names = seed_pipelines(env, pipelines)
    log(f"console: {pipelines} pipelines created in {time.perf_counter() - t:.1f} s")
    try:
        tick = bench_ticks(env, ticks)
        frames = bench_first_frame(env, runs)
    finally:
        drop_pipelines(env, names)
    console, empty, table = frames["console"], frames["empty_app"], frames["table_app"]
    keyed, base = tick["board_few"], tick["datatable_few"]
    return {
        "pipelines": pipelines,
        "pipelines_on_board": frames["board_read"]["rows"],
        "runs": runs,
        "terminal": f"{SIZE[0]}x{SIZE[1]}",
        "polls_before_rss": POLLS_AFTER_FRAME,
        # first frame
        "first_frame_s": _med(console, "first_frame_s"),
        "first_frame_s_range": _span([r["first_frame_s"] for r in console]),
        "baseline_empty_app_s": _med(empty, "first_frame_s"),
        "baseline_table_app_s": _med(table, "first_frame_s"),
        "baseline_list_json_s": median(frames["list_json"]),
        "baseline_cli_help_s": median(frames["cli_help"]),
        "baseline_import_textual_s": median(frames["import_textual"]),
        "baseline_python_s": median(frames["python"]),
        "cpu_to_first_frame_s": _med(console, "cpu_to_frame_s"),
        "cpu_per_poll_ms": _med(console, "cpu_per_poll_ms"),
        "read_board_ms": frames["board_read"]["read_board_ms"],
        # RSS
        "rss_mb": max(r["hwm_mb"] for r in console),
        "rss_mb_median": _med(console, "hwm_mb"),
        "rss_at_first_frame_mb": _med(console, "rss_at_frame_mb"),
        "baseline_empty_app_rss_mb": max(r["hwm_mb"] for r in empty),
        "baseline_table_app_rss_mb": max(r["hwm_mb"] for r in table),
        # tick
        "tick_ms": keyed["busy_ms"]["median"],
        "tick_ms_p95": keyed["busy_ms"]["p95"],
        "tick_handler_ms": keyed["handler_ms"]["median"],
        "tick_handler_ms_p95": keyed["handler_ms"]["p95"],
        "tick_repaint_ms": keyed["paint_ms"]["median"],
        "baseline_datatable_tick_ms": base["busy_ms"]["median"],
        "baseline_datatable_tick_ms_p95": base["busy_ms"]["p95"],
        "baseline_datatable_handler_ms": base["handler_ms"]["median"],
        "baseline_datatable_repaint_ms": base["paint_ms"]["median"],
        "tick_all_rows_ms": tick["board_all"]["busy_ms"]["median"],
        "tick_all_rows_handler_ms": tick["board_all"]["handler_ms"]["median"],
        "baseline_datatable_all_rows_ms": tick["datatable_all"]["busy_ms"]["median"],
        "tick_unchanged_ms": tick["board_none"]["busy_ms"]["median"],
        "tick_unchanged_handler_ms": tick["board_none"]["handler_ms"]["median"],
        "tick_variants": tick,
        "launches": frames,
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["ticks"]:
        print(json.dumps(ticks_main(sys.argv[2], int(sys.argv[3]))))
    elif sys.argv[1:2] == ["cells"]:
        print(json.dumps(cells_main(Path(sys.argv[2]))))
    else:
        sys.exit("usage: console_bench.py ticks VARIANT N | cells PATH  (run.py --only console)")
