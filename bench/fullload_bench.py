"""full_load.ratio_vs_pipe: cdc-tui's Step 1 against `psql \\copy ... | psql \\copy`."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import datetime
from typing import Any

from common import PIPE_DB, SOURCE_DB, TARGET_DB, BenchEnv, log, median
from workload import SCHEMA, create_schema, six_column_rows, six_columns, table_fingerprint

TABLE = "fl"
COPIED_RE = re.compile(r"copied ([\d,]+) rows in ([\d,.]+) s")
UNITS_RE = re.compile(r"in (\d+) unit\(s\) with (\d+) worker")


def setup(env: BenchEnv, rows: int) -> None:
    log(f"full load: generating {rows:,} source rows")
    with env.src() as c:
        create_schema(env, c)
        c.execute(six_columns(TABLE).encode())
        c.execute(f"INSERT INTO {SCHEMA}.{TABLE} {six_column_rows('1', str(rows))}".encode())
        c.execute(f"VACUUM ANALYZE {SCHEMA}.{TABLE}".encode())
    with env.tgt(PIPE_DB) as c:
        create_schema(env, c)
        c.execute(six_columns(TABLE).encode())


def psql_argv(env: BenchEnv, cluster: Any, db: str, command: str) -> list[str]:
    return [cluster.binaries.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", str(cluster.sockdir), "-p", str(cluster.port), "-U", "postgres", "-d", db,
            "-c", command]  # fmt: skip


def run_pipe(env: BenchEnv) -> float:
    """Seconds for the whole `psql | psql` binary copy into the empty keyed table."""
    with env.tgt(PIPE_DB) as c:
        c.execute(f"TRUNCATE {SCHEMA}.{TABLE}".encode())
    env.checkpoint()
    out_cmd = f"\\copy (SELECT * FROM {SCHEMA}.{TABLE}) TO STDOUT (FORMAT binary)"
    in_cmd = f"\\copy {SCHEMA}.{TABLE} FROM STDIN (FORMAT binary)"
    environ = {k: v for k, v in env.environ().items() if not k.startswith("CDC_TUI_")}
    t0 = time.perf_counter()
    producer = subprocess.Popen(psql_argv(env, env.source, SOURCE_DB, out_cmd),
                                stdout=subprocess.PIPE, env=environ)  # fmt: skip
    consumer = subprocess.Popen(psql_argv(env, env.target, PIPE_DB, in_cmd),
                                stdin=producer.stdout, env=environ)  # fmt: skip
    assert producer.stdout is not None
    producer.stdout.close()  # the consumer holds the only read end now
    rc_in = consumer.wait()
    rc_out = producer.wait()
    seconds = time.perf_counter() - t0
    if rc_in or rc_out:
        raise RuntimeError(f"psql pipe failed (out rc={rc_out}, in rc={rc_in})")
    return seconds


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def run_cdctui(env: BenchEnv, name: str) -> dict[str, Any]:
    """Create a full_load_only pipeline, start it, wait for COMPLETED; returns its timings."""
    with env.tgt(TARGET_DB) as c:
        c.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{TABLE}".encode())
    env.create_pipeline(name, f"{SCHEMA}.{TABLE}", "full_load_only")
    env.checkpoint()
    started = datetime.now().astimezone()
    t0 = time.perf_counter()
    env.cli("start", name, "--wait", "completed", "--timeout", "3600")
    wall = time.perf_counter() - t0
    doc = env.status(name)
    if doc["full_load_status"] != "COMPLETED":
        raise RuntimeError(f"{name}: full_load_status is {doc['full_load_status']}")
    lines = [m for m in env.step_log(name, 1) if COPIED_RE.search(m)]
    if not lines:
        raise RuntimeError(f"{name}: no 'copied N rows in S s' line in the Step 1 log")
    match = COPIED_RE.search(lines[-1])
    assert match is not None
    fl = doc["full_load"]
    begun, done = _ts(fl.get("started_at")), _ts(fl.get("completed_at"))
    if begun is None or done is None:
        raise RuntimeError(f"{name}: full_load.started_at/completed_at missing from status")
    # The metadata timestamps time Step 1 to the microsecond; the log line rounds to 0.1 s.
    step1 = (done - begun).total_seconds()
    result: dict[str, Any] = {"step1_s": step1, "wall_s": wall,
              "step1_log_s": float(match.group(2).replace(",", "")),
              "rows": int(match.group(1).replace(",", ""))}  # fmt: skip
    units = [m for line in env.step_log(name, 1) if (m := UNITS_RE.search(line))]
    if units:
        result["units"], result["workers"] = int(units[-1].group(1)), int(units[-1].group(2))
    result["timeline"] = [f"{at} {what}: {text}" for at, what, text in env.timeline(name)]
    result["start_to_completed_s"] = (done - started).total_seconds()
    return result


def bench_full_load(env: BenchEnv, rows: int, reps: int) -> dict[str, Any]:
    setup(env, rows)
    pipe: list[float] = []
    cdc: list[dict[str, Any]] = []
    for i in range(reps):
        order = ("pipe", "cdc") if i % 2 == 0 else ("cdc", "pipe")
        for which in order:
            if which == "pipe":
                s = run_pipe(env)
                pipe.append(s)
                log(f"full load rep {i + 1}: psql|psql {s:.2f} s")
            else:
                name = f"fl{i + 1}"
                r = run_cdctui(env, name)
                cdc.append(r)
                log(f"full load rep {i + 1}: cdc-tui Step 1 {r['step1_s']:.2f} s "
                    f"(wall {r['wall_s']:.2f} s)")  # fmt: skip
                env.drop_pipeline(name)
    # Same data on every side at the end: the last cdc-tui copy and the last pipe copy.
    with env.src() as c:
        want = table_fingerprint(c, TABLE)
    with env.tgt(PIPE_DB) as c:
        got_pipe = table_fingerprint(c, TABLE)
    with env.tgt(TARGET_DB) as c:
        got_cdc = table_fingerprint(c, TABLE)
    if not (want == got_pipe == got_cdc):
        raise RuntimeError(
            f"full load: tables differ: source {want}, pipe {got_pipe}, cdc {got_cdc}"
        )
    pipe_s = median(pipe)
    step1_s = median([r["step1_s"] for r in cdc])
    wall_s = median([r["wall_s"] for r in cdc])
    out: dict[str, Any] = {
        "rows": rows,
        "reps": reps,
        "ratio_vs_pipe": pipe_s / step1_s,
        "ratio_vs_pipe_wall": pipe_s / wall_s,
        "rows_per_s": rows / step1_s,
        "cdctui_step1_s_median": step1_s,
        "cdctui_wall_s_median": wall_s,
        "baseline_pipe_s_median": pipe_s,
        "baseline_pipe_rows_per_s": rows / pipe_s,
        "cdctui_runs": cdc,
        "baseline_pipe_runs_s": pipe,
        "verified_equal": True,
    }
    return out
