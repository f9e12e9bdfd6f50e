"""A SQL Server target in this version: the pipeline is created and planned (T-SQL printed
without connecting to any SQL Server), and every verb that would touch the target refuses
in one sentence; drop still works. No SQL Server runs here: nothing connects to one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.cli_env import make_cli_env
from tests.integration.runner_support import Cli
from tests.pg import Database

pytestmark = pytest.mark.integration

NAME = "to_mssql"


def test_plan_only_sql_server_pipeline(
    tmp_path: Path, source_db: Database, target_db: Database
) -> None:
    env = make_cli_env(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", source_db, target_db)
    with env.config.open("a") as fh:
        fh.write('\n[connections.dwh]\nurl = "mssql://loader@sql.invalid:1433/dwh"\n'
                 'password_env = "CDC_TUI_SECRET_DWH"\n')  # fmt: skip
    cli = Cli(env, tmp_path / "home")
    cli.run("pipeline", "create", NAME, "--source", "src", "--target", "dwh",
            "--tables", 'shop.customers,shop."Order Items"')  # fmt: skip

    plan = cli.run("plan", NAME).stdout
    assert "IF OBJECT_ID(N'[dbo].[customers]', N'U') IS NULL" in plan
    assert "[Order Items]" in plan and "\nGO\n" in plan
    assert "nvarchar(max)" in plan and "bigint NOT NULL" in plan

    for verb in ("start", "validate", "resync"):
        refused = cli.run(verb, NAME, check=False)
        assert refused.returncode == 1, (verb, refused.stderr)
        assert "SQL Server target" in refused.stderr and "cdc-tui plan" in refused.stderr
    check = cli.run("check", NAME, check=False)
    assert check.returncode == 1 and "planned in this version" in check.stdout
    assert cli.status(NAME)["status"] == "STOPPED"

    cli.run("drop", NAME)
    assert cli.run("status", NAME, check=False).returncode == 2
