"""The kafka_connect engine with a SQL Server target, as far as this machine can take it: the
real runner, source, Kafka and Connect with Debezium, and a fake SQL Server (mssql_fake.py)
standing in for a live one at the pymssql level for Steps 0 and 1. The JDBC sink itself points
at a SQL Server port that refuses, so what is proven is everything up to the sink's connection:
the heartbeat table planned on SQL Server, the bulk load, both connectors created with the SQL
Server sink configuration (driver URL, names, no password value, identity insert off), the
source streaming, and drop removing connectors and the target helper. Whether the sink writes
SQL Server rows is for tests/live_mssql."""

from __future__ import annotations

import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdc_tui import kafka_stack as ks
from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import Engine
from cdc_tui.runner.runner import Runner
from cdc_tui.services.context import AppContext, build_context
from cdc_tui.services.control import drop_pipeline_everywhere
from cdc_tui.services.pipelines import create_pipeline
from cdc_tui.store.repositories import PipelineRepository
from tests.integration.cli_env import make_cli_env
from tests.integration.kafka_support import KAFKA_TOML, connect_get, pipeline_connectors
from tests.integration.mssql_fake import FakeSqlServer
from tests.integration.runner_support import wait_until
from tests.pg import Database

pytestmark = pytest.mark.integration

NAME = "kafka_to_mssql"
PASSWORD = "dwh-secret-value"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSqlServer:
    server = FakeSqlServer()
    for where in (
        "cdc_tui.runner.mssql_target.connect",
        "cdc_tui.runner.connect_stream.mssql_connect",
        "cdc_tui.services.mssql_ops.connect",
    ):
        monkeypatch.setattr(where, server.connect)
    return server


@pytest.fixture
def ctx(
    tmp_path: Path, source_db: Database, target_db: Database, kafka_stack: ks.Stack
) -> Iterator[AppContext]:
    env = make_cli_env(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", source_db, target_db)
    with env.config.open("a") as fh:
        fh.write(KAFKA_TOML.format(secrets=kafka_stack.secrets_dir))
        url = "mssql://loader@127.0.0.1:1/dwh?trust_server_certificate=true"
        fh.write(f'\n[connections.dwh]\nurl = "{url}"\npassword_env = "CDC_TUI_SECRET_DWH"\n')
    context = build_context(env.config, environ={**env.env, "CDC_TUI_SECRET_DWH": PASSWORD})
    create_pipeline(context, name=NAME, source="src", target="dwh", engine=Engine.KAFKA_CONNECT,
                    connect_url=kafka_stack.connect_url,
                    tables=[TableRef("shop", "customers")])  # fmt: skip
    yield context
    context.close()


def _config(stack: ks.Stack, connector: str) -> dict[str, str]:
    """The connector's config, asked again while the worker rebalances (it answers 500/409)."""
    found: list[dict[str, str]] = []

    def read() -> bool:
        try:
            found.append(connect_get(stack.connect_url, f"/connectors/{connector}/config"))
        except urllib.error.HTTPError:
            return False
        return True

    wait_until(read, 60, f"the config of {connector}")
    return found[-1]


def _pipeline(ctx: AppContext) -> Any:
    return PipelineRepository(ctx.store).get(NAME)


def test_kafka_connect_into_sql_server_up_to_the_sink(
    ctx: AppContext, fake: FakeSqlServer, kafka_stack: ks.Stack
) -> None:
    runner = Runner(ctx, NAME)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(pipeline_connectors(kafka_stack, NAME)) == 2, 120,
                   "both connectors to be created")  # fmt: skip
        # Steps 0 and 1 on SQL Server: the heartbeat table is created but never copied.
        beat = f"[dbo].[{NAME}_heartbeat]"
        assert beat in fake.tables and fake.rows[beat] == []
        assert len(fake.rows["[dbo].[customers]"]) == 100
        sink_name = next(n for n in pipeline_connectors(kafka_stack, NAME) if "sink" in n)
        config = _config(kafka_stack, sink_name)
        assert config["connection.url"] == (
            "jdbc:sqlserver://127.0.0.1:1;databaseName=dwh;encrypt=true;trustServerCertificate=true"
        )
        reference = config["connection.password"]
        assert reference.startswith("${file:") and reference.endswith(":target.password}")
        secrets = Path(reference.removeprefix("${file:").rsplit(":", 1)[0])
        assert oct(secrets.stat().st_mode & 0o777) == "0o600"
        assert f"target.password={PASSWORD}" in secrets.read_text()
        assert config["dialect.sqlserver.identity.insert"] == "false"
        assert config["collection.name.format"] == '"dbo"."${source.table}"'
        assert PASSWORD not in str(config)

        # The source streams; the sink's task waits in its connection pool for a SQL Server
        # that refuses (Hibernate's c3p0 retries for minutes), so it is not checked here.
        source_name = next(n for n in pipeline_connectors(kafka_stack, NAME) if "source" in n)

        def source_running() -> bool:
            status = connect_get(kafka_stack.connect_url, f"/connectors/{source_name}/status")
            return [t["state"] for t in status["tasks"]] == ["RUNNING"]

        wait_until(source_running, 60, "the source task to run")
        wait_until(lambda: _pipeline(ctx).cdc_status == "RUNNING", 60, "CDC running")
    finally:
        runner.stop_event.set()
        thread.join(120)
        done = drop_pipeline_everywhere(ctx, NAME)  # also when failing: it frees the slot
    assert pipeline_connectors(kafka_stack, NAME) == []
    assert "dropped the target heartbeat table" in done
    assert "DROP TABLE [dbo].[kafka_to_mssql_heartbeat]" in fake.statements()
