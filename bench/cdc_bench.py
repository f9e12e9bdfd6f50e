"""Step 2 of the embedded engine against PostgreSQL's native logical replication.

One pipeline `cdc` (full_load_and_cdc) replicates bench.cdc_t, bench.lat, bench.big and
bench.marker into TARGET_DB; one native subscription replicates the same tables from the same
source into NATIVE_DB. Only one of the two runs at a time while a number is being taken.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from common import (
    NATIVE_DB,
    SOURCE_DB,
    TARGET_DB,
    BenchEnv,
    cpu_seconds,
    kib,
    log,
    lsn_int,
    median,
    percentile,
    proc_status,
)
from workload import (
    LATENCY_TABLE,
    MARKER_TABLE,
    SCHEMA,
    PacedWriter,
    VisibilityPoller,
    create_schema,
    make_backlog,
    marker_commit,
    six_column_rows,
    six_columns,
    table_fingerprint,
)

PIPELINE = "cdc"
SUB = "bench_native"
TABLES = ("cdc_t", "lat", "big", "marker")
APPLIED_QUERY = "SELECT end_lsn::text FROM cdc_tui.applied_position WHERE pipeline = %s"
# The origin's remote_lsn is the commit end of the last applied remote transaction, committed
# with the data: the native counterpart of cdc_tui.applied_position.end_lsn.
NATIVE_QUERY = """
SELECT os.remote_lsn::text, ss.latest_end_lsn::text, ss.pid
  FROM pg_subscription s
  LEFT JOIN pg_replication_origin_status os ON os.external_id = 'pg_' || s.oid
  LEFT JOIN pg_stat_subscription ss ON ss.subid = s.oid AND ss.relid IS NULL
 WHERE s.subname = %s
