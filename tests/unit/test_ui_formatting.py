"""How the console prints sizes, durations, percentages, progress and the pipeline overview."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.ui.formatting import DASH, clock, human_bytes, human_seconds, percent
from cdc_tui.ui.pipeline_detail import next_step, overview_text, progress_bar, settings_rows


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, DASH), (0, "0 B"), (1023, "1023 B"), (1024, "1.0 kB"), (5_300_000, "5.1 MB"),
     (3 * 1024**4, "3.0 TB"), (2 * 1024**6, "2048.0 PB")],
)  # fmt: skip
def test_human_bytes(value: int | None, shown: str) -> None:
    assert human_bytes(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, DASH), (0.4, "400 ms"), (12.34, "12.3 s"), (245, "4m05s"), (7620, "2h07m")],
)
def test_human_seconds(value: float | None, shown: str) -> None:
    assert human_seconds(value) == shown


def test_percent_and_clock() -> None:
    assert percent(None) == DASH
    assert percent(41.6) == "42%"
    assert clock(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02 03:04:05"
    assert clock(None) == DASH


def test_progress_bar() -> None:
    assert progress_bar(0, None) == DASH
    assert progress_bar(50, 100) == "█████░░░░░   50%"
    assert progress_bar(150, 100) == "██████████  100%"


def test_overview_names_the_runner_reasons_and_the_error_verbatim() -> None:
    doc = {
        "name": "orders", "engine": "embedded", "mode": "full_load_and_cdc",
        "status": "RUNNING", "full_load_status": "COMPLETED", "cdc_status": "RECONNECTING",
        "health": "degraded", "health_reasons": ["target unreachable, retrying"],
        "full_load": {"lsn": "0/16B3748", "started_at": None, "completed_at": None},
        "cdc": {"applied_lsn": None, "changes_applied": 3, "lag_seconds": 2.5},
        "runner": {"pid": 42, "host": "db1", "heartbeat_at": "t", "heartbeat_recent": True},
        "last_error": "value [id=1] too long",
    }  # fmt: skip
    text = overview_text(doc)
    assert "  - target unreachable, retrying" in text
    assert "Handoff LSN  0/16B3748" in text
    assert "pid 42 on db1, alive" in text
    assert "value [id=1] too long" in text
    assert "Runner       none" in overview_text({**doc, "runner": None})


def test_settings_never_show_a_password() -> None:
    pipeline: Any = SimpleNamespace(
        source=ConnectionRef("postgresql://app:hunter2@db1:5432/shop", "postgresql",
                             password_env="SRC_PW"),
        target=ConnectionRef("postgresql://dw@dw1/mirror?password=s3cret", "postgresql",
                             password_file="/etc/cdc/dw.pw"),
        tables=[SimpleNamespace(table='shop."Order Items"')], target_schema=None,
        slot_name="cdc_tui_orders", publication_name="cdc_tui_orders", generation=2,
        connect_url="http://connect:s3cret@kc1:8083",
    )  # fmt: skip
    rows = dict(settings_rows(pipeline))
    text = " ".join(rows.values())
    assert "hunter2" not in text and "s3cret" not in text
    assert rows["Source"].endswith("(password from $SRC_PW)")
    assert rows["Target"].endswith("(password from /etc/cdc/dw.pw)")
    assert rows["Tables"] == 'shop."Order Items"' and rows["Generation"] == "2"


@pytest.mark.parametrize(
    ("doc", "hint"),
    [({"health": "healthy"}, None),
     ({"health": "failed", "status": "ERROR"}, "Read the last error"),
     ({"health": "failed", "slot": {"wal_status": "lost"}}, "resync"),
     ({"health": "degraded", "status": "RUNNING", "runner": None}, "heartbeats"),
     ({"health": "degraded", "status": "STARTING", "slot": {"exists": True, "active": False}},
      "start the pipeline"),
     ({"health": "degraded", "status": "RUNNING", "runner": {"heartbeat_recent": True},
       "slot": {"error": "source unreachable"}}, "cannot be reached")],
)  # fmt: skip
def test_next_step_names_the_action(doc: dict[str, Any], hint: str | None) -> None:
    step = next_step(doc)
    assert step == hint if hint is None else (step is not None and hint in step)
