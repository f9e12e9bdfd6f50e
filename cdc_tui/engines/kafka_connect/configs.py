"""The Debezium PostgreSQL source and JDBC sink configurations of a pipeline (pure, no IO).

Choices that matter for correctness, each one a line below:
- the source streams the pipeline's own slot and publication from where Step 1 handed off
  (`snapshot.mode=no_data`, no publication auto-creation), with TRUNCATE and every operation;
- every table topic has one partition, so a TRUNCATE stays ordered with the rows around it;
- the sink upserts and deletes by record key into the tables Step 0 made (quoted names), so
  a replayed change applies twice to the same effect;
- passwords are config provider references, never values.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.kafka_connect.naming import (
    ConnectNames,
    heartbeat_table,
    signal_table,
    table_filter,
)
from cdc_tui.kafka_stack import JDBC_SINK_CONNECTOR_CLASS, POSTGRES_CONNECTOR_CLASS

# libpq sslmodes Debezium's source and the PostgreSQL JDBC driver both understand.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class Endpoint:
    """Where a connector reaches a PostgreSQL database; `password` is a reference or None."""

    host: str
    port: int
    dbname: str
    user: str | None
    password: str | None
    sslmode: str | None = None


@dataclass(frozen=True)
class PipelineConnectors:
    """What both configurations are built from."""

    names: ConnectNames
    slot_name: str
    publication_name: str
    tables: tuple[TableRef, ...]
    source: Endpoint
    target: Endpoint
    target_schema: str | None
    heartbeat_ms: int
    heartbeat_query: str


def source_config(p: PipelineConnectors) -> dict[str, str]:
    """The Debezium PostgreSQL source on the pipeline's slot and publication."""
    signal = signal_table(p.names.pipeline)
    heartbeat = heartbeat_table(p.names.pipeline)
    config = {
        "connector.class": POSTGRES_CONNECTOR_CLASS,
        "tasks.max": "1",
        "database.hostname": p.source.host,
        "database.port": str(p.source.port),
        "database.dbname": p.source.dbname,
        "topic.prefix": p.names.topic_prefix,
        "plugin.name": "pgoutput",
        "slot.name": p.slot_name,
        "publication.name": p.publication_name,
        "publication.autocreate.mode": "disabled",
        "snapshot.mode": "no_data",
        "table.include.list": table_filter([*p.tables, heartbeat]),
        "skipped.operations": "none",
        "tombstones.on.delete": "false",
        "signal.enabled.channels": "source",
        "signal.data.collection": f"{signal.schema}.{signal.name}",
        "heartbeat.interval.ms": str(p.heartbeat_ms),
        "heartbeat.action.query": p.heartbeat_query,
        # ISO-8601 text, which PostgreSQL's interval input reads back exactly.
        "interval.handling.mode": "string",
        "decimal.handling.mode": "precise",
        "topic.creation.default.partitions": "1",
        "topic.creation.default.replication.factor": "-1",
        "slot.drop.on.stop": "false",
        # Bigger batches and a shorter poll than the defaults (2048 / 500 ms): throughput and
        # latency on a busy source, with memory still bounded by the queue.
        "max.batch.size": "8192",
        "max.queue.size": "32768",
        "poll.interval.ms": "100",
    }
    _credentials(config, "database.", p.source)
    if p.source.sslmode:
        config["database.sslmode"] = p.source.sslmode
    return config


def sink_config(p: PipelineConnectors) -> dict[str, str]:
    """The Debezium JDBC sink reading exactly the pipeline's table topics and its heartbeat."""
    heartbeat = heartbeat_table(p.names.pipeline)
    topics = [p.names.topic(t) for t in (*p.tables, heartbeat)]
    schema = "${source.schema}" if p.target_schema is None else p.target_schema
    # Quoted, so Debezium's table-name parser keeps spaces and upper case in names.
    url = f"jdbc:postgresql://{_jdbc_host(p.target.host)}:{p.target.port}/{p.target.dbname}"
    if p.target.sslmode:
        url += f"?sslmode={p.target.sslmode}"
    config = {
        "connector.class": JDBC_SINK_CONNECTOR_CLASS,
        "tasks.max": "1",
        "topics": ",".join(topics),
        "connection.url": url,
        "insert.mode": "upsert",
        "primary.key.mode": "record_key",
        "delete.enabled": "true",
        "truncate.enabled": "true",
        "schema.evolution": "basic",
        "collection.name.format": f'"{schema}"."${{source.table}}"',
        "quote.identifiers": "true",
        "use.time.zone": "UTC",
        "errors.tolerance": "none",
        "consumer.override.auto.offset.reset": "earliest",
        # One sink transaction per poll of up to 4,096 records instead of batches of 500.
        "batch.size": "4096",
        "consumer.override.max.poll.records": "4096",
    }
    if p.target.user:
        config["connection.username"] = p.target.user
    if p.target.password:
        config["connection.password"] = p.target.password
    return config


def _credentials(config: dict[str, str], prefix: str, endpoint: Endpoint) -> None:
    if endpoint.user:
        config[prefix + "user"] = endpoint.user
    if endpoint.password:
        config[prefix + "password"] = endpoint.password


def _jdbc_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def configs_differ(wanted: dict[str, str], have: dict[str, str]) -> list[str]:
    """The keys whose values Connect holds differently from what we would post."""
    ignored = {"name"}
    keys = (set(wanted) | set(have)) - ignored
    return sorted(k for k in keys if wanted.get(k) != have.get(k))
