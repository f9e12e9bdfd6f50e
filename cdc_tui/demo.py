"""`cdc-tui demo`: an embedded PostgreSQL with sample tables, a demo pipeline and a live writer.

Everything lives in a temporary directory with its own metadata DB, so the demo never touches
the user's pipelines; it is removed on exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import Engine
from cdc_tui.errors import CdcTuiError, OperationError
from cdc_tui.localpg import LocalCluster, PgBinaries, find_binaries
from cdc_tui.services.context import AppContext, build_context
from cdc_tui.services.control import start_pipeline, stop_pipeline, wait_for
from cdc_tui.services.pipelines import create_pipeline
from cdc_tui.services.plan import plan_pipeline
from cdc_tui.services.preflight import check_pipeline
from cdc_tui.services.status import status_document
from cdc_tui.store.repositories import PipelineRepository

DEMO_PIPELINE = "demo"
DEMO_TABLES = (
    TableRef("shop", "customers"),
    TableRef("shop", "orders"),
    TableRef("shop", "Order Items"),
)

SAMPLE_SCHEMA = """
CREATE SCHEMA shop;
CREATE TYPE shop.order_state AS ENUM ('new', 'paid', 'shipped', 'cancelled');
CREATE TABLE shop.customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE shop.orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES shop.customers(id),
    state shop.order_state NOT NULL DEFAULT 'new',
    total numeric(12, 2) NOT NULL,
    note jsonb,
    placed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE shop."Order Items" (
    order_id bigint NOT NULL REFERENCES shop.orders(id),
    line int NOT NULL,
    sku text NOT NULL,
    quantity int NOT NULL,
    PRIMARY KEY (order_id, line)
);
INSERT INTO shop.customers (name, email)
SELECT 'customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 2000) g;
INSERT INTO shop.orders (customer_id, total, note)
SELECT 1 + g % 2000, (g % 997) * 1.25, jsonb_build_object('source', 'seed', 'n', g)
  FROM generate_series(1, 20000) g;
INSERT INTO shop."Order Items" (order_id, line, sku, quantity)
SELECT o, l, 'SKU-' || (o * 7 + l) % 500, 1 + l
  FROM generate_series(1, 20000) o, generate_series(1, 3) l;
