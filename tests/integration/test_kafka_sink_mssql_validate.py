"""The JDBC sink's SQL Server configuration, checked by a real Kafka Connect worker and by
Microsoft's driver from the stack's plugin directory.

This stands in for a live SQL Server, which cannot run on this machine. It proves that the
worker built by our stack has the SQL Server pieces (mssql-jdbc, Hibernate's SQL Server dialect,
Debezium's SQL Server sink dialect), that Connect accepts every key `sink_config` produces for
an `mssql` target with zero errors, and that the driver reads our `connection.url` back as
intended. It does not prove that the sink writes a single row to SQL Server.

Why zero errors is the right expectation: Debezium's JdbcSinkConnector does not override
`Connector.validate`, so Connect checks the keys against the connector's ConfigDef (and its own)
and never opens a database connection; the host in the config does not exist on purpose.
What that check covers, found on this stack: types (a boolean or an int that is not one is an
error) and which keys exist (a key nobody defines is left out of the answer), but not the values
of Debezium's enum keys (`schema.evolution=bogus` passes), nor a missing user, nor whether a
password reference resolves. The exact values are pinned by tests/unit/test_kafka_configs_mssql.py.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cdc_tui import kafka_stack as ks
from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.kafka_connect.configs import (
    Endpoint,
    PipelineConnectors,
    mssql_jdbc_url,
    sink_config,
)
from cdc_tui.engines.kafka_connect.naming import ConnectNames
from tests.integration.kafka_support import connect_call

pytestmark = pytest.mark.integration

PASSWORD_FILE = "cdc-tui-mssql_probe.properties"
# Keys Connect takes by prefix for the sink's consumer, not from any ConfigDef.
CONNECT_PREFIXES = ("consumer.override.",)


def _connectors(stack: ks.Stack, *, identity_insert: bool) -> PipelineConnectors:
    secrets = stack.secrets_dir / PASSWORD_FILE
    secrets.write_text("target.password=not-a-real-password\n")
    target = Endpoint(
        "sql.invalid",
        1433,
        "Sales; DB",
        "loader",
        f"${{file:{secrets}:target.password}}",
        kind="mssql",
        trust_server_certificate=True,
    )
    return PipelineConnectors(
        names=ConnectNames.of("mssql_probe", datetime(2026, 12, 6, tzinfo=UTC), 1),
        slot_name="cdc_tui_mssql_probe",
        publication_name="cdc_tui_mssql_probe",
        tables=(TableRef("shop", "Order Items"), TableRef("Sales Ops", "customers")),
        source=Endpoint("db.invalid", 5432, "shop", "reader", None),
        target=target,
        target_schema="Stage Area",
        heartbeat_ms=10_000,
        heartbeat_query="SELECT 1",
        identity_insert=identity_insert,
    )


def _validate(stack: ks.Stack, config: dict[str, str]) -> dict[str, Any]:
    path = f"/connector-plugins/{ks.JDBC_SINK_CONNECTOR_CLASS}/config/validate"
    result: dict[str, Any] = connect_call(stack.connect_url, "PUT", path, config)
    return result


def test_the_stacks_sink_plugin_carries_the_sql_server_driver_and_dialects(
    kafka_stack: ks.Stack,
) -> None:
    sink_dir = ks.Layout(kafka_stack.home).jdbc_sink_plugin()
    wanted = {
        "mssql-jdbc-": "com/microsoft/sqlserver/jdbc/SQLServerDriver.class",
        "hibernate-core-": "org/hibernate/dialect/SQLServerDialect.class",
        "debezium-connector-jdbc-": (
            "io/debezium/connector/jdbc/dialect/sqlserver/SqlServerDatabaseDialect.class"
        ),
    }
    for prefix, member in wanted.items():
        jars = sorted(sink_dir.glob(f"{prefix}*.jar"))
        assert jars, f"no {prefix}*.jar in {sink_dir}"
        with zipfile.ZipFile(jars[0]) as jar:
            assert member in jar.namelist(), (jars[0].name, member)


@pytest.mark.parametrize("identity_insert", [False, True])
def test_connect_accepts_every_key_of_the_sql_server_sink_config(
    kafka_stack: ks.Stack, identity_insert: bool
) -> None:
    pc = _connectors(kafka_stack, identity_insert=identity_insert)
    config = {"name": pc.names.sink_connector, **sink_config(pc)}
    result = _validate(kafka_stack, config)

    errors = {
        c["value"]["name"]: c["value"]["errors"] for c in result["configs"] if c["value"]["errors"]
    }
    assert result["error_count"] == 0 and errors == {}, errors
    assert result["name"] == ks.JDBC_SINK_CONNECTOR_CLASS
    values = {c["value"]["name"]: c["value"]["value"] for c in result["configs"]}
    # Every key is one Connect or the sink defines, except the consumer overrides Connect
    # passes on by prefix (allowed by the worker's override policy All).
    unknown = sorted(k for k in config if k not in values and not k.startswith(CONNECT_PREFIXES))
    assert unknown == []
    assert values["dialect.sqlserver.identity.insert"] == str(identity_insert).lower()
    assert values["schema.evolution"] == "none"
    assert values["insert.mode"] == "upsert" and values["primary.key.mode"] == "record_key"
    assert values["collection.name.format"] == '"Stage Area"."${source.table}"'
    # Connect masks a PASSWORD-typed value in its answer; what we posted was the reference.
    assert config["connection.password"].startswith("${file:")
    assert values["connection.password"] != "not-a-real-password"


def test_the_validation_above_is_not_vacuous(kafka_stack: ks.Stack) -> None:
    """A key nobody defines is missing from the answer and a non-boolean is an error."""
    pc = _connectors(kafka_stack, identity_insert=False)
    config = {
        "name": pc.names.sink_connector,
        **sink_config(pc),
        "dialect.sqlserver.identity.insert": "maybe",
        "no.such.key": "1",
    }
    result = _validate(kafka_stack, config)
    errors = {
        c["value"]["name"]: c["value"]["errors"] for c in result["configs"] if c["value"]["errors"]
    }
    assert result["error_count"] == 1 and list(errors) == ["dialect.sqlserver.identity.insert"]
    assert "no.such.key" not in {c["value"]["name"] for c in result["configs"]}


PROBE = """
import java.sql.DriverPropertyInfo;
import java.util.Properties;

