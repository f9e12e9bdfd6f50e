"""Steps 0-2 into a live SQL Server through the real `cdc-tui` binary, and the type round trips.

Collected only when CDC_TUI_TEST_MSSQL_URL is set (see conftest.py); the source is the test
harness's real PostgreSQL, the target the live server, and every comparison reads both sides.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.integration.runner_support import (
    Cli,
    add_source_tables,
    kill_runner,
    pipeline_cli,
    wait_status,
    wait_until,
)
from tests.live_mssql.conftest import PASSWORD_ENV, LiveServer
from tests.pg import Database

pytestmark = pytest.mark.integration

KINDS_DDL = """
CREATE TYPE shop.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE shop.kinds (
    id bigint PRIMARY KEY,
    code text,
    small smallint, big bigint, flag boolean,
    price numeric(12,2), ratio double precision, r real,
    born date, seen timestamp, at timestamptz, clock time,
    span interval, uid uuid, blob bytea, doc jsonb, tags text[],
    mood shop.mood, note varchar(20)
);
"""
KINDS_ROWS = """
INSERT INTO shop.kinds VALUES
 (1, 'a', -32768, 9223372036854775807, true, 1234567890.12, 0.1, 1.5,
  '0001-01-01', '9999-12-31 23:59:59.999999', '2024-02-29 12:34:56.123456+05:30', '23:59:59.999999',
  '1 year 2 mons 3 days 04:05:06.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff10',
  '{"k": [1, "é"]}', '{x,"y z",NULL}', 'happy', 'héllo 😀'),
 (2, 'A', 0, 0, false, -0.01, -1e300, -3.25e-10, '2000-01-01', '2000-01-01 00:00:00',
  '1970-01-01 00:00:00+00', '00:00:00', '-1 days +02:00:00', NULL, '\\x', 'null', '{}', 'sad', ''),
 (3, 'a ', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL)