"""

WRITER_STATEMENTS = (
    "INSERT INTO shop.orders (customer_id, total, note) "
    "VALUES (1 + (random() * 1999)::int, round((random() * 500)::numeric, 2), "
    '\'{"source": "writer"}\')',
    "UPDATE shop.orders SET state = 'paid' WHERE id = (SELECT max(id) FROM shop.orders)",
    "UPDATE shop.customers SET email = md5(random()::text) || '@example.com' "
    "WHERE id = 1 + (random() * 1999)::int",
)

COUNT_QUERY = sql.SQL("SELECT count(*) FROM {}.{}")


def _pgserver_binaries() -> PgBinaries:
    found = find_binaries()
    if not found:
        raise OperationError(
            "The demo needs an embedded PostgreSQL; install it with "
            "`pip install 'cdc-tui[demo]'` and run `cdc-tui demo` again."
        )
    preferred = [b for b in found if b.origin == "pgserver"]
    return (preferred or found)[0]


@contextmanager
def demo_cluster(base: Path) -> Iterator[LocalCluster]:
    """A logical-WAL cluster with demo_source (sample data) and demo_target databases."""
    cluster = LocalCluster(base / "pg", _pgserver_binaries())
    cluster.init()
    cluster.start()
    try:
        with psycopg.connect(cluster.admin_conninfo(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE demo_source")
            conn.execute("CREATE DATABASE demo_target")
        with psycopg.connect(cluster.admin_conninfo("demo_source"), autocommit=True) as conn:
            conn.execute(SAMPLE_SCHEMA.encode())  # a fixed script, no user input
        yield cluster
    finally:
        cluster.destroy()


def _write_config(base: Path, cluster: LocalCluster) -> Path:
    """A private config whose connections read the password from a 0600 file."""
    secret = base / "demo.password"
    secret.write_text(cluster.superuser_password + "\n")
    secret.chmod(0o600)
    config = base / "config.toml"
    config.write_text(
        f'metadata_url = "sqlite:///{base / "metadata.db"}"\n\n'
        f'[logging]\nfile = "{base / "cdc-tui.log"}"\n\n'
        f'[connections.demo_source]\nurl = "{cluster.url("demo_source")}"\n'
        f'password_file = "{secret}"\n\n'
        f'[connections.demo_target]\nurl = "{cluster.url("demo_target")}"\n'
        f'password_file = "{secret}"\n'
    )
    config.chmod(0o600)
    return config


class Writer(threading.Thread):
    """Generates a steady trickle of changes on the source so lag and logs move."""

    def __init__(self, conninfo: str, pause_s: float = 0.2) -> None:
        super().__init__(name="demo-writer", daemon=True)
        self.conninfo = conninfo
        self.pause_s = pause_s
        self.changes = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            i = 0
            while not self.stopped.wait(self.pause_s):
                conn.execute(WRITER_STATEMENTS[i % len(WRITER_STATEMENTS)].encode())
                self.changes += 1
                i += 1


def _row_counts(conninfo: str) -> str:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        parts = []
        for ref in DEMO_TABLES:
            query = COUNT_QUERY.format(sql.Identifier(ref.schema), sql.Identifier(ref.name))
            row = conn.execute(query).fetchone()
            parts.append(f"{ref.name}={row[0] if row else 0}")
    return " ".join(parts)


def _status_line(ctx: AppContext, cluster: LocalCluster, writer: Writer) -> str:
    doc = status_document(ctx, DEMO_PIPELINE)
    lag = doc["cdc"]["lag_seconds"]
    return (
        f"{time.strftime('%H:%M:%S')}  {doc['name']}  status={doc['status']}  "
        f"full_load={doc['full_load_status']}  cdc={doc['cdc_status']}  health={doc['health']}  "
        f"applied={doc['cdc']['changes_applied']}  lag={'-' if lag is None else f'{lag:.1f}s'}  "
        f"slot_lag={doc['slot']['lag_bytes']}B  writer: {writer.changes} changes\n"
        f"          source rows: {_row_counts(cluster.admin_conninfo('demo_source'))}\n"
        f"          target rows: {_row_counts(cluster.admin_conninfo('demo_target'))}"
    )


def _demo_environ() -> dict[str, str]:
    """The user's environment without CDC_TUI_* overrides, so the demo stays self-contained."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CDC_TUI_")}


def run_demo(
    duration: float | None = None,
    interval: float = 2.0,
    *,
    console: bool = False,
    engine: Engine = Engine.EMBEDDED,
) -> int:
    """Run the demo: in the console until it quits, or printing live status lines until Ctrl-C
    (or `duration` seconds). The kafka_connect engine runs on a local Kafka stack of its own."""
    base = Path(tempfile.mkdtemp(prefix="cdc-tui-demo-"))
    out = sys.stdout
    _interrupt_on_hangup()
    try:
        print(f"Starting an embedded PostgreSQL in {base} ...", file=out, flush=True)
        with demo_cluster(base) as cluster, _demo_connect(base, engine) as connect_url:
            config = _write_config(base, cluster)
            if connect_url is not None:
                with config.open("a") as fh:
                    fh.write(f'\n[kafka_connect]\nsecrets_dir = "{base / "kafka" / "secrets"}"\n')
            ctx = build_context(config, environ=_demo_environ())
            try:
                _show_pipeline(ctx, console=console, engine=engine, connect_url=connect_url)
                if console:
                    _in_console(ctx, cluster)
                else:
                    _stream_status(ctx, cluster, duration, interval)
            except KeyboardInterrupt:
                print("Stopping the demo.", flush=True)
            finally:
                # The runner is detached on purpose; the demo owns its cluster, so it stops the
                # runner first, whenever it was started.
                _stop_runner(ctx)
                ctx.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def _stop_runner(ctx: AppContext) -> None:
    try:
        stop_pipeline(ctx, DEMO_PIPELINE, wait=True, timeout_s=30)
    except CdcTuiError as exc:  # never created or never started: nothing to stop
        print(f"(the demo pipeline had no runner to stop: {exc.message})", file=sys.stderr)