public class Probe {
    public static void main(String[] args) throws Exception {
        com.microsoft.sqlserver.jdbc.SQLServerDriver driver =
            new com.microsoft.sqlserver.jdbc.SQLServerDriver();
        for (DriverPropertyInfo info : driver.getPropertyInfo(args[0], new Properties())) {
            System.out.println(info.name + "\\t" + info.value);
        }
    }
}
"""


def _driver_reads(stack: ks.Stack, url: str, tmp_path: Path) -> dict[str, str]:
    """The properties mssql-jdbc parses out of `url` (getPropertyInfo connects nowhere)."""
    jar = next(ks.Layout(stack.home).jdbc_sink_plugin().glob("mssql-jdbc-*.jar"))
    source = tmp_path / "Probe.java"
    source.write_text(PROBE)
    proc = subprocess.run(
        [ks.find_java(), "-cp", str(jar), str(source), url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("\t", 1) for line in proc.stdout.splitlines() if "\t" in line)


def test_the_driver_reads_our_connection_url_as_meant(
    kafka_stack: ks.Stack, tmp_path: Path
) -> None:
    if shutil.which("javac") is None:
        pytest.skip("java runs Probe.java from source only with a JDK (javac) installed.")
    target = Endpoint(
        "sql1.example", 14330, "Sales; DB={x}", "loader", None, kind="mssql", encrypt="strict"
    )
    got = _driver_reads(kafka_stack, mssql_jdbc_url(target), tmp_path)
    assert (got["serverName"], got["portNumber"]) == ("sql1.example", "14330")
    assert got["databaseName"] == "Sales; DB={x}"
    assert (got["encrypt"], got["trustServerCertificate"]) == ("strict", "false")

    ipv6 = Endpoint("::1", 1433, "dwh", "loader", None, kind="mssql")
    got = _driver_reads(kafka_stack, mssql_jdbc_url(ipv6), tmp_path)
    assert (got["serverName"], got["portNumber"], got["databaseName"]) == ("::1", "1433", "dwh")
