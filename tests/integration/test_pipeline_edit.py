"""`cdc-tui pipeline edit` against real clusters: metadata-only edits of a pipeline that never
ran, refusals that leave everything as it was, and an edit that resyncs a pipeline that ran."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc_tui.services.context import build_context
from cdc_tui.store.repositories import PipelineRepository
from tests.integration.runner_support import (
    Cli,
    create_pipeline,
    pipeline_cli,
    source_objects,
    start_running,
    wait_status,
    wait_until,
)
from tests.pg import Database
from tests.tables import table_checksum

NAME = "edited"


@pytest.fixture
def cli(tmp_path: Path, source_db: Database, target_db: Database) -> Iterator[Cli]:
    with pipeline_cli(tmp_path, source_db, target_db, NAME) as c:
        create_pipeline(c, NAME, "shop.customers")
        yield c


def stored(cli: Cli) -> dict[str, object]:
    ctx = build_context(cli.env.config, environ=cli.environ())
    try:
        record = PipelineRepository(ctx.store).get(NAME)
        events = [e.reason for e in PipelineRepository(ctx.store).events(NAME)]
    finally:
        ctx.close()
    return {"tables": [str(t.table) for t in record.tables], "mode": str(record.mode),
            "schema": record.target_schema, "status": str(record.status),
            "full_load": str(record.full_load_status), "events": events}  # fmt: skip


def test_a_pipeline_that_never_ran_is_edited_in_the_metadata_only(
    cli: Cli, source_db: Database
) -> None:
    proc = cli.run("pipeline", "edit", NAME, "--tables", 'shop."Order Items",shop.customers',
                   "--mode", "full_load_only", "--target-schema", "mirror")  # fmt: skip
    assert 'tables: + shop."Order Items"' in proc.stdout
    after = stored(cli)
    assert after["tables"] == ['shop."Order Items"', "shop.customers"]
    assert (after["mode"], after["schema"]) == ("full_load_only", "mirror")
    assert any(str(r).startswith('edited: tables: + shop."Order Items"') for r in after["events"])  # type: ignore[union-attr]
    assert source_objects(source_db, NAME) == (0, 0)
    # cdc_only's full load is SKIPPED: the mode carries its initial status with it.
    cli.run("pipeline", "edit", NAME, "--mode", "cdc_only", "--target-schema", "")
    after = stored(cli)
    assert (after["mode"], after["full_load"], after["schema"]) == ("cdc_only", "SKIPPED", None)


def test_refusals_change_nothing(cli: Cli) -> None:
    before = stored(cli)
    cases = [
        (("--tables", "shop.customers"), "Nothing to change"),
        (("--tables", 'shop."unclosed'), "unclosed"),
        (("--source", "no_such_connection"), "no_such_connection"),
        (("--tables", "shop.customers,shop.customers"), "listed twice"),
    ]
    for argv, words in cases:
        proc = cli.run("pipeline", "edit", NAME, *argv, check=False)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert words in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    proc = cli.run("pipeline", "edit", "nobody", "--mode", "cdc_only", check=False)
    assert proc.returncode == 2 and "nobody" in proc.stderr
    assert stored(cli) == before


def test_a_pipeline_that_ran_needs_resync_and_then_converges(
    cli: Cli, source_db: Database, target_db: Database
) -> None:
    start_running(cli, NAME)
    wait_status(cli, NAME, lambda d: d["cdc_status"] == "RUNNING", 120, "CDC running")
    proc = cli.run("pipeline", "edit", NAME, "--target-schema", "mirror", check=False)
    assert proc.returncode == 2 and "is RUNNING; stop it first" in proc.stderr
    cli.run("stop", NAME, "--wait", "--timeout", "60")
    source_db.execute("INSERT INTO shop.customers VALUES (5000, 'while stopped', NULL)")
    before = stored(cli)
    proc = cli.run("pipeline", "edit", NAME, "--target-schema", "mirror", check=False)
    assert proc.returncode == 2 and "add --resync" in proc.stderr
    assert stored(cli) == before
    dry = json.loads(cli.run("pipeline", "edit", NAME, "--target-schema", "mirror",
                             "--tables", 'shop.customers,shop."Order Items"',
                             "--dry-run", "--json").stdout)  # fmt: skip
    assert dry["needs_resync"] is True and dry["dry_run"] is True and dry["done"] == []
    assert dry["changes"] == ['tables: + shop."Order Items"',
                              "target schema: (as on the source) -> mirror"]  # fmt: skip
    assert stored(cli) == before
    target_db.execute("CREATE SCHEMA mirror AUTHORIZATION cdc_writer")
    proc = cli.run("pipeline", "edit", NAME, "--target-schema", "mirror", "--tables",
                   'shop.customers,shop."Order Items"', "--resync", "--json")  # fmt: skip
    done = json.loads(proc.stdout)["done"]
    assert f"dropped publication cdc_tui_{NAME}" in done and f"dropped slot cdc_tui_{NAME}" in done
    wait_status(cli, NAME, lambda d: d["cdc_status"] == "RUNNING", 120, "CDC running again")
    source_db.execute("INSERT INTO shop.\"Order Items\" VALUES (7, 1, 'after the edit')")
    source_db.execute("DELETE FROM shop.customers WHERE id <= 3")
    tables = [("customers", ["id"]), ("Order Items", ["order_id", "line"])]

    def mirrored() -> bool:
        return all(
            table_checksum(source_db, "shop", t, k) == table_checksum(target_db, "mirror", t, k)
            for t, k in tables
        )

    wait_until(mirrored, 60, "the mirror schema to equal the source")
    # The old target table is left as it was at the stop (without row 5000); exactly one slot
    # and one publication exist again.
    assert target_db.scalar("SELECT count(*) FROM shop.customers") == 100
    assert source_objects(source_db, NAME) == (1, 1)
