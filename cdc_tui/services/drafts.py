"""The headless half of the console's new-pipeline form: connections to pick from, the live
source catalog, the preflight of a pipeline not yet stored, and storing it.

Nothing here stores anything except `save_draft`; `source_catalog` and `check_draft` only read.
A draft that `create_pipeline` would refuse (bad name, unknown connection, no tables, a name
already taken, a kafka_connect draft without a usable Connect URL or with table names Debezium
cannot carry) makes `check_draft` raise the same kind of `UsageError` before connecting; what
the servers (and, for kafka_connect, the Connect worker) say comes back as findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from cdc_tui.config.connections import resolve_connection
from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.domain.findings import Finding, Severity
from cdc_tui.domain.spec import (
    PipelineSpec,
    TableRef,
    quote_ident_display,
    validate_pipeline_name,
)
from cdc_tui.domain.status import Engine
from cdc_tui.engines.embedded.position import POSITION_SCHEMA
from cdc_tui.engines.kafka_connect.naming import check_tables_nameable
from cdc_tui.errors import SourceError, UsageError
from cdc_tui.pgconn import PgParams, connect_bounded
from cdc_tui.pgerrors import conninfo_password, describe_endpoint, short_reason
from cdc_tui.services.connect_preflight import ConnectSubject, run_connect_preflight
from cdc_tui.services.context import AppContext
from cdc_tui.services.pipelines import (
    check_connect_url,
    create_pipeline,
    resolve_source,
    resolve_target,
)
from cdc_tui.services.preflight import has_started, mssql_plan_finding
from cdc_tui.sources.postgres.catalog import PRIMARY_KEY_COLUMNS
from cdc_tui.sources.postgres.preflight import run_source_preflight
from cdc_tui.store.records import PipelineRecord
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.targets.mssql.preflight import run_mssql_preflight
from cdc_tui.targets.mssql.types import NumericPolicy
from cdc_tui.targets.postgres.preflight import run_target_preflight

APPLICATION_NAME = "cdc-tui new pipeline"
MSSQL_DEFAULT_PORT = 1433

# Schemas never offered: the system ones (every pg_* schema is reserved: pg_catalog, pg_toast,
# pg_temp_N...) and the one cdc-tui itself creates.
EXCLUDED_SCHEMAS = ("information_schema", POSITION_SCHEMA)

# Every table the connecting role could copy, in one query. Partitions are left out (a
# partitioned table is listed by its root), so are temporary tables and schemas the role may
# not use. A partitioned root's row estimate is the sum of its leaves' (NULL when none of them
# was ever analyzed); a replica identity index that was dropped leaves PostgreSQL behaving as
# NOTHING, which is what is reported then. Sorted by byte order, like TableRef.
SOURCE_CATALOG_QUERY = sql.SQL("""
SELECT n.nspname::text,
       c.relname::text,
       c.relkind = 'p',
       CASE c.relreplident
            WHEN 'd' THEN 'default'
            WHEN 'f' THEN 'full'
            WHEN 'i' THEN
                 CASE WHEN EXISTS (SELECT 1
                                     FROM pg_catalog.pg_index AS ri
                                    WHERE ri.indrelid = c.oid AND ri.indisreplident)
                      THEN 'index' ELSE 'nothing' END
            ELSE 'nothing'
       END,
       CASE WHEN c.relkind = 'p' THEN
            (SELECT CASE WHEN bool_and(pc.reltuples < 0) THEN NULL
                         ELSE sum(greatest(pc.reltuples, 0))::int8 END
               FROM pg_catalog.pg_partition_tree(c.oid) AS pt
               JOIN pg_catalog.pg_class AS pc ON pc.oid = pt.relid
              WHERE pt.isleaf)
            WHEN c.reltuples < 0 THEN NULL
            ELSE c.reltuples::int8
       END,
       {primary_key}
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND NOT c.relispartition
   AND c.relpersistence <> 't'
   AND left(n.nspname, 3) <> 'pg_'
   AND n.nspname <> ALL (%(excluded)s::text[])
   AND has_schema_privilege(n.oid, 'USAGE')
   AND has_table_privilege(c.oid, 'SELECT')
 ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"
