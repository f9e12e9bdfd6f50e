"""Step 2 of the kafka_connect engine on the embedded engine's workload, in the same run.

A local Kafka stack (one KRaft broker, one Connect worker with Debezium's PostgreSQL source and
JDBC sink; `cdc_tui.kafka_stack`) runs from a state directory in the bench's temp dir. One
pipeline `kcdc` (engine kafka_connect, full_load_and_cdc) replicates the same source tables as
the embedded pipeline `cdc` (bench.cdc_t, bench.lat, bench.marker) into its own target database
KAFKA_DB. The embedded pipeline is stopped and the native subscription disabled while a number
is taken, so only this engine reads the source.

The JDBC sink writes no `cdc_tui.applied_position`, and it consumes one topic per table, so
the marker table may be applied before the last change of another table: completion is read
from the target data itself (cheap index reads until the heads match the source, then a
signature of the backlog table, then a whole-table fingerprint to confirm).
"""

from __future__ import annotations

import time
import tomllib
from contextlib import suppress
from typing import Any

import psycopg
from cdc_tui import kafka_stack as ks

from cdc_bench import CdcSetup, _latency_phase, wait_until
from common import SOURCE_DB, BenchEnv, cpu_seconds, kib, log, median, proc_status
from workload import SCHEMA, make_backlog, table_fingerprint

KAFKA_DB = "bench_kafka"  # the kafka_connect pipeline's target
PIPELINE = "kcdc"
CONNECTION = "ktgt"  # the config's connection to KAFKA_DB
TABLES = ("cdc_t", "lat", "marker")
POLL_INTERVAL_S = 1.0  # [kafka_connect] poll_interval: the runner's look at the connectors
STACK_START_TIMEOUT_S = 240.0

# Index-only reads, cheap enough to run every 50 ms while the sink applies.
HEADS = (
    f"SELECT (SELECT max(id) FROM {SCHEMA}.cdc_t), "
    f"(SELECT n FROM {SCHEMA}.marker WHERE id = 1), (SELECT max(id) FROM {SCHEMA}.lat)"
)
# One scan of the backlog table: every insert moves max(id) or count, every delete count and
# min(id), every update sum(qty) (+1 each). The sink applies one topic (one partition) in
# order, so this matches the source's only once the last transaction is applied.
SIGNATURE = f"SELECT count(*), min(id), max(id), sum(qty) FROM {SCHEMA}.cdc_t"

State = tuple[tuple[Any, ...], tuple[Any, ...]]  # (heads, signature)


