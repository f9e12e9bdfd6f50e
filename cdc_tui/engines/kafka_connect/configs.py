"""The Debezium PostgreSQL source and JDBC sink configurations of a pipeline (pure, no IO).

Choices that matter for correctness, each one a line below:
- the source streams the pipeline's own slot and publication from where Step 1 handed off
  (`snapshot.mode=no_data`, no publication auto-creation), with TRUNCATE and every operation;
- every table topic has one partition, so a TRUNCATE stays ordered with the rows around it;
- the sink upserts and deletes by record key into the tables Step 0 made (quoted names), so
  a replayed change applies twice to the same effect;
- passwords are config provider references, never values.

A SQL Server target (`Endpoint.kind == "mssql"`) gets the sink's SQL Server form: an
mssql-jdbc URL, tables in the schema the SQL Server planner uses (dbo by default), no schema
evolution (Step 0's exact types stay the only DDL) and IDENTITY_INSERT only when asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.kafka_connect.naming import (
    ConnectNames,
    heartbeat_table,
    signal_table,
    table_filter,
)
from cdc_tui.errors import ConfigError, UsageError
from cdc_tui.kafka_stack import JDBC_SINK_CONNECTOR_CLASS, POSTGRES_CONNECTOR_CLASS
from cdc_tui.targets.mssql.connection import MssqlParams

# libpq sslmodes Debezium's source and the PostgreSQL JDBC driver both understand.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
POSTGRESQL = "postgresql"
MSSQL = "mssql"
ENDPOINT_KINDS = (POSTGRESQL, MSSQL)
# mssql-jdbc 10.2+ values of `encrypt`; "strict" is TDS 8 (SQL Server 2022).
MSSQL_ENCRYPT_MODES = ("true", "false", "strict")
# Where the SQL Server planner puts tables when the pipeline names no target schema.
MSSQL_DEFAULT_SCHEMA = "dbo"
# A JDBC URL property value made of these needs no {braces}.
_PLAIN_JDBC_VALUE = re.compile(r"[\w.$#@-]+")


@dataclass(frozen=True)
class Endpoint:
    """Where a connector reaches a database; `password` is a reference or None.

    `kind` is "postgresql" (uses `sslmode`) or "mssql" (uses `encrypt` and
    `trust_server_certificate`, mssql-jdbc's own defaults: encrypted, certificate checked).
    """

    host: str
    port: int
    dbname: str
    user: str | None
    password: str | None
    sslmode: str | None = None
    kind: str = POSTGRESQL
    encrypt: str = "true"
    trust_server_certificate: bool = False


def mssql_endpoint(
    params: MssqlParams,
    password: str | None,
    *,
    encrypt: str = "true",
    trust_server_certificate: bool = False,
) -> Endpoint:
    """The sink's view of a SQL Server target; `password` is a config provider reference."""
    return Endpoint(
        host=params.host,
        port=params.port,
        dbname=params.database,
        user=params.user,
        password=password,
        kind=MSSQL,
        encrypt=encrypt,
        trust_server_certificate=trust_server_certificate,
    )


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
    # SQL Server only: wrap inserts in SET IDENTITY_INSERT, for target tables that already
    # have an IDENTITY column (Step 0 never creates one).
    identity_insert: bool = False


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
    if p.target.kind not in ENDPOINT_KINDS:
        raise ConfigError(
            f"Unknown target kind {p.target.kind!r} for the JDBC sink; use one of "
            f"{', '.join(ENDPOINT_KINDS)}."
        )
    if p.target.kind == MSSQL:
        return _mssql_sink_config(p)
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


def _mssql_sink_config(p: PipelineConnectors) -> dict[str, str]:
    """The sink's SQL Server form: same topics, keys and batching, SQL Server's URL and rules."""
    schema = p.target_schema or MSSQL_DEFAULT_SCHEMA
    check_mssql_sink_names(p.names.pipeline, p.tables, schema)
    if not p.target.user:
        raise ConfigError(
            f"The SQL Server target of pipeline {p.names.pipeline!r} names no user; the JDBC "
            "sink logs in with SQL Server authentication, so put the login in the URL "
            "(mssql://user@host:1433/database)."
        )
    heartbeat = heartbeat_table(p.names.pipeline)
    config = {
        "connector.class": JDBC_SINK_CONNECTOR_CLASS,
        "tasks.max": "1",
        "topics": ",".join(p.names.topic(t) for t in (*p.tables, heartbeat)),
        "connection.url": mssql_jdbc_url(p.target),
        "connection.username": p.target.user,
        "insert.mode": "upsert",
        "primary.key.mode": "record_key",
        "delete.enabled": "true",
        "truncate.enabled": "true",
        # Step 0's exact types, keys and CHECKs stay the only DDL: a change the sink cannot
        # apply fails the task (schema drift) instead of altering the table its own way.
        "schema.evolution": "none",
        # Debezium's name parser reads double quotes; Hibernate's SQL Server dialect then
        # writes every name as [name], so the format never carries brackets itself.
        "collection.name.format": f'"{schema}"."${{source.table}}"',
        "quote.identifiers": "true",
        "dialect.sqlserver.identity.insert": "true" if p.identity_insert else "false",
        "use.time.zone": "UTC",
        "errors.tolerance": "none",
        "consumer.override.auto.offset.reset": "earliest",
        # One sink transaction per poll of up to 4,096 records instead of batches of 500.
        "batch.size": "4096",
        "consumer.override.max.poll.records": "4096",
    }
    if p.target.password:
        config["connection.password"] = p.target.password
    return config


def mssql_jdbc_url(target: Endpoint) -> str:
    """`jdbc:sqlserver://host:port;databaseName=...;encrypt=...;trustServerCertificate=...`.

    An IPv6 host goes in `serverName` (mssql-jdbc misreads `[::1]:1433` after `//`), and a
    value with `;`, `=`, braces or spaces is wrapped in braces with `}` doubled.
    """
    if target.encrypt not in MSSQL_ENCRYPT_MODES:
        raise ConfigError(
            f"Unknown SQL Server encrypt mode {target.encrypt!r}; use one of "
            f"{', '.join(MSSQL_ENCRYPT_MODES)}."
        )
    if ":" in target.host:
        head = f"jdbc:sqlserver://;serverName={_jdbc_value(target.host)};portNumber={target.port}"
    else:
        head = f"jdbc:sqlserver://{target.host}:{target.port}"
    trust = "true" if target.trust_server_certificate else "false"
    return (
        f"{head};databaseName={_jdbc_value(target.dbname)};encrypt={target.encrypt};"
        f"trustServerCertificate={trust}"
    )


def _jdbc_value(value: str) -> str:
    if _PLAIN_JDBC_VALUE.fullmatch(value):
        return value
    return "{" + value.replace("}", "}}") + "}"


def check_mssql_sink_names(
    pipeline: str,
    tables: Iterable[TableRef],
    target_schema: str | None,
    columns: Mapping[TableRef, Sequence[str]] | None = None,
) -> None:
    """Refuse names the JDBC sink cannot write to SQL Server.

    Hibernate brackets names without doubling `]` ([a]b] is broken T-SQL), and the sink's
    table format is parsed with double quotes, so `]` anywhere and `"` in the schema are
    refused; pass `columns` (per table) to check column names too.
    """
    schema = target_schema or MSSQL_DEFAULT_SCHEMA
    if "]" in schema or '"' in schema:
        raise UsageError(
            f"Target schema {schema!r} of pipeline {pipeline!r} has a ']' or '\"', which the "
            "JDBC sink cannot write on SQL Server; choose another target schema or use the "
            "embedded engine."
        )
    for ref in tables:
        if "]" in ref.name:
            raise UsageError(
                f"Table {ref} of pipeline {pipeline!r} has a ']' in its name, which the JDBC "
                "sink cannot write on SQL Server; use the embedded engine for it or rename it."
            )
        bad = [c for c in (columns or {}).get(ref, ()) if "]" in c]
        if bad:
            raise UsageError(
                f"Column {bad[0]!r} of table {ref} (pipeline {pipeline!r}) has a ']' in its "
                "name, which the JDBC sink cannot write on SQL Server; use the embedded engine "
                "for it or rename the column."
            )


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
