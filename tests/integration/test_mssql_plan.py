"""A SQL Server target through the real CLI, with no SQL Server reachable (none can run here):
the pipeline is created and planned (T-SQL printed without connecting), `check` reports the
unreachable server as one finding, `start` retries Step 0 without creating anything on the
source, resync fails in one sentence, and drop works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli_env import make_cli_env
from tests.integration.runner_support import Cli, add_source_tables, source_objects, wait_status
from tests.pg import Database

pytestmark = pytest.mark.integration

NAME = "to_mssql"


@pytest.fixture
def cli(tmp_path: Path, source_db: Database, target_db: Database) -> Cli:
    env = make_cli_env(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", source_db, target_db)
    with env.config.open("a") as fh:
        # Port 1 on localhost refuses at once: an unreachable SQL Server without a DNS wait.
        fh.write('\n[connections.dwh]\nurl = "mssql://loader@127.0.0.1:1/dwh"\n'
                 'password_env = "CDC_TUI_SECRET_DWH"\n')  # fmt: skip
    env.env["CDC_TUI_SECRET_DWH"] = "dwh-password-never-shown"
    return Cli(env, tmp_path / "home")


def test_sql_server_pipeline_without_a_server(cli: Cli, source_db: Database) -> None:
    tables = 'shop.customers,shop."Order Items"'
    cli.run("pipeline", "create", NAME, "--source", "src", "--target", "dwh",
            "--tables", tables, "--numeric-policy", "text")  # fmt: skip

    plan = cli.run("plan", NAME).stdout
    assert "IF OBJECT_ID(N'[dbo].[customers]', N'U') IS NULL" in plan
    assert "[Order Items]" in plan and "\nGO\n" in plan
    assert "nvarchar(max)" in plan and "bigint NOT NULL" in plan

    check = cli.run("check", NAME, check=False)
    assert check.returncode == 1
    assert "Cannot connect to SQL Server 127.0.0.1:1/dwh" in check.stdout
    validate = cli.run("validate", NAME, check=False)
    assert validate.returncode == 1 and "SQL Server target" in validate.stderr

    cli.run("start", NAME)
    doc = wait_status(cli, NAME, lambda d: bool(d.get("last_error")), 60, "a retried failure")
    assert "SQL Server target 127.0.0.1:1/dwh is unavailable while Step 0" in doc["last_error"]
    assert doc["full_load_status"] == "NOT_STARTED"
    cli.run("stop", NAME)
    assert cli.status(NAME)["status"] == "STOPPED"
    assert source_objects(source_db, NAME) == (0, 0)  # nothing half-created on the source

    resync = cli.run("resync", NAME, check=False)
    assert resync.returncode == 1
    assert "Cannot empty the SQL Server target tables" in resync.stderr

    for proc in (check, validate, resync):
        assert "dwh-password-never-shown" not in proc.stdout + proc.stderr
    cli.run("drop", NAME)
    assert cli.run("status", NAME, check=False).returncode == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--numeric-policy", "round"], "--numeric-policy 'round' is not one of error"),
        (["--engine", "kafka_connect", "--connect-url", "http://127.0.0.1:1",
          "--target-schema", "a]b"], "which the JDBC sink cannot write on SQL Server"),
    ],
)  # fmt: skip
def test_sql_server_create_refusals(cli: Cli, extra: list[str], message: str) -> None:
    proc = cli.run("pipeline", "create", NAME, "--source", "src", "--target", "dwh",
                   "--tables", "shop.customers", *extra, check=False)  # fmt: skip
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_numeric_policy_is_for_sql_server_only(cli: Cli) -> None:
    proc = cli.run("pipeline", "create", NAME, "--source", "src", "--target", "tgt",
                   "--tables", "shop.customers", "--numeric-policy", "text",
                   check=False)  # fmt: skip
    assert proc.returncode == 2 and "only applies to SQL Server targets" in proc.stderr


def test_check_of_a_kafka_connect_sql_server_pipeline(cli: Cli, source_db: Database) -> None:
    add_source_tables(source_db, "CREATE TABLE shop.events (id int PRIMARY KEY, tags text[], "
                      "at timestamptz)", "shop.events")  # fmt: skip
    kafka = ["--engine", "kafka_connect", "--connect-url", "http://127.0.0.1:1"]
    cli.run("pipeline", "create", NAME, "--source", "src", "--target", "dwh", "--tables",
            "shop.events", *kafka)  # fmt: skip
    proc = cli.run("check", NAME, "--json", check=False)
    assert proc.returncode == 1
    findings = {(f["rule"], f["object"]): f for f in json.loads(proc.stdout)["findings"]}
    assert findings[("sink.array", "shop.events.tags")]["severity"] == "error"
    assert findings[("sink.infinity", "shop.events.at")]["severity"] == "warning"
    password = findings[("connect.password", "target")]
    assert password["severity"] == "ok" and "${env:CDC_TUI_SECRET_DWH}" in password["message"]
    assert findings[("target.connect", "127.0.0.1:1/dwh")]["severity"] == "error"


@pytest.mark.parametrize(
    ("policy", "severity"), [([], "error"), (["--numeric-policy", "text"], "ok")]
)
def test_check_plans_step_0_with_the_pipeline_numeric_policy(
    cli: Cli, source_db: Database, policy: list[str], severity: str
) -> None:
    add_source_tables(source_db, "CREATE TABLE shop.ledger (id int PRIMARY KEY, amount numeric)",
                      "shop.ledger")  # fmt: skip
    cli.run("pipeline", "create", NAME, "--source", "src", "--target", "dwh",
            "--tables", "shop.ledger", *policy)  # fmt: skip
    proc = cli.run("check", NAME, "--json", check=False)
    findings = {f["rule"]: f for f in json.loads(proc.stdout)["findings"]}
    plan = findings["target.plan"]
    assert plan["severity"] == severity
    if severity == "error":
        refusal = "Column amount of table shop.ledger is numeric without a declared precision"
        assert refusal in plan["message"]
