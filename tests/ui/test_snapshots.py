"""Snapshots of the console at 80x24 and 120x40 with fixed data and no clock.

The board reader here returns a fixed Board instead of polling the metadata DB and the sources:
a stand-in for determinism only; tests/integration/test_console.py drives the same screens
against real clusters.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cdc_tui.services.board import Board, BoardRow, SourceState
from cdc_tui.services.context import AppContext, build_context
from cdc_tui.store.records import EventKind, EventRecord, LogRecord
from cdc_tui.ui.app import CdcTuiApp
from cdc_tui.ui.screens.error import ErrorModal
from cdc_tui.ui.screens.pipeline import Detail

AT = datetime(2026, 11, 23, 9, 30, 0, tzinfo=UTC)
SIZES = [(80, 24), (120, 40)]


def _row(name: str, **over: Any) -> BoardRow:
    fields: dict[str, Any] = {
        "name": name, "engine": "embedded", "mode": "full_load_and_cdc", "status": "RUNNING",
        "full_load_status": "COMPLETED", "full_load_percent": 100.0, "cdc_status": "RUNNING",
        "lag_bytes": 2048, "lag_seconds": 0.4, "retained_bytes": 5_300_000, "slot_active": True,
        "wal_status": "reserved", "health": "healthy", "health_reasons": (),
        "last_error_short": None, "source_key": "src", "stale": False, "updated_at": AT,
    }  # fmt: skip
    fields.update(over)
    return BoardRow(**fields)


BOARD = Board(
    rows=(
        _row(
            "billing",
            status="RUNNING",
            full_load_status="IN_PROGRESS",
            full_load_percent=42.0,
            cdc_status="NOT_STARTED",
            lag_bytes=None,
            lag_seconds=None,
        ),
        _row(
            "inventory",
            source_key="legacy",
            stale=True,
            health="degraded",
            health_reasons=("source unreachable",),
            lag_bytes=None,
            retained_bytes=None,
        ),
        _row("orders"),
        _row(
            "payments",
            status="ERROR",
            cdc_status="ERROR",
            health="failed",
            last_error_short='rejected change on shop."Order Items" [id=42]: value too long',
        ),
    ),
    sources={
        "src": SourceState("src", True, None),
        "legacy": SourceState("legacy", False, "source unreachable: connection refused"),
    },
    taken_at=AT,
)


def _log(i: int, step: int, message: str, level: str = "INFO") -> LogRecord:
    return LogRecord(i, step, level, AT, message)


def _event(i: int, field: str | None, old: str | None, new: str | None, why: str) -> EventRecord:
    kind = EventKind.TRANSITION if field else EventKind.ACTION
    return EventRecord(i, "billing", AT, kind, field, None, old, new, why, "cli:dba@db-admin-1")


# What the pipeline screen shows for "billing": a full load half done, its slot lagging.
DETAIL = Detail(
    document={
        "name": "billing", "engine": "embedded", "mode": "full_load_and_cdc",
        "status": "RUNNING", "full_load_status": "IN_PROGRESS", "cdc_status": "NOT_STARTED",
        "health": "degraded", "health_reasons": ["slot lag 1.2 GB is above 1.0 GB"],
        "updated_at": "2026-11-23T09:30:00Z",
        "full_load": {"lsn": "0/1553E40", "started_at": "2026-11-23T09:12:00Z",
                      "completed_at": None,
                      "tables": [
                          {"table": "public.invoices", "state": "COMPLETED",
                           "rows_copied": 1_200_000, "rows_estimated": 1_200_000},
                          {"table": 'shop."Order Items"', "state": "COPYING",
                           "rows_copied": 420_000, "rows_estimated": 1_000_000},
                          {"table": "public.payments", "state": "PENDING",
                           "rows_copied": 0, "rows_estimated": 350_000}]},
        "slot": {"name": "cdc_tui_billing", "exists": True, "active": False,
                 "active_pid": None, "wal_status": "extended", "safe_wal_size": 10_485_760,
                 "restart_lsn": "0/1553E40", "confirmed_flush_lsn": "0/1553E40",
                 "retained_bytes": 1_288_490_188, "lag_bytes": 1_288_490_188},
        "cdc": {"applied_lsn": None, "lag_seconds": None, "changes_applied": 0,
                "last_applied_at": None},
        "connectors": [],
        "runner": {"pid": 4242, "host": "db-admin-1", "heartbeat_at": "2026-11-23T09:29:58Z",
                   "heartbeat_recent": True},
        "last_error": None,
    },
    settings=(("Source", "postgresql://cdc_reader@db1.example:5432/shop  (password from $SRC_PW)"),
              ("Target", "postgresql://cdc_writer@dw.example:5432/mirror"),
              ("Tables", 'public.invoices, shop."Order Items", public.payments'),
              ("Target schema", "(as on the source)"), ("Slot", "cdc_tui_billing"),
              ("Publication", "cdc_tui_billing"), ("Generation", "1")),
    logs=[_log(1, 0, "created 3 tables in mirror"),
          _log(2, 1, "slot cdc_tui_billing created at 0/1553E40 with an exported snapshot"),
          _log(3, 1, "public.invoices: 1,200,000 rows copied in 41.2 s"),
          _log(4, 1, 'shop."Order Items": 420,000 of ~1,000,000 rows [red]copied[/red]'),
          _log(5, 1, "public.payments: waiting for a worker", "DEBUG")],
    events=[_event(3, "full_load_status", "NOT_STARTED", "IN_PROGRESS", "step 1 began"),
            _event(2, "status", "STARTING", "RUNNING", "runner claimed the lease"),
            _event(1, None, None, None, "start requested")],
)  # fmt: skip


SINK_TRACE = (
    "org.apache.kafka.connect.errors.ConnectException: Exiting WorkerSinkTask due to "
    "unrecoverable exception.\n"
    "\tat org.apache.kafka.connect.runtime.WorkerSinkTask.deliverMessages"
    "(WorkerSinkTask.java:632) ~[connect-runtime-3.7.0.jar:?]\n"
    'Caused by: org.postgresql.util.PSQLException: ERROR: relation "shop.customers" does not '
    "exist\n"
    "\tat org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse"
    "(QueryExecutorImpl.java:2725) ~[postgresql-42.7.3.jar:42.7.3]"
)
CONNECT_URL = "http://127.0.0.1:8083"
WORKER = "127.0.0.1:8083"


def connector(role: str, state: str, *tasks: tuple[str, str | None]) -> dict[str, Any]:
    """One `connectors` entry of the status document, its tasks given as (state, trace)."""
    return {
        "name": f"cdc-tui.orders.6753a1b2g1.{role}", "role": role, "type": role,
        "state": state, "worker_id": WORKER, "trace": None,
        "tasks": [{"id": i, "state": task_state, "worker_id": WORKER, "trace": trace}
                  for i, (task_state, trace) in enumerate(tasks)],
    }  # fmt: skip


# The screen of "orders" as a Kafka Connect pipeline (its board row is left embedded, so the
# board's snapshots stay as they were): its source runs, its sink's only task failed.
CONNECT_DETAIL = Detail(
    document={
        **DETAIL.document, "name": "orders", "engine": "kafka_connect",
        "connectors": [connector("source", "RUNNING", ("RUNNING", None)),
                       connector("sink", "RUNNING", ("FAILED", SINK_TRACE))],
        "connect": {"url": CONNECT_URL, "reachable": True, "error": None},
    },
    settings=DETAIL.settings,
)  # fmt: skip
# The same pipeline while its Connect worker does not answer.
UNREACHABLE_DETAIL = Detail(
    document={
        **CONNECT_DETAIL.document, "connectors": [],
        "connect": {"url": CONNECT_URL, "reachable": False,
                    "error": f"Kafka Connect at {CONNECT_URL} did not answer GET /connectors "
                             "(ConnectError); check that the Connect worker runs and the URL "
                             "is right."},
    },
    settings=DETAIL.settings,
)  # fmt: skip
DETAILS = {"orders": CONNECT_DETAIL}


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'metadata_url = "sqlite:///{tmp_path / "m.db"}"\n\n'
        '[connections.src]\nurl = "postgresql://cdc_reader@db1.example:5432/shop"\n\n'
        '[connections.tgt]\nurl = "postgresql://cdc_writer@dw.example:5432/mirror"\n'
    )
    context = build_context(config, environ={})
    yield context
    context.close()


def app_for(
    ctx: AppContext, *, read_only: bool = False, details: dict[str, Detail] | None = None
) -> CdcTuiApp:
    """The console on the fixed board; a pipeline's screen shows `details[name]` or DETAIL."""
    shown = DETAILS if details is None else details
    return CdcTuiApp(
        ctx,
        read_only=read_only,
        reader=lambda: BOARD,
        detail_reader=lambda name, after: shown.get(name, DETAIL),
    )


