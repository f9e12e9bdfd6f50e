"""`cdc-tui check` for the kafka_connect engine: Connect, its plugins, the password references,
and what Step 0 will change on the source (its helper schema, replica identities).

The rules read only a `ConnectSubject`, so they run the same for a stored pipeline (`check`)
and for the console form's draft of one not stored yet."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import psycopg

from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.domain.findings import Finding, Severity
from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.kafka_connect.configs import check_mssql_sink_names
from cdc_tui.engines.kafka_connect.endpoints import endpoint, password_reference
from cdc_tui.engines.kafka_connect.naming import HELPER_SCHEMA
from cdc_tui.engines.kafka_connect.rest import ConnectClient, ConnectError
from cdc_tui.errors import CdcTuiError
from cdc_tui.kafka_stack import REQUIRED_PLUGINS
from cdc_tui.pgconn import connect
from cdc_tui.pgerrors import short_reason
from cdc_tui.services.context import AppContext
from cdc_tui.sources.postgres.catalog import TypeKind, read_tables
from cdc_tui.sources.postgres.debezium_objects import tables_needing_full_identity
from cdc_tui.store.records import PipelineRecord

CAN_CREATE_SCHEMA = """
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s)
       OR pg_catalog.has_database_privilege(current_database(), 'CREATE')