"""


class CdcSetup:
    """Lazily built once, shared by the backlog, latency and RSS benchmarks."""

    def __init__(self, env: BenchEnv, rows: int) -> None:
        self.env = env
        self.rows = rows
        self.ready = False

    def ensure(self) -> None:
        if self.ready:
            return
        env = self.env
        log(f"cdc: creating source tables ({self.rows:,} rows in bench.cdc_t)")
        ddl = [six_columns("cdc_t"), six_columns("big"), LATENCY_TABLE, MARKER_TABLE]
        with env.src() as c:
            create_schema(env, c)
            for stmt in ddl:
                c.execute(stmt.encode())
            c.execute(f"INSERT INTO {SCHEMA}.cdc_t {six_column_rows('1', str(self.rows))}".encode())
            c.execute(f"INSERT INTO {SCHEMA}.marker VALUES (1, 0)".encode())
            c.execute(f"VACUUM ANALYZE {SCHEMA}.cdc_t".encode())
            names = ", ".join(f"{SCHEMA}.{t}" for t in TABLES)
            c.execute(f"CREATE PUBLICATION {SUB} FOR TABLE {names}".encode())
        env.create_pipeline(
            PIPELINE, ",".join(f"{SCHEMA}.{t}" for t in TABLES), "full_load_and_cdc"
        )
        env.cli("start", PIPELINE, "--wait", "running", "--timeout", "1800")
        env.status(PIPELINE)
        log("cdc: pipeline running; creating the native subscription")
        with env.tgt(NATIVE_DB) as c:
            create_schema(env, c)
            for stmt in ddl:
                c.execute(stmt.encode())
            conninfo = env.source.admin_conninfo(SOURCE_DB)
            c.execute(
                f"CREATE SUBSCRIPTION {SUB} CONNECTION '{conninfo}' PUBLICATION {SUB} "
                "WITH (copy_data = true, enabled = true)".encode()
            )
        wait_until(lambda: self._native_synced(), 900, "native initial sync")
        self.catch_up_native()
        self.disable_native()
        self.catch_up_cdctui()
        self.ready = True

    # -- native subscription --------------------------------------------------------------

    def _native_synced(self) -> bool:
        with self.env.tgt(NATIVE_DB) as c:
            row = c.execute("SELECT count(*) FILTER (WHERE srsubstate <> 'r'), count(*) "
                            "FROM pg_subscription_rel").fetchone()  # fmt: skip
        return bool(row[0] == 0 and row[1] == len(TABLES))

    def native_position(self) -> tuple[int, int, int | None]:
        with self.env.tgt(NATIVE_DB) as c:
            row = c.execute(NATIVE_QUERY, (SUB,)).fetchone()
        return lsn_int(row[0]), lsn_int(row[1]), row[2]

    def enable_native(self) -> None:
        with self.env.tgt(NATIVE_DB) as c:
            c.execute(f"ALTER SUBSCRIPTION {SUB} ENABLE".encode())

    def disable_native(self) -> None:
        with self.env.tgt(NATIVE_DB) as c:
            c.execute(f"ALTER SUBSCRIPTION {SUB} DISABLE".encode())
        wait_until(lambda: self.native_position()[2] is None, 60, "the apply worker to exit")

    def catch_up_native(self, timeout: float = 1800) -> None:
        mark = marker_commit(self.env)
        wait_until(lambda: self.native_position()[0] >= mark, timeout, "native catch-up")

    # -- cdc-tui --------------------------------------------------------------------------

    def applied(self) -> int:
        with self.env.tgt(TARGET_DB) as c:
            row = c.execute(APPLIED_QUERY, (PIPELINE,)).fetchone()
        return lsn_int(row[0]) if row else 0

    def catch_up_cdctui(self, timeout: float = 1800) -> None:
        mark = marker_commit(self.env)
        wait_until(lambda: self.applied() >= mark, timeout, "cdc-tui catch-up")

    def running(self) -> bool:
        return self.env.status(PIPELINE)["runner"] is not None

    def stop_cdctui(self) -> None:
        self.env.stop_pipeline(PIPELINE)

    def start_cdctui(self) -> None:
        self.env.cli("start", PIPELINE, "--wait", "running", "--timeout", "300")
        self.env.status(PIPELINE)

    def verify(self, table: str) -> None:
        """Source, cdc-tui target and native target hold the same rows."""
        with self.env.src() as c:
            want = table_fingerprint(c, table)
        with self.env.tgt(TARGET_DB) as c:
            got_cdc = table_fingerprint(c, table)
        with self.env.tgt(NATIVE_DB) as c:
            got_native = table_fingerprint(c, table)
        if not (want == got_cdc == got_native):
            raise RuntimeError(
                f"{table}: source {want} vs cdc-tui {got_cdc} vs native {got_native}"
            )


def wait_until(pred: Callable[[], bool], timeout: float, what: str, poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


def timed_until(
    read: Callable[[], int], mark: int, start: int, timeout: float
) -> tuple[float, float | None]:
    """Poll `read` every 50 ms from now; (seconds until >= mark, seconds until it first moved)."""
    t0 = time.perf_counter()
    first: float | None = None
    deadline = t0 + timeout
    while True:
        pos = read()
        now = time.perf_counter()
        if first is None and pos > start:
            first = now - t0
        if pos >= mark:
            return now - t0, first
        if now > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting to reach the backlog's end")
        time.sleep(0.05)


# -- 2. backlog throughput ------------------------------------------------------------------


def bench_backlog(setup: CdcSetup, changes: int, reps: int) -> dict[str, Any]:
    setup.ensure()
    env = setup.env
    cdc_runs: list[dict[str, Any]] = []
    native_runs: list[dict[str, Any]] = []
    for i in range(reps):
        if setup.running():
            setup.stop_cdctui()
        log(f"backlog rep {i + 1}: writing {changes:,} changes")
        t = time.perf_counter()
        mark = make_backlog(env, "cdc_t", changes)
        log(f"backlog rep {i + 1}: written in {time.perf_counter() - t:.1f} s")
        order = ("cdc", "native") if i % 2 == 0 else ("native", "cdc")
        for which in order:
            if which == "cdc":
                start = setup.applied()
                env.cli("start", PIPELINE)
                total, first = timed_until(setup.applied, mark, start, 3600)
                pid = env.runner_pid(PIPELINE)
                cpu = cpu_seconds(pid) if pid else None
                cdc_runs.append({"seconds": total, "first_apply_s": first, "runner_cpu_s": cpu})
                log(f"backlog rep {i + 1}: cdc-tui {total:.2f} s ({changes / total:,.0f}/s; "
                    f"first commit applied after {first or 0:.2f} s)")  # fmt: skip
            else:
                start = setup.native_position()[0]
                setup.enable_native()
                total, first = timed_until(lambda: setup.native_position()[0], mark, start, 3600)
                worker = setup.native_position()[2]
                cpu = cpu_seconds(worker) if worker else None
                setup.disable_native()
                native_runs.append(
                    {"seconds": total, "first_apply_s": first, "apply_worker_cpu_s": cpu}
                )
                log(f"backlog rep {i + 1}: native {total:.2f} s ({changes / total:,.0f}/s)")
        setup.verify("cdc_t")
    cdc_s = median([float(r["seconds"] or 0) for r in cdc_runs])
    native_s = median([float(r["seconds"] or 0) for r in native_runs])

    def apply_only(runs: list[dict[str, Any]]) -> float:
        return median([float(r["seconds"] or 0) - float(r["first_apply_s"] or 0) for r in runs])

    return {
        "changes": changes,
        "transaction_size": 10,
        "mix": "60% insert, 30% update, 10% delete",
        "reps": reps,
        "changes_per_s": changes / cdc_s,
        "baseline_native_changes_per_s": changes / native_s,
        "cdctui_s_median": cdc_s,
        "baseline_native_s_median": native_s,
        "cdctui_apply_only_changes_per_s": changes / max(apply_only(cdc_runs), 1e-9),
        "baseline_native_apply_only_changes_per_s": changes / max(apply_only(native_runs), 1e-9),
        "cdctui_runs": cdc_runs,
        "baseline_native_runs": native_runs,
        "verified_equal": True,
    }


# -- 3. latency -----------------------------------------------------------------------------


def _latency_phase(
    setup: CdcSetup, db: str, rate: int, seconds: float, batch: int
) -> dict[str, Any]:
    env = setup.env
    first_id = int(env.scalar(env.source, SOURCE_DB, "SELECT coalesce(max(id), 0) FROM bench.lat"))
    poller = VisibilityPoller(env, db, first_id)
    writer = PacedWriter(env, rate, seconds, batch, first_id + 1)
    poller.start()
    writer.start()
    writer.join()
    poller.until_id = writer.next_id - 1
    poller.deadline = time.monotonic() + 120
    poller.join()
    for t in (writer, poller):
        if t.error is not None:
            raise RuntimeError(f"latency {db}: {t.error}")
    lat = poller.latencies_ms
    missing = writer.written - len(lat)
    return {
        "rows": writer.written,
        "seen": len(lat),
        "missing": missing,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "max_ms": max(lat) if lat else float("nan"),
        "writer_behind_max_s": writer.behind_max_s,
    }


def bench_latency(setup: CdcSetup, rate: int, seconds: float, batch: int) -> dict[str, Any]:
    setup.ensure()
    if not setup.running():
        setup.start_cdctui()
    setup.catch_up_cdctui()
    log(f"latency: cdc-tui, {rate}/s for {seconds:g} s in transactions of {batch}")
    cdc = _latency_phase(setup, TARGET_DB, rate, seconds, batch)
    log(f"latency: cdc-tui p50 {cdc['p50_ms']:.0f} ms, p99 {cdc['p99_ms']:.0f} ms, "
        f"max {cdc['max_ms']:.0f} ms")  # fmt: skip
    setup.stop_cdctui()
    setup.enable_native()
    setup.catch_up_native()
    log("latency: native subscription")
    native = _latency_phase(setup, NATIVE_DB, rate, seconds, batch)
    log(f"latency: native p50 {native['p50_ms']:.0f} ms, p99 {native['p99_ms']:.0f} ms, "
        f"max {native['max_ms']:.0f} ms")  # fmt: skip
    setup.disable_native()
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "transaction_size": batch,
        "poll_interval_ms": 10,
        "p50_ms": cdc["p50_ms"],
        "p99_ms": cdc["p99_ms"],
        "max_ms": cdc["max_ms"],
        "cdctui": cdc,
        "baseline_native": native,
    }


# -- 4. runner RSS --------------------------------------------------------------------------


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_rss_kb = 0

    def sample(self) -> None:
        with contextlib.suppress(OSError, KeyError):
            self.max_rss_kb = max(self.max_rss_kb, kib(proc_status(self.pid)["VmRSS"]))


def bench_rss(setup: CdcSetup, rows: int) -> dict[str, Any]:
    setup.ensure()
    env = setup.env
    # A fresh runner that only streams, so VmHWM is not the full load's or an earlier test's.
    if setup.running():
        setup.stop_cdctui()
    setup.start_cdctui()
    setup.catch_up_cdctui()
    pid = env.runner_pid(PIPELINE)
    if pid is None:
        raise RuntimeError("no runner pid in `cdc-tui status --json`")
    before = proc_status(pid)
    log(
        f"rss: runner pid {pid} at {kib(before['VmRSS']) / 1024:.0f} MB; "
        f"one {rows:,}-row transaction"
    )
    with env.src() as c:
        c.execute(f"TRUNCATE {SCHEMA}.big".encode())
    setup.catch_up_cdctui()
    before = proc_status(pid)
    start = setup.applied()
    sampler = RssSampler(pid)
    t = time.perf_counter()
    with env.src() as c:
        c.execute(f"INSERT INTO {SCHEMA}.big {six_column_rows('1', str(rows))}".encode())
    mark = marker_commit(env)
    write_s = time.perf_counter() - t

    def read() -> int:
        sampler.sample()
        return setup.applied()

    total, _first = timed_until(read, mark, start, 3600)
    after = proc_status(pid)
    log(f"rss: applied in {total:.1f} s after commit; VmHWM {kib(after['VmHWM']) / 1024:.0f} MB")
    setup.enable_native()
    nstart = setup.native_position()[0]
    native_s, _ = timed_until(lambda: setup.native_position()[0], mark, nstart, 3600)
    setup.disable_native()
    setup.verify("big")
    return {
        "rows": rows,
        "rss_mb": kib(after["VmHWM"]) / 1024,
        "baseline_rss_before_mb": kib(before["VmRSS"]) / 1024,
        "baseline_hwm_before_mb": kib(before["VmHWM"]) / 1024,
        "sampled_max_rss_mb": sampler.max_rss_kb / 1024,
        "rss_after_mb": kib(after["VmRSS"]) / 1024,
        "source_write_s": write_s,
        "cdctui_apply_s": total,
        "baseline_native_apply_s": native_s,
        "verified_equal": True,
    }


def median_or_none(values: list[float]) -> float | None:
    return median(values) if values else None