def read_heads(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = conn.execute(HEADS.encode()).fetchone()
    assert row is not None
    return tuple(row)


def signature(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = conn.execute(SIGNATURE.encode()).fetchone()
    assert row is not None
    return tuple(row)


def read_state(conn: psycopg.Connection[Any]) -> State:
    return read_heads(conn), signature(conn)


class KafkaSetup:
    """The Kafka stack and the `kcdc` pipeline, built once; `teardown` removes both."""

    def __init__(self, cdc: CdcSetup) -> None:
        self.cdc = cdc
        self.env: BenchEnv = cdc.env
        self.state_dir = self.env.workdir / "kafka-stack"
        self.stack: ks.Stack | None = None
        self.created = False
        self.ready = False
        self.stack_start_s: float | None = None
        self.pipeline_start_s: float | None = None

    def ensure(self) -> None:
        if self.ready:
            return
        env = self.env
        # Missing java (or mvn with no fetched jars) raises KafkaStackUnavailable here, before
        # anything is built: run.py records it as this benchmark's error.
        ks.find_java()
        ks.fetch()
        self.cdc.ensure()
        if self.cdc.running():
            self.cdc.stop_cdctui()
        env.cleanup.push("stop the Kafka stack", self.stop_stack)
        log(f"kafka: starting the Kafka stack in {self.state_dir}")
        t = time.perf_counter()
        self.stack = ks.start(self.state_dir, timeout=STACK_START_TIMEOUT_S)
        self.stack_start_s = time.perf_counter() - t
        log(f"kafka: broker and Connect up in {self.stack_start_s:.1f} s "
            f"({self.stack.connect_url})")  # fmt: skip
        env.cleanup.push("stop the kafka_connect pipeline", self.stop_pipeline_quietly)
        with env.conn(env.target, "postgres") as c:
            c.execute(f"CREATE DATABASE {KAFKA_DB}".encode())
        self._append_config(self.stack)
        t = time.perf_counter()
        env.cli("pipeline", "create", PIPELINE, "--source", "src", "--target", CONNECTION,
                "--tables", ",".join(f"{SCHEMA}.{n}" for n in TABLES),
                "--mode", "full_load_and_cdc", "--engine", "kafka_connect",
                "--connect-url", self.stack.connect_url)  # fmt: skip
        env.pipelines.append(PIPELINE)
        self.created = True
        env.cli("start", PIPELINE, "--wait", "running", "--timeout", "1800", timeout=1900)
        env.status(PIPELINE)
        self.catch_up()
        self.pipeline_start_s = time.perf_counter() - t
        log(f"kafka: pipeline {PIPELINE} loaded, streaming and caught up in "
            f"{self.pipeline_start_s:.1f} s")  # fmt: skip
        self.ready = True

    def _append_config(self, stack: ks.Stack) -> None:
        """A connection to KAFKA_DB (same cluster and password file as `tgt`) and the
        `[kafka_connect]` section: the stack's secrets dir, a 1 s poll, otherwise defaults."""
        config = self.env.config
        tgt = tomllib.loads(config.read_text())["connections"]["tgt"]
        with config.open("a") as fh:
            fh.write(
                f'\n[connections.{CONNECTION}]\nurl = "{self.env.target.url(KAFKA_DB)}"\n'
                f'password_file = "{tgt["password_file"]}"\n\n'
                f'[kafka_connect]\nsecrets_dir = "{stack.secrets_dir}"\n'
                f"poll_interval = {POLL_INTERVAL_S}\n"
            )

    # -- state ----------------------------------------------------------------------------

    def source_state(self) -> State:
        with self.env.src() as c:
            return read_state(c)

    def target_state(self) -> State:
        with self.env.tgt(KAFKA_DB) as c:
            return read_state(c)

    def catch_up(self, timeout: float = 1800) -> None:
        """Until the target holds what the source holds now (heads and signature)."""
        want = self.source_state()
        wait_until(lambda: self.target_state() == want, timeout, "kafka_connect catch-up", 0.5)

    def verify(self) -> None:
        """Source and kafka_connect target hold the same rows in every replicated table."""
        for table in TABLES:
            with self.env.src() as c:
                want = table_fingerprint(c, table)
            with self.env.tgt(KAFKA_DB) as c:
                got = table_fingerprint(c, table)
            if want != got:
                raise RuntimeError(f"{table}: source {want} vs kafka_connect {got}")

    # -- pipeline and stack ---------------------------------------------------------------

    def running(self) -> bool:
        return self.env.status(PIPELINE)["runner"] is not None

    def stop(self) -> None:
        self.env.stop_pipeline(PIPELINE)

    def start(self) -> None:
        self.env.cli("start", PIPELINE, "--wait", "running", "--timeout", "600", timeout=700)
        self.env.status(PIPELINE)

    def jvm_pids(self) -> dict[str, int | None]:
        stack = self.stack
        if stack is None:
            return {"connect": None, "broker": None}
        return {"connect": stack.connect_pid, "broker": stack.broker_pid}

    def jvm_cpu(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, pid in self.jvm_pids().items():
            out[name] = None
            if pid:
                with suppress(OSError):
                    out[name] = cpu_seconds(pid)
        return out

    def jvm_hwm_mb(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, pid in self.jvm_pids().items():
            out[name] = None
            if pid:
                with suppress(OSError, KeyError):
                    out[name] = kib(proc_status(pid)["VmHWM"]) / 1024
        return out

    def stop_pipeline_quietly(self) -> None:
        if self.created:
            self.env.cli("stop", PIPELINE, "--wait", "--timeout", "60", check=False, timeout=120)

    def stop_stack(self) -> None:
        ks.stop(self.state_dir)

    def teardown(self) -> None:
        """Stop and drop the pipeline (its slot goes, the replica identities it made FULL are
        restored), then stop the stack. Failures are logged: the run's Cleanup still follows."""
        env = self.env
        if self.created:
            env.cli("stop", PIPELINE, "--wait", "--timeout", "120", check=False, timeout=180)
            proc = env.cli("drop", PIPELINE, check=False, timeout=300)
            if proc.returncode == 0:
                self.created = False
                if PIPELINE in env.pipelines:
                    env.pipelines.remove(PIPELINE)
            else:
                log(f"kafka: drop {PIPELINE} failed: {proc.stderr.strip()}")
        if self.stack is not None:
            self.stack = None
            try:
                self.stop_stack()
            except Exception as exc:  # the run's Cleanup tries again
                log(f"kafka: stopping the Kafka stack failed: {exc}")


def timed_apply(
    setup: KafkaSetup, want: State, start_max: int, timeout: float
) -> tuple[float, float | None, int, bool]:
    """Poll the target every 50 ms from now until it holds `want`.

    Returns (seconds, seconds until bench.cdc_t's max(id) first moved past `start_max`, number
    of signature scans, whether the whole-table fingerprint needed longer than the signature).
    """
    want_heads, want_sig = want
    t0 = time.perf_counter()
    deadline = t0 + timeout
    first: float | None = None
    scans = 0
    with setup.env.tgt(KAFKA_DB) as c:
        while True:
            heads = read_heads(c)
            now = time.perf_counter()
            if first is None and (heads[0] or 0) > start_max:
                first = now - t0
            if heads == want_heads:
                scans += 1
                if signature(c) == want_sig:
                    total = time.perf_counter() - t0
                    break
            if now > deadline:
                raise RuntimeError(
                    f"timed out after {timeout:g} s waiting for the kafka_connect target to "
                    f"hold the backlog's end (target heads {heads}, source {want_heads})"
                )
            time.sleep(0.05)
    # Confirm with every row; should the signature have matched early, wait for the rows.
    late = False
    try:
        setup.verify()
    except RuntimeError:
        late = True
        wait_until(lambda: _verified(setup), max(60.0, deadline - time.perf_counter()),
                   "the kafka_connect target's rows to equal the source's", 0.5)  # fmt: skip
        total = time.perf_counter() - t0
    return total, first, scans, late


def _verified(setup: KafkaSetup) -> bool:
    try:
        setup.verify()
    except RuntimeError:
        return False
    return True


# -- backlog throughput ---------------------------------------------------------------------


def _backlog(setup: KafkaSetup, changes: int, reps: int) -> dict[str, Any]:
    env = setup.env
    # The embedded benchmarks' backlogs ran on the same table first (each adds N / 2 rows).
    rows_at_start = int(env.scalar(env.source, SOURCE_DB, f"SELECT count(*) FROM {SCHEMA}.cdc_t"))
    runs: list[dict[str, Any]] = []
    for i in range(reps):
        if setup.running():
            setup.stop()
        log(f"kafka backlog rep {i + 1}: writing {changes:,} changes")
        t = time.perf_counter()
        make_backlog(env, "cdc_t", changes)
        log(f"kafka backlog rep {i + 1}: written in {time.perf_counter() - t:.1f} s")
        want = setup.source_state()
        with env.tgt(KAFKA_DB) as c:
            start_max = int(read_heads(c)[0] or 0)
        cpu0 = setup.jvm_cpu()
        t = time.perf_counter()
        env.cli("start", PIPELINE)
        cli_s = time.perf_counter() - t
        total, first, scans, late = timed_apply(setup, want, start_max, 3600)
        cpu1 = setup.jvm_cpu()
        pid = env.runner_pid(PIPELINE)
        run: dict[str, Any] = {
            "seconds": total,
            "first_apply_s": first,
            "start_cli_s": cli_s,
            "signature_scans": scans,
            "fingerprint_later_than_signature": late,
            "runner_cpu_s": cpu_seconds(pid) if pid else None,
        }
        for name in ("connect", "broker"):
            a, b = cpu0[name], cpu1[name]
            run[f"{name}_cpu_s"] = None if a is None or b is None else b - a
        runs.append(run)
        log(f"kafka backlog rep {i + 1}: kafka_connect {total:.2f} s "
            f"({changes / total:,.0f}/s; first change applied after {first or 0:.2f} s; "
            f"Connect CPU {run['connect_cpu_s'] or 0:.1f} s, "
            f"broker CPU {run['broker_cpu_s'] or 0:.1f} s)")  # fmt: skip
    seconds = median([float(r["seconds"]) for r in runs])
    apply_only = median([float(r["seconds"]) - float(r["first_apply_s"] or 0) for r in runs])
    return {
        "changes": changes,
        "transaction_size": 10,
        "mix": "60% insert, 30% update, 10% delete",
        "reps": reps,
        "table_rows_at_start": rows_at_start,
        "changes_per_s": changes / seconds,
        "apply_only_changes_per_s": changes / max(apply_only, 1e-9),
        "seconds_median": seconds,
        "runs": runs,
        "verified_equal": True,
    }


# -- latency --------------------------------------------------------------------------------


def _latency(setup: KafkaSetup, rate: int, seconds: float, batch: int) -> dict[str, Any]:
    if not setup.running():
        setup.start()
    setup.catch_up()
    log(f"kafka latency: {rate}/s for {seconds:g} s in transactions of {batch}")
    lat = _latency_phase(setup.cdc, KAFKA_DB, rate, seconds, batch)
    log(f"kafka latency: p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, "
        f"max {lat['max_ms']:.0f} ms, missing {lat['missing']}")  # fmt: skip
    setup.catch_up()
    setup.verify()
    return lat


def bench_kafka_connect(
    cdc: CdcSetup, changes: int, reps: int, rate: int, seconds: float, batch: int
) -> dict[str, Any]:
    setup = KafkaSetup(cdc)
    try:
        setup.ensure()
        backlog = _backlog(setup, changes, reps)
        latency = _latency(setup, rate, seconds, batch)
        hwm = setup.jvm_hwm_mb()
    except Exception:
        setup.teardown()
        raise
    # On Ctrl-C/SIGTERM the run's Cleanup stops the pipeline and the stack instead.
    setup.teardown()
    return {
        "engine": "kafka_connect",
        "changes_per_s": backlog["changes_per_s"],
        "p50_ms": latency["p50_ms"],
        "p99_ms": latency["p99_ms"],
        "max_ms": latency["max_ms"],
        "backlog": backlog,
        "latency": {
            "rate_per_s": rate,
            "seconds": seconds,
            "transaction_size": batch,
            "poll_interval_ms": 10,
            **latency,
        },
        "stack_start_s": setup.stack_start_s,
        "pipeline_start_s": setup.pipeline_start_s,
        "connect_hwm_mb": hwm["connect"],
        "broker_hwm_mb": hwm["broker"],
        "runner_poll_interval_s": POLL_INTERVAL_S,
        "kafka_version": ks.KAFKA_VERSION,
        "debezium_version": ks.DEBEZIUM_VERSION,
    }
