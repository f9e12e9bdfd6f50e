"""cdc-tui benchmarks, each side by side with its baseline on the same clusters and data.

    python bench/run.py [--quick] [--only NAME[,NAME...]] [--reps N]

NAME is one of: full_load, cdc_backlog, cdc_latency, rss, console, cdc_kafka_connect,
mssql_client. Writes
bench/results/latest.json
(and a Markdown rendering next to it). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cdc_bench import CdcSetup, bench_backlog, bench_latency, bench_rss
from common import Cleanup, log, now_iso, sigterm_as_interrupt, start_env
from console_bench import bench_console
from fullload_bench import bench_full_load
from kafka_bench import bench_kafka_connect
from mssql_bench import bench_mssql_client
from report import render

RESULTS = Path(__file__).resolve().parent / "results"
# cdc_kafka_connect last: its pipeline makes the shared source tables REPLICA IDENTITY FULL until
# it is dropped at the end of that benchmark, which must not touch the embedded engine's numbers.
NAMES = ("full_load", "cdc_backlog", "cdc_latency", "rss", "console", "cdc_kafka_connect",
         "mssql_client")  # fmt: skip


@dataclass(frozen=True)
class Params:
    fl_rows: int  # full load: source rows
    fl_reps: int
    cdc_rows: int  # rows in the CDC table before the backlogs
    backlog: int  # changes per backlog
    backlog_reps: int
    rate: int  # latency: rows/s
    lat_s: float  # latency: seconds of writing
    batch: int  # latency: rows per source transaction
    big_rows: int  # RSS: rows in the single big transaction
    console_pipelines: int  # console: pipelines in the metadata DB
    console_runs: int  # console: timed launches (first frame, RSS) of it and of each baseline
    console_ticks: int  # console: measured refreshes per variant


FULL = Params(fl_rows=2_000_000, fl_reps=3, cdc_rows=100_000, backlog=1_000_000, backlog_reps=3,
              rate=2000, lat_s=30.0, batch=10, big_rows=1_000_000,
              console_pipelines=200, console_runs=5, console_ticks=50)  # fmt: skip
QUICK = Params(fl_rows=200_000, fl_reps=2, cdc_rows=100_000, backlog=30_000, backlog_reps=2,
               rate=500, lat_s=8.0, batch=10, big_rows=200_000,
               console_pipelines=200, console_runs=3, console_ticks=30)  # fmt: skip

# Targets on a 2-core machine.
TARGETS: dict[str, tuple[str, float]] = {
    "full_load.ratio_vs_pipe": (">=", 1.0),
    "cdc_embedded.changes_per_s": (">=", 50_000),
    "cdc_embedded.p99_ms": ("<=", 1_000),
    "cdc_embedded.rss_mb": ("<=", 200),
    "console.first_frame_s": ("<=", 1.0),
    "console.tick_ms": ("<=", 20),
    "console.rss_mb": ("<=", 150),
}


def headline(results: dict[str, Any]) -> dict[str, float | None]:
    b = results["benchmarks"]
    fl, bl, lat, rss, con, kc, ms = (b.get(n) or {} for n in NAMES)
    return {
        "full_load.ratio_vs_pipe": fl.get("ratio_vs_pipe"),
        "full_load.rows_per_s": fl.get("rows_per_s"),
        "cdc_embedded.changes_per_s": bl.get("changes_per_s"),
        "cdc_embedded.p50_ms": lat.get("p50_ms"),
        "cdc_embedded.p99_ms": lat.get("p99_ms"),
        "cdc_embedded.rss_mb": rss.get("rss_mb"),
        "cdc_kafka_connect.changes_per_s": kc.get("changes_per_s"),
        "cdc_kafka_connect.p50_ms": kc.get("p50_ms"),
        "cdc_kafka_connect.p99_ms": kc.get("p99_ms"),
        "console.first_frame_s": con.get("first_frame_s"),
        "console.tick_ms": con.get("tick_ms"),
        "console.rss_mb": con.get("rss_mb"),
        "mssql_client.step1_rows_per_s": ms.get("step1_rows_per_s"),
        "mssql_client.step2_changes_per_s": ms.get("step2_changes_per_s"),
    }


def check_targets(metrics: dict[str, float | None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (op, bound) in TARGETS.items():
        value = metrics.get(key)
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        out[key] = {"target": f"{op} {bound:g}", "value": value, "met": met}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument("--only", default="", help="comma-separated subset of " + ", ".join(NAMES))
    parser.add_argument(
        "--reps", type=int, help="repetitions for full_load, cdc_backlog, cdc_kafka_connect"
    )
    parser.add_argument(
        "--kafka-reps", type=int,
        help="repetitions of cdc_kafka_connect's backlog (default: as cdc_backlog); at a few "
        "thousand changes/s one repetition of the full backlog takes minutes",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--runner-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra [runner] setting for cdc-tui, e.g. full_load_split_rows=0",
    )
    args = parser.parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()] or list(NAMES)
    unknown = set(only) - set(NAMES)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; choose from {NAMES}")
    p = QUICK if args.quick else FULL
    if args.reps:
        p = replace(p, fl_reps=args.reps, backlog_reps=args.reps)

    sigterm_as_interrupt()
    cleanup = Cleanup()
    results: dict[str, Any] = {
        "date": now_iso(),
        "quick": args.quick,
        "parameters": asdict(p),
        "benchmarks": {},
        "errors": {},
    }
    t_start = time.perf_counter()
    exit_code = 0
    try:
        env = start_env(cleanup)
        if args.runner_setting:
            lines = "".join(f"{kv.split('=', 1)[0]} = {kv.split('=', 1)[1]}\n"
                            for kv in args.runner_setting)  # fmt: skip
            env.config.write_text(env.config.read_text() + "\n[runner]\n" + lines)
            results["runner_settings"] = args.runner_setting
        results["machine"] = env.machine()
        cdc = CdcSetup(env, p.cdc_rows)
        plan = {
            "full_load": lambda: bench_full_load(env, p.fl_rows, p.fl_reps),
            "cdc_backlog": lambda: bench_backlog(cdc, p.backlog, p.backlog_reps),
            "cdc_latency": lambda: bench_latency(cdc, p.rate, p.lat_s, p.batch),
            "rss": lambda: bench_rss(cdc, p.big_rows),
            "console": lambda: bench_console(
                env, p.console_pipelines, p.console_runs, p.console_ticks
            ),
            "cdc_kafka_connect": lambda: bench_kafka_connect(
                cdc, p.backlog, args.kafka_reps or p.backlog_reps, p.rate, p.lat_s, p.batch
            ),
            "mssql_client": lambda: bench_mssql_client(env, p.fl_rows, p.fl_reps),
        }
        for name in NAMES:
            if name not in only:
                continue
            t = time.perf_counter()
            try:
                results["benchmarks"][name] = plan[name]()
            except Exception as exc:
                traceback.print_exc()
                results["errors"][name] = f"{type(exc).__name__}: {exc}"
                exit_code = 1
            log(f"{name}: {time.perf_counter() - t:.0f} s")
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        results["errors"]["interrupted"] = "KeyboardInterrupt"
        exit_code = 130
    finally:
        results.setdefault("machine", {})["loadavg_at_end"] = list(os.getloadavg())
        cleanup.run()
    results["duration_s"] = round(time.perf_counter() - t_start, 1)
    results["metrics"] = headline(results)
    results["targets"] = check_targets(results["metrics"])
    considered = [t["met"] for t in results["targets"].values() if t["met"] is not None]
    results["all_targets_met"] = bool(considered) and all(considered) and not results["errors"]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    args.output.with_suffix(".md").write_text(render(results))
    log(f"wrote {args.output} ({results['duration_s']:.0f} s)")
    print(render(results))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
