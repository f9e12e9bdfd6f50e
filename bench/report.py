"""Render a results JSON as the Markdown tables used in bench/RESULTS.md.

python bench/report.py [bench/results/latest.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _f(value: Any, fmt: str = ",.0f") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value != value:  # NaN
        return "—"
    return format(value, fmt)


def render(r: dict[str, Any]) -> str:
    m = r.get("machine", {})
    b = r.get("benchmarks", {})
    t = r.get("targets", {})
    kind = "QUICK run (--quick, reduced sizes)" if r.get("quick") else "full run"
    lines = [
        f"### {kind}, {r.get('date', '?')}",
        "",
        f"Machine: {m.get('nproc', '?')} cores, {_f(m.get('memory_mb'))} MB RAM, "
        f"load average {', '.join(f'{x:.1f}' for x in m.get('loadavg_at_start', []))} at start / "
        f"{', '.join(f'{x:.1f}' for x in m.get('loadavg_at_end', []))} at end; "
        f"source PostgreSQL {m.get('source_postgres', '?')}, "
        f"target PostgreSQL {m.get('target_postgres', '?')}, Python {m.get('python', '?')}; "
        f"{m.get('postgres_settings', '')}. Took {_f(r.get('duration_s'))} s.",
        "",
        "| metric | cdc-tui | baseline | target | met |",
        "|---|---|---|---|---|",
    ]

    def row(metric: str, ours: str, base: str, key: str | None = None) -> None:
        tgt = t.get(key or metric, {})
        met = {True: "yes", False: "**no**", None: "—"}[tgt.get("met")] if tgt else ""
        lines.append(f"| `{metric}` | {ours} | {base} | {tgt.get('target', '')} | {met} |")

    fl = b.get("full_load")
    if fl:
        row("full_load.ratio_vs_pipe", f"{_f(fl['ratio_vs_pipe'], '.2f')} "
            f"(Step 1 {_f(fl['cdctui_step1_s_median'], '.2f')} s; CLI wall "
            f"{_f(fl['cdctui_wall_s_median'], '.2f')} s)",
            f"psql\\|psql {_f(fl['baseline_pipe_s_median'], '.2f')} s")  # fmt: skip
        row("full_load.rows_per_s", _f(fl["rows_per_s"]),
            _f(fl["baseline_pipe_rows_per_s"]))  # fmt: skip
    bl = b.get("cdc_backlog")
    kc = b.get("cdc_kafka_connect")
    if bl:
        row("cdc_embedded.changes_per_s", f"{_f(bl['changes_per_s'])} "
            f"(apply only {_f(bl['cdctui_apply_only_changes_per_s'])})",
            f"native {_f(bl['baseline_native_changes_per_s'])} "
            f"(apply only {_f(bl['baseline_native_apply_only_changes_per_s'])})")  # fmt: skip
    if kc:
        kb = kc["backlog"]
        base = (f"embedded {_f(bl['changes_per_s'])}; native "
                f"{_f(bl['baseline_native_changes_per_s'])}" if bl else "")  # fmt: skip
        row("cdc_kafka_connect.changes_per_s", f"{_f(kc['changes_per_s'])} "
            f"(apply only {_f(kb['apply_only_changes_per_s'])})", base)  # fmt: skip
    lat = b.get("cdc_latency")
    if lat:
        c, n = lat["cdctui"], lat["baseline_native"]
        row("cdc_embedded.p50_ms", _f(c["p50_ms"]), f"native {_f(n['p50_ms'])}")
        row("cdc_embedded.p99_ms", _f(c["p99_ms"]), f"native {_f(n['p99_ms'])}")
        row("cdc_embedded.max_ms", _f(c["max_ms"]), f"native {_f(n['max_ms'])}")
    if kc:
        for key in ("p50_ms", "p99_ms", "max_ms"):
            base = (f"embedded {_f(lat['cdctui'][key])}; native "
                    f"{_f(lat['baseline_native'][key])}" if lat else "")  # fmt: skip
            row(f"cdc_kafka_connect.{key}", _f(kc[key]), base)
    rss = b.get("rss")
    if rss:
        row("cdc_embedded.rss_mb", f"{_f(rss['rss_mb'], '.0f')} peak (VmHWM)",
            f"{_f(rss['baseline_rss_before_mb'], '.0f')} before the transaction")  # fmt: skip
        row("1 big transaction apply_s", _f(rss["cdctui_apply_s"], ".1f"),
            f"native {_f(rss['baseline_native_apply_s'], '.1f')}")  # fmt: skip
    con = b.get("console")
    if con:
        _console_rows(con, row)
    ms = b.get("mssql_client")
    if ms:
        row("mssql_client.step1_rows_per_s",
            f"{_f(ms['step1_rows_per_s'])} (conversion {ms['step1_convert_share']:.0%} of it)",
            f"COPY text read alone {_f(ms['step1_read_only_rows_per_s'])}")  # fmt: skip
        row("mssql_client.step2_changes_per_s", _f(ms["step2_changes_per_s"]),
            f"pymssql substitution alone {_f(ms['step2_driver_only_per_s'])}")  # fmt: skip
    p = r.get("parameters", {})
    console_sizes = ""
    if con:
        console_sizes = (
            f"; console: {_f(p.get('console_pipelines'))} pipelines, {p.get('console_runs')} "
            f"launches of it and of each baseline (medians), {p.get('console_ticks')} refreshes "
            "per tick variant"
        )
    lines += [
        "",
        f"Sizes: full load {_f(p.get('fl_rows'))} rows x {p.get('fl_reps')} reps (medians); "
        f"backlog {_f(p.get('backlog'))} changes x {p.get('backlog_reps')} reps on a "
        f"{_f(p.get('cdc_rows'))}-row table; latency {_f(p.get('rate'))} rows/s for "
        f"{p.get('lat_s')} s in transactions of {p.get('batch')}; one {_f(p.get('big_rows'))}-row "
        f"transaction for RSS{console_sizes}.",
    ]
    if kc:
        kb = kc.get("backlog") or {}
        lines.append(
            f"\nkafka_connect: the same backlog and latency sizes, source tables and source "
            f"cluster (the backlog table held {_f(kb.get('table_rows_at_start'))} rows when its "
            f"first backlog began), its own target database; Kafka "
            f"{kc.get('kafka_version', '?')}, Debezium {kc.get('debezium_version', '?')} (one "
            f"broker, one Connect worker, started in {_f(kc.get('stack_start_s'), '.0f')} s); "
            f"JVM peak RSS: Connect {_f(kc.get('connect_hwm_mb'))} MB, broker "
            f"{_f(kc.get('broker_hwm_mb'))} MB."
        )
    for name, err in (r.get("errors") or {}).items():
        lines.append(f"\n**{name} failed:** {err}")
    return "\n".join(lines) + "\n"


def _console_rows(con: dict[str, Any], row: Any) -> None:
    lo, hi = con["first_frame_s_range"]
    row("console.first_frame_s", f"{_f(con['first_frame_s'], '.2f')} s ({_f(lo, '.2f')}-"
        f"{_f(hi, '.2f')}; CPU {_f(con['cpu_to_first_frame_s'], '.2f')} s)",
        f"empty Textual app {_f(con['baseline_empty_app_s'], '.2f')} s; the same table in a "
        f"bare Textual app {_f(con['baseline_table_app_s'], '.2f')} s; `cdc-tui --help` "
        f"{_f(con['baseline_cli_help_s'], '.2f')} s; `cdc-tui list --json` "
        f"{_f(con['baseline_list_json_s'], '.2f')} s; `import textual.app` "
        f"{_f(con['baseline_import_textual_s'], '.2f')} s")  # fmt: skip
    row("console.tick_ms", f"{_f(con['tick_ms'], '.1f')}, p95 {_f(con['tick_ms_p95'], '.1f')} "
        f"(show_board {_f(con['tick_handler_ms'], '.1f')}, repaints "
        f"{_f(con['tick_repaint_ms'], '.1f')})",
        f"Textual DataTable updated by key {_f(con['baseline_datatable_tick_ms'], '.0f')}, p95 "
        f"{_f(con['baseline_datatable_tick_ms_p95'], '.0f')} (handler "
        f"{_f(con['baseline_datatable_handler_ms'], '.1f')}, repaints "
        f"{_f(con['baseline_datatable_repaint_ms'], '.0f')})")  # fmt: skip
    row("console.tick_ms, every row's lag changes", f"{_f(con['tick_all_rows_ms'], '.0f')} "
        f"(show_board {_f(con['tick_all_rows_handler_ms'], '.1f')})",
        f"DataTable {_f(con['baseline_datatable_all_rows_ms'], '.0f')}")  # fmt: skip
    row("console.tick_ms, no cell changes", f"{_f(con['tick_unchanged_ms'], '.0f')} "
        f"(show_board {_f(con['tick_unchanged_handler_ms'], '.1f')})", "")  # fmt: skip
    row("console.rss_mb", f"{_f(con['rss_mb'], '.0f')} peak (VmHWM) after "
        f"{con['polls_before_rss']} polls",
        f"empty Textual app {_f(con['baseline_empty_app_rss_mb'], '.0f')}; the same table in a "
        f"bare Textual app {_f(con['baseline_table_app_rss_mb'], '.0f')}")  # fmt: skip
    row("console CPU per 2 s poll, ms", f"{_f(con['cpu_per_poll_ms'])} (whole process)",
        f"read_board() alone {_f(con['read_board_ms'])} (poll worker)")  # fmt: skip


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results/latest.json"
    print(render(json.loads(path.read_text())), end="")
