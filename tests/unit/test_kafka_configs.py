"""The kafka_connect engine's pure parts: names, connector configurations, password references."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdc_tui.config.settings import ConnectionSettings, KafkaConnectSettings, Settings
from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.kafka_connect.configs import (
    Endpoint,
    PipelineConnectors,
    configs_differ,
    sink_config,
    source_config,
)
from cdc_tui.engines.kafka_connect.endpoints import (
    endpoint,
    escape_property,
    password_reference,
    remove_secrets,
    secrets_file,
)
from cdc_tui.engines.kafka_connect.naming import (
    ConnectNames,
    check_tables_nameable,
    java_regex_literal,
    table_filter,
)
from cdc_tui.errors import ConfigError, UsageError
from cdc_tui.pgconn import PgParams

CREATED = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
TABLES = (TableRef("shop", "customers"), TableRef("shop", "Order Items"))


def _connectors(target_schema: str | None = None) -> PipelineConnectors:
    return PipelineConnectors(
        names=ConnectNames.of("orders", CREATED, 3),
        slot_name="cdc_tui_orders",
        publication_name="cdc_tui_orders",
        tables=TABLES,
        source=Endpoint("db1", 5433, "shop", "reader", "${env:SRC_PW}", "require"),
        target=Endpoint("::1", 5432, "dwh", "writer", "${file:/s/x.properties:target.password}"),
        target_schema=target_schema,
        heartbeat_ms=10_000,
        heartbeat_query="INSERT ...",
    )


def test_names_carry_the_generation_so_offsets_never_carry_over() -> None:
    first = ConnectNames.of("orders", CREATED, 1)
    again = ConnectNames.of("orders", CREATED, 2)
    recreated = ConnectNames.of("orders", datetime(2026, 12, 7, tzinfo=UTC), 1)
    assert first.source_connector == "cdc-tui.orders.6b14c1a0g1.source"
    assert first.sink_connector.endswith(".sink")
    assert len({first.source_connector, again.source_connector, recreated.source_connector}) == 3
    assert len({first.topic_prefix, again.topic_prefix, recreated.topic_prefix}) == 3


def test_topic_names_replace_what_kafka_refuses_like_debezium_does() -> None:
    names = ConnectNames.of("orders", CREATED, 1)
    assert names.topic(TableRef("shop", "Order Items")) == f"{names.topic_prefix}.shop.Order_Items"
    assert names.topic(TableRef("Shop", "naïve")) == f"{names.topic_prefix}.Shop.na_ve"


def test_tables_that_collide_or_cannot_be_named_are_refused() -> None:
    with pytest.raises(UsageError, match="same Kafka topic"):
        check_tables_nameable("orders", [TableRef("s", "a b"), TableRef("s", "a_b")])
    for bad in ("a,b", "a.b", 'a"b'):
        with pytest.raises(UsageError, match="embedded engine"):
            check_tables_nameable("orders", [TableRef("s", bad)])
    check_tables_nameable("orders", list(TABLES))


def test_table_filter_matches_names_literally() -> None:
    assert java_regex_literal("a.b") == "\\Qa.b\\E"
    assert java_regex_literal("x\\Ey") == "\\Qx\\E\\\\E\\Qy\\E"
    assert table_filter([TableRef("shop", "Order Items")]) == "\\Qshop\\E\\.\\QOrder Items\\E"


def test_source_config_streams_the_pipelines_own_slot_from_the_handoff() -> None:
    config = source_config(_connectors())
    assert config["slot.name"] == config["publication.name"] == "cdc_tui_orders"
    assert config["publication.autocreate.mode"] == "disabled"
    assert config["snapshot.mode"] == "no_data"
    assert config["plugin.name"] == "pgoutput"
    assert config["skipped.operations"] == "none"
    assert config["topic.creation.default.partitions"] == "1"
    assert config["signal.data.collection"] == "cdc_tui.orders_signal"
    assert "cdc_tui\\E\\.\\Qorders_heartbeat" in config["table.include.list"]
    assert config["database.password"] == "${env:SRC_PW}"
    assert config["database.sslmode"] == "require"
    assert config["database.port"] == "5433"


def test_sink_config_upserts_by_key_into_the_step0_tables() -> None:
    names = ConnectNames.of("orders", CREATED, 3)
    config = sink_config(_connectors())
    assert config["topics"].split(",") == [
        f"{names.topic_prefix}.shop.customers",
        f"{names.topic_prefix}.shop.Order_Items",
        f"{names.topic_prefix}.cdc_tui.orders_heartbeat",
    ]
    assert (config["insert.mode"], config["primary.key.mode"]) == ("upsert", "record_key")
    assert config["delete.enabled"] == config["truncate.enabled"] == "true"
    assert config["collection.name.format"] == '"${source.schema}"."${source.table}"'
    assert config["quote.identifiers"] == "true"
    assert config["connection.url"] == "jdbc:postgresql://[::1]:5432/dwh"
    assert (
        sink_config(_connectors("stage"))["collection.name.format"] == '"stage"."${source.table}"'
    )


def test_configs_differ_names_the_changed_keys_only() -> None:
    assert configs_differ({"a": "1", "b": "2"}, {"a": "1", "b": "3", "name": "x"}) == ["b"]
    assert configs_differ({"a": "1"}, {"a": "1", "c": "0"}) == ["c"]


def _settings(tmp_path: Path | None = None, **conn: str) -> Settings:
    kc = (
        KafkaConnectSettings(secrets_dir=tmp_path)
        if tmp_path is not None
        else KafkaConnectSettings()
    )
    return Settings(connections={"src": ConnectionSettings(url="postgresql://r@h/db", **conn)},
                    kafka_connect=kc)  # fmt: skip


def test_password_reference_prefers_the_configured_reference(tmp_path: Path) -> None:
    ref = ConnectionRef(url="postgresql://r@h/db", kind="postgresql", name="src")
    settings = _settings(tmp_path, connect_password="${vault:secret/pg:pw}")
    assert password_reference(ref, "pw", settings, role="source", pipeline="p") == (
        "${vault:secret/pg:pw}"
    )
    assert not secrets_file(tmp_path, "p").exists()


def test_password_reference_writes_a_private_properties_file(tmp_path: Path) -> None:
    ref = ConnectionRef(url="postgresql://r@h/db", kind="postgresql", name="src")
    settings = _settings(tmp_path)
    value = password_reference(ref, "p:w=d#1\\é", settings, role="source", pipeline="p")
    path = secrets_file(tmp_path, "p")
    assert value == f"${{file:{path}:source.password}}"
    assert (path.stat().st_mode & 0o777) == 0o600
    assert path.read_text() == "source.password=p\\:w\\=d\\#1\\\\\\u00e9\n"
    password_reference(ref, "t", settings, role="target", pipeline="p")
    assert "target.password=t" in path.read_text() and "source.password" in path.read_text()
    assert remove_secrets(settings, "p") and not path.exists()


def test_password_reference_falls_back_to_the_environment_then_refuses() -> None:
    env_ref = ConnectionRef(url="postgresql://r@h/db", kind="postgresql", password_env="PG_PW")
    assert password_reference(env_ref, "x", Settings(), role="source", pipeline="p") == (
        "${env:PG_PW}"
    )
    file_ref = ConnectionRef(url="postgresql://r@h/db", kind="postgresql", password_file="/pw")
    with pytest.raises(ConfigError, match="connect_password"):
        password_reference(file_ref, "x", Settings(), role="source", pipeline="p")
    assert password_reference(file_ref, None, Settings(), role="source", pipeline="p") is None


def test_connect_password_must_be_a_reference_not_a_password() -> None:
    with pytest.raises(ValueError, match="config provider reference"):
        ConnectionSettings(url="postgresql://h/db", connect_password="hunter2")


def test_escape_property_keeps_leading_spaces_and_controls() -> None:
    assert escape_property(" a\tb\n") == "\\ a\\tb\\n"
    assert escape_property("😀") == "\\ud83d\\ude00"


def test_endpoint_reads_host_port_database_and_sslmode_from_the_url() -> None:
    ref = ConnectionRef(url="postgresql://r@db1:6543/shop?sslmode=require", kind="postgresql")
    params = PgParams("postgresql://r@db1:6543/shop?sslmode=require", None)
    got = endpoint(ref, params, Settings(), role="source", pipeline="p")
    assert got == Endpoint("db1", 6543, "shop", "r", None, "require")
    sock = PgParams("postgresql://r@%2Ftmp/shop", None)
    with pytest.raises(ConfigError, match="TCP host"):
        endpoint(ref, sock, Settings(), role="source", pipeline="p")
