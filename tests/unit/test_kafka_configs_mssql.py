"""The kafka_connect engine's JDBC sink for a SQL Server target: the exact configuration.

Pure: no Connect and no SQL Server. Connect's own validation of this configuration runs in
tests/integration/test_kafka_sink_mssql_validate.py; no test here proves the sink writes rows.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.kafka_connect.configs import (
    Endpoint,
    PipelineConnectors,
    check_mssql_sink_names,
    mssql_endpoint,
    mssql_jdbc_url,
    sink_config,
    source_config,
)
from cdc_tui.engines.kafka_connect.naming import ConnectNames
from cdc_tui.errors import ConfigError, UsageError
from cdc_tui.targets.mssql.connection import parse_mssql_url

CREATED = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
TABLES = (TableRef("shop", "customers"), TableRef("shop", "Order Items"))
PASSWORD = "s3cr3t-Pa55"  # the value the reference stands for; it must never be posted
REFERENCE = "${file:/etc/kafka/cdc-tui-orders.properties:target.password}"
MSSQL = Endpoint("sql1.example", 1433, "dwh", "loader", REFERENCE, kind="mssql")


def _connectors(
    target: Endpoint = MSSQL,
    target_schema: str | None = None,
    identity_insert: bool = False,
    tables: tuple[TableRef, ...] = TABLES,
) -> PipelineConnectors:
    return PipelineConnectors(
        names=ConnectNames.of("orders", CREATED, 3),
        slot_name="cdc_tui_orders",
        publication_name="cdc_tui_orders",
        tables=tables,
        source=Endpoint("db1", 5433, "shop", "reader", "${env:SRC_PW}", "require"),
        target=target,
        target_schema=target_schema,
        heartbeat_ms=10_000,
        heartbeat_query="INSERT ...",
        identity_insert=identity_insert,
    )


def test_sink_config_for_sql_server_is_exactly_this() -> None:
    prefix = ConnectNames.of("orders", CREATED, 3).topic_prefix
    assert sink_config(_connectors()) == {
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "tasks.max": "1",
        "topics": f"{prefix}.shop.customers,{prefix}.shop.Order_Items,"
        f"{prefix}.cdc_tui.orders_heartbeat",
        "connection.url": "jdbc:sqlserver://sql1.example:1433;databaseName=dwh;encrypt=true;"
        "trustServerCertificate=false",
        "connection.username": "loader",
        "connection.password": REFERENCE,
        "insert.mode": "upsert",
        "primary.key.mode": "record_key",
        "delete.enabled": "true",
        "truncate.enabled": "true",
        "schema.evolution": "none",
        "collection.name.format": '"dbo"."${source.table}"',
        "quote.identifiers": "true",
        "dialect.sqlserver.identity.insert": "false",
        "use.time.zone": "UTC",
        "errors.tolerance": "none",
        "consumer.override.auto.offset.reset": "earliest",
        "batch.size": "4096",
        "consumer.override.max.poll.records": "4096",
    }


def test_tables_go_to_the_target_schema_or_dbo_like_the_sql_server_planner() -> None:
    # Not ${source.schema}: the SQL Server planner puts every table in dbo unless told otherwise.
    assert sink_config(_connectors(target_schema="Stage Area"))["collection.name.format"] == (
        '"Stage Area"."${source.table}"'
    )


def test_identity_insert_only_when_the_pipeline_says_the_tables_have_identity() -> None:
    config = sink_config(_connectors(identity_insert=True))
    assert config["dialect.sqlserver.identity.insert"] == "true"
    # The PostgreSQL sink never carries the SQL Server option, whatever the flag says.
    pg = Endpoint("::1", 5432, "dwh", "writer", REFERENCE)
    assert "dialect.sqlserver.identity.insert" not in sink_config(
        _connectors(pg, identity_insert=True)
    )


def test_the_password_is_posted_as_its_reference_only() -> None:
    for config in (sink_config(_connectors()), source_config(_connectors())):
        assert PASSWORD not in json.dumps(config)
    assert sink_config(_connectors())["connection.password"] == REFERENCE
    no_password = sink_config(_connectors(replace(MSSQL, password=None)))
    assert "connection.password" not in no_password


def test_a_sql_server_target_without_a_user_is_refused() -> None:
    with pytest.raises(ConfigError, match="names no user"):
        sink_config(_connectors(replace(MSSQL, user=None)))


def test_jdbc_url_escapes_values_and_puts_ipv6_hosts_in_server_name() -> None:
    odd = replace(MSSQL, dbname="Sales; DB={x}", encrypt="strict", trust_server_certificate=True)
    assert mssql_jdbc_url(odd) == (
        "jdbc:sqlserver://sql1.example:1433;databaseName={Sales; DB={x}}};encrypt=strict;"
        "trustServerCertificate=true"
    )
    assert mssql_jdbc_url(replace(MSSQL, host="::1", port=14333)) == (
        "jdbc:sqlserver://;serverName={::1};portNumber=14333;databaseName=dwh;encrypt=true;"
        "trustServerCertificate=false"
    )
    with pytest.raises(ConfigError, match="encrypt mode"):
        mssql_jdbc_url(replace(MSSQL, encrypt="yes"))


def test_mssql_endpoint_takes_host_port_database_and_user_from_the_target_url() -> None:
    params = parse_mssql_url("mssql://loader@SQL1.example:14330/dwh?tds_version=7.4", PASSWORD)
    got = mssql_endpoint(params, REFERENCE)
    assert got == Endpoint("sql1.example", 14330, "dwh", "loader", REFERENCE, kind="mssql")
    assert PASSWORD not in repr(got)


def test_names_with_a_closing_bracket_are_refused_and_spaces_pass() -> None:
    # Hibernate writes [name] without doubling ']', so [Order]s] would be broken T-SQL.
    with pytest.raises(UsageError, match=r"Order\]s.*has a '\]' in its name"):
        sink_config(_connectors(tables=(TableRef("shop", "Order]s"),)))
    with pytest.raises(UsageError, match="Target schema"):
        sink_config(_connectors(target_schema="st]age"))
    with pytest.raises(UsageError, match="Target schema"):
        sink_config(_connectors(target_schema='st"age'))
    with pytest.raises(UsageError, match="Column 'a]b'"):
        check_mssql_sink_names("orders", TABLES, None, {TABLES[1]: ["id", "a]b"]})
    check_mssql_sink_names("orders", TABLES, "Stage Area", {TABLES[1]: ["id", "Line No"]})
    config = sink_config(_connectors(target_schema="Stage Area"))
    assert config["collection.name.format"].startswith('"Stage Area".')


def test_an_unknown_target_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match="Unknown target kind"):
        sink_config(_connectors(replace(MSSQL, kind="oracle")))