@pytest.mark.parametrize("size", SIZES)
def test_pipelines_screen(snap_compare: Any, ctx: AppContext, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(ctx), terminal_size=size, press=["down"])


@pytest.mark.parametrize("size", SIZES)
def test_pipelines_screen_read_only(
    snap_compare: Any, ctx: AppContext, size: tuple[int, int]
) -> None:
    assert snap_compare(app_for(ctx, read_only=True), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare: Any, ctx: AppContext, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(ctx), terminal_size=size, press=["question_mark"])


@pytest.mark.parametrize("size", SIZES)
def test_drop_confirmation(snap_compare: Any, ctx: AppContext, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(ctx), terminal_size=size, press=["d"])


@pytest.mark.parametrize("size", SIZES)
def test_error_modal_escapes_markup(
    snap_compare: Any, ctx: AppContext, size: tuple[int, int]
) -> None:
    app = app_for(ctx)

    async def open_error(pilot: Any) -> None:
        await pilot.pause()
        message = "Connection to [bold]src[/bold] refused; check the host."
        app.push_screen(ErrorModal("start orders: Source error", message))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=open_error)


@pytest.mark.parametrize("size", SIZES)
def test_new_pipeline_form(snap_compare: Any, ctx: AppContext, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(ctx), terminal_size=size, press=["n"])


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("tab", ["1", "2", "3", "4", "5", "6"])
def test_pipeline_screen_panes(
    snap_compare: Any, ctx: AppContext, size: tuple[int, int], tab: str
) -> None:
    """Enter on billing, then each tab by its digit: Overview, Tables, Logs, Slot, Connectors
    (billing runs the embedded engine: no connectors), History."""
    assert snap_compare(app_for(ctx), terminal_size=size, press=["enter", tab])


# Down twice to orders, Enter, 5 for Connectors, Tab into the table, down to the sink's task.
TO_FAILED_TASK = ["down", "down", "enter", "5", "tab", "down", "down", "down"]


@pytest.mark.parametrize("size", SIZES)
def test_connectors_pane(snap_compare: Any, ctx: AppContext, size: tuple[int, int]) -> None:
    """A running source, a sink whose task failed, and that task's trace under the table."""
    assert snap_compare(app_for(ctx), terminal_size=size, press=TO_FAILED_TASK)


@pytest.mark.parametrize("size", SIZES)
def test_connectors_pane_unreachable(
    snap_compare: Any, ctx: AppContext, size: tuple[int, int]
) -> None:
    """Connect does not answer: the pane says so, as a warning, and lists no connectors."""
    app = app_for(ctx, details={"orders": UNREACHABLE_DETAIL})
    assert snap_compare(app, terminal_size=size, press=["down", "down", "enter", "5"])