def _interrupt_on_hangup() -> None:
    """SIGTERM and SIGHUP (a lost SSH session) end the demo like Ctrl-C, so it still removes its
    cluster and stops its runner instead of leaving them behind."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, interrupt)


@contextmanager
def _demo_connect(base: Path, engine: Engine) -> Iterator[str | None]:
    """For kafka_connect, a Kafka broker and Connect worker in the demo's directory."""
    if engine != Engine.KAFKA_CONNECT:
        yield None
        return
    from cdc_tui import kafka_stack as ks

    state_dir = base / "kafka"
    print("Fetching Kafka, Kafka Connect and Debezium (cached after the first run) ...", flush=True)
    try:
        ks.fetch()
        print("Starting a Kafka broker and a Connect worker ...", flush=True)
        stack = ks.start(state_dir, timeout=300)
    except (ks.KafkaStackUnavailable, ks.KafkaStackError) as exc:
        raise OperationError(f"The kafka_connect demo cannot start its Kafka stack: {exc}") from exc
    try:
        yield stack.connect_url
    finally:
        ks.stop(state_dir)


def _show_pipeline(
    ctx: AppContext,
    *,
    console: bool = False,
    engine: Engine = Engine.EMBEDDED,
    connect_url: str | None = None,
) -> None:
    create_pipeline(
        ctx, name=DEMO_PIPELINE, source="demo_source", target="demo_target", tables=DEMO_TABLES,
        engine=engine, connect_url=connect_url,
    )  # fmt: skip
    print(f"Created pipeline {DEMO_PIPELINE!r} for {', '.join(map(str, DEMO_TABLES))}.")
    _, findings = check_pipeline(ctx, DEMO_PIPELINE)
    for f in findings:
        print(f"  check {f.severity:<7} {f.rule}: {f.object}: {f.message}")
    print("Step 0 plan (target DDL):")
    for line in plan_pipeline(ctx, DEMO_PIPELINE).sql.splitlines():
        print(f"  {line}")
    pid = start_pipeline(ctx, DEMO_PIPELINE)
    print(f"Started the runner (pid {pid}): Step 0, Step 1 (full load), then Step 2 (CDC).")
    wait_for(ctx, DEMO_PIPELINE, "running", pid=pid, timeout_s=300)
    for record in PipelineRepository(ctx.store).logs(DEMO_PIPELINE):
        print(f"  {record.message}")
    stop_how = "q in the console ends" if console else "Ctrl-C stops"
    print(
        f"Replicating. A writer now changes the source; watch the target follow. "
        f"{stop_how} the demo.",
        flush=True,
    )


def _in_console(ctx: AppContext, cluster: LocalCluster) -> None:
    """The console on the demo pipeline while the writer keeps the lag and the logs moving."""
    from cdc_tui.ui.app import run_console  # only the console imports Textual (DESIGN §9)

    writer = Writer(cluster.admin_conninfo("demo_source"))
    writer.start()
    try:
        run_console(ctx)
    finally:
        writer.stopped.set()
        writer.join(timeout=5)


def _stream_status(
    ctx: AppContext, cluster: LocalCluster, duration: float | None, interval: float
) -> None:
    writer = Writer(cluster.admin_conninfo("demo_source"))
    writer.start()
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while deadline is None or time.monotonic() < deadline:
            print(_status_line(ctx, cluster, writer), flush=True)
            remaining = interval if deadline is None else deadline - time.monotonic()
            time.sleep(max(0.0, min(interval, remaining)))
    finally:
        writer.stopped.set()
        writer.join(timeout=5)