"""
IS_OWNER = (
    "SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE') "
    "FROM pg_catalog.pg_class AS c WHERE c.oid = %s::regclass"
)


def _ok(rule: str, obj: str, message: str) -> Finding:
    return Finding(rule, Severity.OK, obj, message)


def _error(rule: str, obj: str, message: str, fix: str) -> Finding:
    return Finding(rule, Severity.ERROR, obj, message, fix)


@dataclass(frozen=True)
class ConnectSubject:
    """What the Connect rules read of a pipeline, stored or still a draft."""

    name: str
    connect_url: str | None
    source: ConnectionRef
    target: ConnectionRef
    tables: tuple[TableRef, ...]
    target_schema: str | None = None

    @classmethod
    def of(cls, pipeline: PipelineRecord) -> ConnectSubject:
        return cls(pipeline.name, pipeline.connect_url, pipeline.source, pipeline.target,
                   tuple(t.table for t in pipeline.tables), pipeline.target_schema)  # fmt: skip


# Types whose infinity the sink's SQL Server dialect replaces with the last or first day.
_INFINITE_TYPES = frozenset({"date", "timestamp without time zone", "timestamp with time zone"})


def run_connect_preflight(ctx: AppContext, subject: ConnectSubject) -> list[Finding]:
    found = [*_connect_findings(subject), *_password_findings(ctx, subject),
             *_source_findings(ctx, subject)]  # fmt: skip
    if subject.target.kind == "mssql":
        found += _mssql_sink_findings(ctx, subject)
    return found


def _connect_findings(pipeline: ConnectSubject) -> list[Finding]:
    url = pipeline.connect_url or ""
    try:
        with ConnectClient(url, timeout=httpx.Timeout(10.0, connect=3.0)) as client:
            version = client.version()
            have = {p.class_name for p in client.plugins()}
    except ConnectError as exc:
        return [_error("connect.reachable", url, exc.message,
                       "start the Connect worker or fix the pipeline's --connect-url")]  # fmt: skip
    found = [_ok("connect.reachable", url, f"Kafka Connect {version} answers")]
    for plugin in REQUIRED_PLUGINS:
        if plugin in have:
            found.append(_ok("connect.plugin", plugin, "installed on the worker"))
        else:
            found.append(_error("connect.plugin", plugin, "missing from the worker's plugin.path",
                                "install it (scripts/kafka-stack fetch shows how) and restart "
                                "the worker"))  # fmt: skip
    return found


def _password_findings(ctx: AppContext, pipeline: ConnectSubject) -> list[Finding]:
    found = []
    for role, ref in (("source", pipeline.source), ("target", pipeline.target)):
        try:
            if ref.kind == "mssql":
                mssql = ctx.mssql_params(ref, application_name="cdc-tui check")
                reference = password_reference(ref, mssql.password, ctx.settings, role=role,
                                               pipeline=pipeline.name, write=False)  # fmt: skip
                host, port = mssql.host, mssql.port
            else:
                params = ctx.pg_params(ref, application_name="cdc-tui check")
                ep = endpoint(ref, params, ctx.settings, role=role, pipeline=pipeline.name,
                              write=False)  # fmt: skip
                host, port, reference = ep.host, ep.port, ep.password
        except CdcTuiError as exc:
            found.append(_error("connect.password", role, exc.message,
                                "see docs/kafka-connect.md, Passwords"))  # fmt: skip
            continue
        how = "no password" if reference is None else f"the password as {reference}"
        found.append(_ok("connect.password", role, f"connectors reach {host}:{port} with {how}"))
    return found


def _mssql_sink_findings(ctx: AppContext, pipeline: ConnectSubject) -> list[Finding]:
    """What the JDBC sink's SQL Server dialect cannot write, or writes differently than the
    embedded engine, found in the source catalog."""
    params = ctx.pg_params(pipeline.source, application_name="cdc-tui check")
    try:
        with connect(params) as conn:
            defs = [d for d in read_tables(conn, list(pipeline.tables)).values() if d]
    except psycopg.Error as exc:
        return [_error("source.reachable", "source", short_reason(exc, [params.password]),
                       "fix the source connection")]  # fmt: skip
    found: list[Finding] = []
    try:
        columns = {d.ref: [c.name for c in d.columns] for d in defs}
        check_mssql_sink_names(pipeline.name, pipeline.tables, pipeline.target_schema, columns)
    except CdcTuiError as exc:
        found.append(_error("sink.names", "target", exc.message, "use the embedded engine"))
    for td in defs:
        for col in td.columns:
            where = f"{td.ref}.{col.name}"
            if col.type_kind == TypeKind.ARRAY:
                found.append(_error(
                    "sink.array", where, "is an array, which the JDBC sink binds only for "
                    "PostgreSQL targets", "use the embedded engine for this table",
                ))  # fmt: skip
            elif col.type_sql.split("(")[0] in _INFINITE_TYPES:
                found.append(Finding(
                    "sink.infinity", Severity.WARNING, where,
                    "the JDBC sink writes infinity as 9999-12-31 and -infinity as 0001-01-01 on "
                    "SQL Server, where the embedded engine stops the pipeline",
                    "make sure the column never holds infinity, or use the embedded engine",
                ))  # fmt: skip
    return found


def _identity_finding(table: str, owned: bool) -> Finding:
    rule = "source.replica_identity"
    if owned:
        return Finding(rule, Severity.WARNING, table,
                       "Step 0 sets REPLICA IDENTITY FULL (it has TOAST-able columns): UPDATE "
                       "and DELETE then write the whole old row to WAL")  # fmt: skip
    return _error(rule, table, "has TOAST-able columns and the source role does not own it, "
                  "so cdc-tui cannot set REPLICA IDENTITY FULL",
                  f"ALTER TABLE {table} REPLICA IDENTITY FULL")  # fmt: skip


def _source_findings(ctx: AppContext, pipeline: ConnectSubject) -> list[Finding]:
    params = ctx.pg_params(pipeline.source, application_name="cdc-tui check")
    tables = list(pipeline.tables)
    found = []
    try:
        with connect(params) as conn:
            row = conn.execute(CAN_CREATE_SCHEMA, (HELPER_SCHEMA,)).fetchone()
            if row is not None and row[0]:
                found.append(_ok("source.helper_schema", HELPER_SCHEMA,
                                 "the signal and heartbeat tables can be created"))  # fmt: skip
            else:
                found.append(_error("source.helper_schema", HELPER_SCHEMA,
                                    "the source role cannot create the cdc_tui schema",
                                    "GRANT CREATE ON DATABASE to it, or create the schema "
                                    "owned by it"))  # fmt: skip
            for change in tables_needing_full_identity(conn, tables):
                owner = conn.execute(IS_OWNER, (str(change.table),)).fetchone()
                found.append(_identity_finding(str(change.table), bool(owner and owner[0])))
    except psycopg.Error as exc:
        found.append(_error("source.reachable", "source", short_reason(exc, [params.password]),
                            "fix the source connection"))  # fmt: skip
    return found