"""
EXPECTED: dict[int, dict[str, Any]] = {
    1: {
        "code": "a", "small": -32768, "big": 9223372036854775807, "flag": True,
        "price": Decimal("1234567890.12"), "ratio": 0.1, "r": 1.5,
        "born": date(1, 1, 1), "seen": datetime(9999, 12, 31, 23, 59, 59, 999999),
        "clock": time(23, 59, 59, 999999), "span": "P1Y2M3DT4H5M6.5S",
        "uid": UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), "blob": b"\x00\xff\x10",
        "mood": "happy", "note": "héllo 😀",
    },
    2: {"code": "A", "small": 0, "flag": False, "price": Decimal("-0.01"), "ratio": -1e300,
        "blob": b"", "mood": "sad", "note": "", "uid": None},
    3: {"code": "a ", "small": None, "born": None, "mood": None},
}  # fmt: skip


@pytest.fixture
def live_cli(
    tmp_path: Path, source_db: Database, target_db: Database, live_mssql: LiveServer
) -> Iterator[tuple[Cli, str]]:
    name = "live_" + secrets.token_hex(3)
    with pipeline_cli(tmp_path, source_db, target_db, name) as cli:
        with cli.env.config.open("a") as fh:
            fh.write(
                f'\n[connections.sqlserver]\nurl = "{live_mssql.url}"\n'
                f'password_env = "{PASSWORD_ENV}"\n'
            )
        add_source_tables(source_db, KINDS_DDL + KINDS_ROWS, "shop.kinds")
        tables = "shop.kinds,shop.customers"
        cli.run("pipeline", "create", name, "--source", "src", "--target", "sqlserver",
                "--tables", tables, "--target-schema", live_mssql.schema)  # fmt: skip
        yield cli, name
        cli.run("drop", name, check=False)


def _as_dicts(server: LiveServer, table: str, columns: list[str]) -> dict[int, dict[str, Any]]:
    rows = server.rows(table, "[id]")
    return {int(r[0]): dict(zip(columns, r, strict=True)) for r in rows}


def _source_count(source: Database, table: str) -> int:
    return int(source.scalar(f"SELECT count(*) FROM shop.{table}"))  # type: ignore[call-overload]


def test_check_passes_against_the_live_server(live_cli: tuple[Cli, str]) -> None:
    cli, name = live_cli
    proc = cli.run("check", name, "--json", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"target.connect"' in proc.stdout


def test_steps_0_to_2_round_trip_every_type(
    live_cli: tuple[Cli, str], source_db: Database, live_mssql: LiveServer
) -> None:
    cli, name = live_cli
    cli.run("start", name)
    wait_status(cli, name, lambda d: d["cdc_status"] == "RUNNING", 180, "CDC running")
    columns = ["id", "code", "small", "big", "flag", "price", "ratio", "r", "born", "seen", "at",
               "clock", "span", "uid", "blob", "doc", "tags", "mood", "note"]  # fmt: skip
    got = _as_dicts(live_mssql, "kinds", columns)
    assert set(got) == {1, 2, 3}
    for key, expected in EXPECTED.items():
        for column, value in expected.items():
            assert got[key][column] == value, (key, column, got[key][column])
    assert got[1]["at"].astimezone(UTC) == datetime(2024, 2, 29, 7, 4, 56, 123456, tzinfo=UTC)
    assert got[1]["tags"] == '["x","y z",null]'
    assert live_mssql.scalar(f"SELECT COUNT(*) FROM [{live_mssql.schema}].[customers]") == 100

    # Step 2: every kind of change, including a key change and a value with trailing spaces.
    source_db.execute("UPDATE shop.kinds SET price = 99.99, note = 'x' WHERE id = 1")
    source_db.execute("UPDATE shop.kinds SET id = 30 WHERE id = 3")
    source_db.execute("DELETE FROM shop.kinds WHERE id = 2")
    source_db.execute(
        "INSERT INTO shop.customers SELECT g, 'n' || g FROM generate_series(101, 600) g"
    )
    source_db.execute("DELETE FROM shop.customers WHERE id <= 50")

    def converged() -> bool:
        ids = {int(r[0]) for r in live_mssql.rows("kinds", "[id]")}
        customers = live_mssql.scalar(f"SELECT COUNT(*) FROM [{live_mssql.schema}].[customers]")
        return ids == {1, 30} and customers == _source_count(source_db, "customers")

    wait_until(converged, 60, "SQL Server to follow the source")
    got = _as_dicts(live_mssql, "kinds", columns)
    assert got[1]["price"] == Decimal("99.99") and got[1]["note"] == "x"
    assert got[30]["code"] == "a "
    position = live_mssql.scalar(
        "SELECT [end_lsn] FROM [cdc_tui].[applied_position] WHERE [pipeline] = %s", (name,)
    )
    assert position is not None and int(position) > 0


def test_a_value_sql_server_cannot_hold_stops_naming_table_key_and_lsn(
    live_cli: tuple[Cli, str], source_db: Database
) -> None:
    cli, name = live_cli
    cli.run("start", name)
    wait_status(cli, name, lambda d: d["cdc_status"] == "RUNNING", 180, "CDC running")
    source_db.execute("INSERT INTO shop.kinds (id, born) VALUES (77, '10000-01-01')")
    doc = wait_status(cli, name, lambda d: d["status"] == "ERROR", 60, "the pipeline to stop")
    error = doc["last_error"]
    assert "shop.kinds (key id=77)" in error and "LSN" in error, error


def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    live_cli: tuple[Cli, str], source_db: Database, live_mssql: LiveServer
) -> None:
    cli, name = live_cli
    cli.run("start", name)
    wait_status(cli, name, lambda d: d["cdc_status"] == "RUNNING", 180, "CDC running")
    for start in range(1000, 6000, 1000):
        source_db.execute(
            "INSERT INTO shop.customers SELECT g, 'k' || g FROM generate_series(%s, %s) g",
            (start, start + 999),
        )
    kill_runner(cli, name)
    source_db.execute("UPDATE shop.customers SET name = name || '!' WHERE id % 7 = 0")
    cli.run("start", name)
    wait_status(cli, name, lambda d: d["cdc_status"] == "RUNNING", 180, "CDC running again")

    def same() -> bool:
        count = live_mssql.scalar(f"SELECT COUNT(*) FROM [{live_mssql.schema}].[customers]")
        return count == _source_count(source_db, "customers")

    wait_until(same, 120, "the target to catch up after the kill")
    target = {int(r[0]): r[1] for r in live_mssql.rows("customers", "[id]")}
    with source_db.admin() as conn:
        source = dict(conn.execute("SELECT id, name FROM shop.customers").fetchall())
    assert target == source
