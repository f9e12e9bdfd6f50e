"""The console's per-table resync on a kafka_connect pipeline, driven by Pilot against two real
clusters and the session's real broker and Connect worker (Debezium).

Enter on the pipeline, `2` for Tables, the cursor on a table, `ctrl+r`, `y`: the metadata DB must
show the table go COPYING then COMPLETED, and the target must equal the source again (count and
checksum) while the other table keeps streaming.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from cdc_tui import kafka_stack as ks
from cdc_tui.services.context import AppContext, build_context
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.ui.app import CdcTuiApp
from cdc_tui.ui.screens.confirm import ConfirmModal
from cdc_tui.ui.screens.error import ErrorModal
from cdc_tui.ui.screens.pipeline import PipelineScreen
from cdc_tui.ui.screens.pipelines import COLUMN_INDEX
from tests.integration.kafka_support import running_kafka_pipeline
from tests.integration.runner_support import Cli, wait_converged, wait_status
from tests.integration.test_console import SIZE, table_of, until
from tests.pg import Database

pytestmark = pytest.mark.integration

NAME = "kconsole"
TABLES = [("shop", "customers", ["id"]), ("shop", "Order Items", ["order_id", "line"])]
TABLE_LIST = 'shop.customers,shop."Order Items"'
RESYNCED = "shop.customers"


@pytest.fixture
def cli(
    tmp_path: Path, source_db: Database, target_db: Database, kafka_stack: ks.Stack
) -> Iterator[Cli]:
    with running_kafka_pipeline(tmp_path, source_db, target_db, kafka_stack, NAME, TABLE_LIST) as c:
        yield c


@pytest.fixture
def ctx(cli: Cli) -> Iterator[AppContext]:
    context = build_context(cli.env.config, environ=cli.environ(), actor="console:test")
    yield context
    context.close()


def table_state(doc: dict[str, Any], table: str) -> str:
    return str(next(t["state"] for t in doc["full_load"]["tables"] if t["table"] == table))


def row_status(app: CdcTuiApp) -> str | None:
    table = table_of(app)
    return table.row(NAME)[COLUMN_INDEX["status"]] if NAME in table.keys else None


def offered(screen: PipelineScreen) -> set[str]:
    return {b.binding.action for b in screen.active_bindings.values()}


def cursor_key(table: DataTable[Any]) -> str | None:
    if table.row_count == 0:
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


async def test_ctrl_r_on_the_tables_tab_resyncs_one_table_while_the_other_streams(
    ctx: AppContext,
    cli: Cli,
    source_db: Database,
    target_db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source_db.execute(
        "INSERT INTO shop.customers SELECT g, 'more' || g, NULL FROM generate_series(101, 3000) g"
    )
    wait_status(cli, NAME, lambda d: d["cdc_status"] == "RUNNING", 120, "CDC running")
    wait_converged(source_db, target_db, TABLES, timeout=120)
    # Damage the target copy so that only a real re-read can repair it.
    target_db.execute("DELETE FROM shop.customers WHERE id % 3 = 0")
    target_db.execute("INSERT INTO shop.customers VALUES (-999, 'stray', NULL)")
    repo = PipelineRepository(ctx.store)
    newest_event = max((e.id for e in repo.events(NAME, limit=500)), default=0)

    app = CdcTuiApp(ctx)
    notes: list[tuple[str, str]] = []
    notify = app.notify

    def recording(message: str, **kwargs: Any) -> None:
        notes.append((kwargs.get("title", ""), message))
        notify(message, **kwargs)

    monkeypatch.setattr(app, "notify", recording)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_status(app) == "RUNNING", "the pipeline row")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PipelineScreen), "the pipeline screen")
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        await until(pilot, lambda: screen.engine == "kafka_connect", "the first poll")
        assert "resync_table" not in offered(screen)  # only on the Tables tab
        await pilot.press("2")
        await until(pilot, lambda: "resync_table" in offered(screen), "ctrl+r offered")
        tables = screen.query_one("#tables-table", DataTable)
        await until(pilot, lambda: tables.row_count == 2, "both tables listed")
        await pilot.press("tab")
        for _ in range(tables.row_count):
            if cursor_key(tables) == RESYNCED:
                break
            await pilot.press("down")
        assert cursor_key(tables) == RESYNCED

        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        assert RESYNCED in modal.question and NAME in modal.question
        assert "emptied first" in modal.question and "keep streaming" in modal.question
        await pilot.press("y")
        await until(
            pilot,
            lambda: any("incremental snapshot" in text for _title, text in notes),
            "the resync's result",
            timeout=120,
        )
        assert not isinstance(app.screen, ErrorModal)
        title, text = next(n for n in notes if "incremental snapshot" in n[1])
        assert RESYNCED in title and NAME in title
        assert f"truncated target table {RESYNCED}" in text
        # The stray row went with the truncate, before the snapshot was signalled.
        assert target_db.scalar("SELECT count(*) FROM shop.customers WHERE id = -999") == 0
        # The other table streams meanwhile.
        source_db.execute(
            "INSERT INTO shop.\"Order Items\" SELECT g, 1, 'during' FROM generate_series(1, 50) g"
        )
        await until(
            pilot,
            lambda: table_state(cli.status(NAME), RESYNCED) == "COMPLETED",
            "the incremental snapshot to finish",
            timeout=180,
        )
        # The console's own poll shows it too.
        await until(
            pilot,
            lambda: str(tables.get_cell(RESYNCED, "state")) == "COMPLETED",
            "COMPLETED on screen",
        )

    # What the metadata DB recorded: the console's resync, then COPYING, then COMPLETED.
    events = sorted(
        (e for e in repo.events(NAME, limit=500) if e.id > newest_event), key=lambda e: e.id
    )
    resync = [e for e in events if e.reason.startswith("resync: truncated target table")]
    assert resync and resync[0].actor == "console:test"
    states = [e.to_value for e in events if e.table is not None and str(e.table) == RESYNCED]
    assert "COPYING" in states, states
    assert states[-1] == "COMPLETED" and "COMPLETED" in states[states.index("COPYING") :], states
    other = [e for e in events if e.table is not None and str(e.table) != RESYNCED]
    assert not other, other  # the other table was never touched
    doc = cli.status(NAME)
    assert doc["cdc_status"] == "RUNNING"
    assert table_state(doc, 'shop."Order Items"') == "COMPLETED"
    wait_converged(source_db, target_db, TABLES, timeout=180)
    assert target_db.scalar("SELECT count(*) FROM shop.customers WHERE id = -999") == 0