""").format(primary_key=PRIMARY_KEY_COLUMNS)


@dataclass(frozen=True)
class ConnectionChoice:
    """A `[connections.NAME]` entry as the form offers it; `where` never holds a password."""

    name: str
    kind: str
    where: str


@dataclass(frozen=True)
class CatalogTable:
    """A source table the connecting role may SELECT, with what replication needs to know.

    `replica_identity` is "default", "full", "index" or "nothing"; `estimated_rows` is the
    planner's estimate (None when the table was never analyzed); `partitioned` is True for a
    partitioned root, whose partitions are never listed on their own.
    """

    ref: TableRef
    primary_key: tuple[str, ...]
    replica_identity: str
    estimated_rows: int | None
    partitioned: bool

    @property
    def replicable(self) -> bool:
        """True when its updates and deletes can be replicated, as `check` judges it.

        A primary key used as the (default) replica identity, a replica identity index, or
        REPLICA IDENTITY FULL; a key with identity NOTHING is not enough. Full-load-only
        pipelines copy any table, whatever this says.
        """
        if self.replica_identity in ("full", "index"):
            return True
        return self.replica_identity == "default" and bool(self.primary_key)

    @property
    def label(self) -> str:
        """One line for the picker: `shop.customers  key: id  identity: default  ~100 rows`."""
        key = ", ".join(quote_ident_display(c) for c in self.primary_key) or "none"
        if self.estimated_rows is None:
            rows = "rows unknown"
        else:
            rows = f"~{self.estimated_rows:,} row{'' if self.estimated_rows == 1 else 's'}"
        parts = [str(self.ref), f"key: {key}", f"identity: {self.replica_identity}", rows]
        if self.partitioned:
            parts.append("partitioned")
        return "  ".join(parts)


# A draft is what `pipeline create` takes, held by the form until it checks clean and is saved;
# its `connect_url` is the Kafka Connect REST URL, set for the kafka_connect engine only.
Draft = PipelineSpec


def connection_choices(ctx: AppContext) -> list[ConnectionChoice]:
    """Every configured connection, sorted by name; reads no password and connects nowhere."""
    choices = []
    for name in sorted(ctx.settings.connections):
        ref = resolve_connection(name, ctx.settings, role="source")
        choices.append(ConnectionChoice(name, ref.kind, _where(ref)))
    return choices


def source_catalog(ctx: AppContext, source: str, *, timeout_s: float = 5.0) -> list[CatalogTable]:
    """The tables of `source` (a connection name or URL) the form can offer, in one query.

    Raises:
        NotFoundError, UsageError: `source` is not a configured PostgreSQL connection.
        ConfigError: its password cannot be read (variable unset, file unreadable).
        SourceError: the server cannot be reached, refuses the login, or the query fails.
    """
    ref = resolve_source(ctx, source)
    params = ctx.pg_params(ref, application_name=APPLICATION_NAME)
    try:
        with connect_bounded(params, timeout_s) as conn:
            rows = conn.execute(SOURCE_CATALOG_QUERY, {"excluded": list(EXCLUDED_SCHEMAS)})
            return [
                CatalogTable(
                    ref=TableRef(schema, name),
                    primary_key=tuple(key),
                    replica_identity=identity,
                    estimated_rows=estimate,
                    partitioned=partitioned,
                )
                for schema, name, partitioned, identity, estimate, key in rows.fetchall()
            ]
    except psycopg.Error as exc:
        where, user = describe_endpoint(params)
        reason = short_reason(exc, [params.password, conninfo_password(params.url)])
        raise SourceError(
            f"Cannot read the tables of source {source!r} at {where} as {user}: {reason}; "
            "check that the server is running and the role and its password are right."
        ) from exc


def check_draft(ctx: AppContext, draft: Draft, *, editing: bool = False) -> list[Finding]:
    """The findings `cdc-tui check` would report for `draft`, storing and creating nothing.

    `editing`: the draft is an existing pipeline's new settings (its name is taken by itself,
    and once it has started its slot is its own).

    A kafka_connect draft also gets what `check` reports for that engine: Connect and its
    plugins, the password references, and what Step 0 will change on the source.

    Raises (before connecting anywhere) what `create_pipeline` would: UsageError for an invalid
    or taken name, no tables or a table listed twice, an unknown or SQL Server source, a
    kafka_connect draft without a Connect URL, with one that is not http(s) or holds a password,
    or with a table name Debezium cannot carry, and an embedded draft with a Connect URL;
    NotFoundError for an unknown connection; ConfigError when a password cannot be read.
    Unreachable servers, an unreachable Connect worker and missing privileges are findings.
    """
    source, target = _validate(ctx, draft, editing=editing)
    started = editing and has_started(PipelineRepository(ctx.store).get(draft.name))
    source_params = ctx.pg_params(source, application_name=APPLICATION_NAME)
    findings = run_source_preflight(
        source_params, draft.tables, pipeline=draft.name, mode=str(draft.mode),
        owns_slot=started, replaces_publication=started,
    )  # fmt: skip
    schema = draft.target_schema or None
    kafka = draft.engine == Engine.KAFKA_CONNECT
    if target.kind == "mssql":
        mssql_params = ctx.mssql_params(target, application_name=APPLICATION_NAME)
        findings += run_mssql_preflight(mssql_params, target_schema=schema, tables=draft.tables,
                                        identity_insert=kafka)  # fmt: skip
        findings.append(mssql_plan_finding(source_params, draft.name, list(draft.tables), schema,
                                           NumericPolicy.ERROR))  # fmt: skip
    else:
        target_params = ctx.pg_params(target, application_name=APPLICATION_NAME)
        findings += run_target_preflight(target_params, target_schema=schema, tables=draft.tables)
    if kafka:
        subject = ConnectSubject(draft.name, draft.connect_url, source, target, draft.tables,
                                 draft.target_schema or None)  # fmt: skip
        findings += run_connect_preflight(ctx, subject)
    return findings


def blocking(findings: Sequence[Finding]) -> list[Finding]:
    """The findings that must stop a save: the errors, in their order."""
    return [f for f in findings if f.severity == Severity.ERROR]


def save_draft(ctx: AppContext, draft: Draft) -> PipelineRecord:
    """Store the pipeline the draft describes (`create_pipeline`); connects to nothing."""
    return create_pipeline(
        ctx,
        name=draft.name,
        source=draft.source,
        target=draft.target,
        tables=draft.tables,
        mode=draft.mode,
        engine=draft.engine,
        target_schema=draft.target_schema or None,
        connect_url=draft.connect_url or None,
    )


def _where(ref: ConnectionRef) -> str:
    """`host:port/dbname` of a password-free URL."""
    if ref.kind == "postgresql":
        return describe_endpoint(PgParams(ref.url))[0]
    parts = urlsplit(ref.url)
    try:
        port = parts.port or MSSQL_DEFAULT_PORT
    except ValueError:
        port = MSSQL_DEFAULT_PORT
    return f"{parts.hostname or '?'}:{port}/{parts.path.lstrip('/')}"


def _validate(
    ctx: AppContext, draft: Draft, *, editing: bool = False
) -> tuple[ConnectionRef, ConnectionRef]:
    """What `create_pipeline` and the repository check, without storing; the table names are
    checked for Debezium once the list is known to be non-empty and without repeats."""
    validate_pipeline_name(draft.name)
    source = resolve_source(ctx, draft.source)
    target = resolve_target(ctx, draft.target)
    kafka = draft.engine == Engine.KAFKA_CONNECT
    if kafka and not draft.connect_url:
        raise UsageError(
            "The kafka_connect engine needs the Kafka Connect REST URL; fill in the Kafka "
            "Connect REST URL field, for example http://connect.example.com:8083."
        )
    if not kafka and draft.connect_url:
        raise UsageError(
            "A Kafka Connect REST URL only applies to the kafka_connect engine; clear it or "
            "pick that engine."
        )
    if kafka and draft.connect_url:
        check_connect_url(draft.connect_url)
    if not draft.tables:
        raise UsageError(f"Pipeline {draft.name!r} has no tables; pick at least one table.")
    if len(set(draft.tables)) != len(draft.tables):
        raise UsageError("A table is listed twice; list each table once.")
    if kafka:
        check_tables_nameable(draft.name, draft.tables)
    if not editing and PipelineRepository(ctx.store).find(draft.name) is not None:
        raise UsageError(
            f"Pipeline '{draft.name}' already exists; choose another name or drop it first "
            f"with `cdc-tui drop {draft.name}`."
        )
    return source, target
