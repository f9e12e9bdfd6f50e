"""Source preflight (`cdc-tui check`): every prerequisite of a PostgreSQL source, read only.

All checks run in one READ ONLY transaction that is never committed: preflight never creates
or alters anything, it only says what to run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from cdc_tui.domain.findings import Finding, Severity
from cdc_tui.domain.spec import TableRef, publication_name_for, slot_name_for
from cdc_tui.domain.status import Mode
from cdc_tui.errors import UsageError
from cdc_tui.pgconn import PgParams, connect
from cdc_tui.pgerrors import catalog_failure_finding, connect_failure_finding, describe_endpoint
from cdc_tui.sources.postgres.catalog import (
    PublicationDef,
    TableDef,
    quote_idents,
    read_publication,
    read_table_privileges,
    read_tables,
)

SERVER_QUERY = """
SELECT current_user::text,
       current_database()::text,
       current_setting('wal_level'),
       current_setting('max_replication_slots')::int,
       current_setting('max_wal_senders')::int,
       (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int,
       (SELECT count(*) FROM pg_catalog.pg_stat_replication)::int,
       r.rolsuper,
       r.rolreplication,
       has_database_privilege(current_database(), 'CREATE'),
       EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = %(slot)s),
       current_setting('server_version')
  FROM pg_catalog.pg_roles AS r
 WHERE r.rolname = current_user
"""


@dataclass(frozen=True)
class _Server:
    """SERVER_QUERY's row, fields in its column order."""

    role: str
    database: str
    wal_level: str
    max_slots: int
    max_senders: int
    used_slots: int
    used_senders: int
    superuser: bool
    replication: bool
    can_create: bool
    slot_exists: bool
    version: str


@dataclass
class _Ctx:
    conn: psycopg.Connection[Any]
    server: _Server
    mode: Mode
    slot: str
    publication: str
    quoted: dict[str, str]
    privileges: dict[int, tuple[bool, bool]]
    owns_slot: bool = False
    replaces_publication: bool = False

    def q(self, name: str) -> str:
        return self.quoted.get(name, name)

    def qt(self, ref: TableRef) -> str:
        return f"{self.q(ref.schema)}.{self.q(ref.name)}"


def run_source_preflight(
    params: PgParams,
    tables: Sequence[TableRef],
    *,
    pipeline: str,
    mode: str,
    owns_slot: bool = False,
    replaces_publication: bool = False,
) -> list[Finding]:
    """Check every source prerequisite of `pipeline` and return one finding per rule and object.

    `owns_slot` is True once the pipeline has created its slot (it has started before): the
    slot then belongs to it instead of blocking it. `replaces_publication` is True for an edit
    that resyncs: its publication is dropped and made again, so the role must be able to create
    it, whatever it publishes now. Reads only. A connection failure is
    reported as `source.connect` and ends the checks; a query failing afterwards is reported as
    `source.catalog`.
    """
    try:
        run_mode = Mode(mode)
    except ValueError:
        raise UsageError(
            f"Mode {mode!r} is not valid; use one of {', '.join(m.value for m in Mode)}."
        ) from None
    try:
        conn = connect(params, autocommit=False)
    except psycopg.Error as exc:
        return [connect_failure_finding("source.connect", "source", params, exc)]
    try:
        conn.read_only = True
        return _run_checks(conn, params, tables, pipeline, run_mode, owns_slot,
                           replaces_publication)  # fmt: skip
    except psycopg.Error as exc:
        return [catalog_failure_finding("source.catalog", "source", params, exc)]
    finally:
        conn.close()  # the read-only transaction is discarded with the session


def _run_checks(
    conn: psycopg.Connection[Any],
    params: PgParams,
    tables: Sequence[TableRef],
    pipeline: str,
    mode: Mode,
    owns_slot: bool,
    replaces_publication: bool = False,
) -> list[Finding]:
    slot, publication = slot_name_for(pipeline), publication_name_for(pipeline)
    row = conn.execute(SERVER_QUERY, {"slot": slot}).fetchone()
    if row is None:
        raise psycopg.ProgrammingError("the current role is missing from pg_roles")
    server = _Server(*row)
    defs = read_tables(conn, tables)
    names = [server.role, server.database, slot, publication]
    for td in defs.values():
        if td is not None:
            names += [td.owner, *td.unique_not_null_indexes]
    for ref in tables:
        names += [ref.schema, ref.name]
    quoted = quote_idents(conn, names)
    privileges = read_table_privileges(conn, defs)
    ctx = _Ctx(conn, server, mode, slot, publication, quoted, privileges, owns_slot,
               replaces_publication)  # fmt: skip
    where, _user = describe_endpoint(params)
    version = f"Connected as {server.role} to PostgreSQL {server.version}."
    findings = [_ok("source.connect", where, version)]
    findings += _replication_checks(ctx)
    findings += _publication_checks(ctx, tables, defs)
    findings += _table_checks(ctx, tables, defs)
    return findings


def _ok(rule: str, obj: str, message: str) -> Finding:
    return Finding(rule, Severity.OK, obj, message)


def _error(rule: str, obj: str, message: str, fix: str) -> Finding:
    return Finding(rule, Severity.ERROR, obj, message, fix)


def _replication_checks(ctx: _Ctx) -> list[Finding]:
    s = ctx.server
    objects = {
        "source.wal_level": "wal_level",
        "source.replication_role": s.role,
        "source.slots": "max_replication_slots",
        "source.slot_name": ctx.slot,
        "source.wal_senders": "max_wal_senders",
    }
    if ctx.mode == Mode.FULL_LOAD_ONLY:
        return [_ok(r, o, "Not needed in mode full_load_only.") for r, o in objects.items()]
    restart = "(ALTER SYSTEM SET, then restart the server)"
    if ctx.owns_slot and s.slot_exists:
        return [
            _wal_level(ctx),
            _replication_role(ctx),
            _ok("source.slots", "max_replication_slots", "The pipeline uses its existing slot."),
            _ok("source.slot_name", ctx.slot, f"Slot {ctx.slot} belongs to this pipeline."),
            _ok("source.wal_senders", "max_wal_senders", "The pipeline's slot is in place."),
        ]
    return [
        _wal_level(ctx),
        _replication_role(ctx),
        _capacity(
            "source.slots", "max_replication_slots", "replication slot", s.max_slots,
            s.used_slots, "Drop an unused slot with SELECT pg_drop_replication_slot('name'); "
            f"or raise max_replication_slots {restart}.",
        ),
        _slot_name(ctx),
        _capacity(
            "source.wal_senders", "max_wal_senders", "WAL sender", s.max_senders,
            s.used_senders, f"Raise max_wal_senders {restart} or stop an idle replication client.",
        ),
    ]  # fmt: skip


def _wal_level(ctx: _Ctx) -> Finding:
    level = ctx.server.wal_level
    if level == "logical":
        return _ok("source.wal_level", "wal_level", "wal_level is logical.")
    return _error(
        "source.wal_level",
        "wal_level",
        f"The setting wal_level is {level!r} but change data capture needs 'logical'.",
        "Run ALTER SYSTEM SET wal_level = logical; as a superuser, then restart the PostgreSQL "
        "server (a reload is not enough).",
    )


def _replication_role(ctx: _Ctx) -> Finding:
    s = ctx.server
    if s.superuser or s.replication:
        why = "is a superuser" if s.superuser else "has REPLICATION"
        return _ok("source.replication_role", s.role, f"Role {s.role} {why}.")
    return _error(
        "source.replication_role",
        s.role,
        f"Role {s.role} lacks the REPLICATION attribute needed to create and read a slot.",
        f"Run ALTER ROLE {ctx.q(s.role)} REPLICATION; as a superuser.",
    )


def _capacity(rule: str, setting: str, what: str, limit: int, used: int, fix: str) -> Finding:
    numbers = f"{setting} is {limit} and {used} are in use"
    if limit - used >= 1:
        return _ok(rule, setting, f"{numbers}.")
    return _error(rule, setting, f"No {what} is free: {numbers}.", fix)


def _slot_name(ctx: _Ctx) -> Finding:
    if not ctx.server.slot_exists:
        return _ok("source.slot_name", ctx.slot, f"No slot named {ctx.slot} exists yet.")
    return _error(
        "source.slot_name",
        ctx.slot,
        f"Slot {ctx.slot} already exists; cdc-tui never reuses a slot it did not create.",
        f"Drop it (SELECT pg_drop_replication_slot('{ctx.slot}');) if nothing uses it, "
        "or choose another pipeline name.",
    )


def _publication_checks(
    ctx: _Ctx, tables: Sequence[TableRef], defs: dict[TableRef, TableDef | None]
) -> list[Finding]:
    rule, s = "source.publication_privilege", ctx.server
    if ctx.mode == Mode.FULL_LOAD_ONLY:
        return [_ok(rule, ctx.publication, "Not needed in mode full_load_only.")]
    existing = None if ctx.replaces_publication else read_publication(ctx.conn, ctx.publication)
    if existing is not None:
        return [_existing_publication(ctx, tables, existing)]
    if s.superuser or s.can_create:
        msg = f"Role {s.role} may create publication {ctx.publication} in {s.database}."
        findings = [_ok(rule, s.database, msg)]
    else:
        msg = (
            f"Role {s.role} lacks CREATE on database {s.database}, needed to create "
            f"publication {ctx.publication}."
        )
        fix = f"Run GRANT CREATE ON DATABASE {ctx.q(s.database)} TO {ctx.q(s.role)};"
        findings = [_error(rule, s.database, msg, fix)]
    for ref in tables:
        td = defs.get(ref)
        if td is not None and not s.superuser and not ctx.privileges[td.oid][1]:
            findings.append(_not_owner(ctx, td))
    return findings


def _not_owner(ctx: _Ctx, td: TableDef) -> Finding:
    return _error(
        "source.publication_privilege",
        str(td.ref),
        f"Role {ctx.server.role} does not own table {td.ref}, and CREATE PUBLICATION ... "
        "FOR TABLE requires ownership.",
        f"Run GRANT {ctx.q(td.owner)} TO {ctx.q(ctx.server.role)}; or have {td.owner} run "
        f"CREATE PUBLICATION {ctx.q(ctx.publication)} FOR TABLE {ctx.qt(td.ref)}, ...; "
        "listing exactly the pipeline's tables.",
    )


def _existing_publication(ctx: _Ctx, tables: Sequence[TableRef], pub: PublicationDef) -> Finding:
    if pub.exactly(tables):
        msg = f"Publication {ctx.publication} already exists and publishes exactly these tables."
        return _ok("source.publication_privilege", ctx.publication, msg)
    return _error(
        "source.publication_privilege",
        ctx.publication,
        f"Publication {ctx.publication} already exists but does not publish exactly the "
        "pipeline's tables with inserts, updates and deletes.",
        f"Drop it (DROP PUBLICATION {ctx.q(ctx.publication)};) if nothing uses it, or choose "
        "another pipeline name.",
    )


def _table_checks(
    ctx: _Ctx, tables: Sequence[TableRef], defs: dict[TableRef, TableDef | None]
) -> list[Finding]:
    findings: list[Finding] = []
    for ref in tables:
        td = defs.get(ref)
        if td is None:
            msg = f"Table {ref} does not exist on the source (or is not a table)."
            fix = (
                "Check the schema and table name (names are case-sensitive; quote mixed case "
                'as schema."Table") or remove it from --tables.'
            )
            findings.append(_error("source.table_exists", str(ref), msg, fix))
            continue
        findings.append(_ok("source.table_exists", str(ref), "Table exists."))
        findings.append(_select(ctx, td, ctx.privileges[td.oid][0]))
        findings.append(_replica_identity(ctx, td))
    return findings


def _select(ctx: _Ctx, td: TableDef, may_select: bool) -> Finding:
    if may_select:
        return _ok("source.select", str(td.ref), "SELECT is granted.")
    return _error(
        "source.select",
        str(td.ref),
        f"Role {ctx.server.role} has no SELECT on table {td.ref}.",
        f"Run GRANT SELECT ON {ctx.qt(td.ref)} TO {ctx.q(ctx.server.role)};",
    )


def _replica_identity(ctx: _Ctx, td: TableDef) -> Finding:
    rule, obj, ident = "source.replica_identity", str(td.ref), td.replica_identity
    if ctx.mode == Mode.FULL_LOAD_ONLY:
        return _ok(rule, obj, "Not needed in mode full_load_only.")
    if ident == "d" and td.primary_key:
        return _ok(rule, obj, "Replica identity is the primary key.")
    if ident == "i" and td.replica_identity_index_columns:
        cols = ", ".join(td.replica_identity_index_columns)
        return _ok(rule, obj, f"Replica identity is a unique index on ({cols}).")
    if ident == "f" and td.primary_key:
        return _ok(rule, obj, "Replica identity is FULL.")
    if ident == "f":
        return Finding(
            rule,
            Severity.WARNING,
            obj,
            f"Table {td.ref} has no primary key and uses REPLICA IDENTITY FULL: changes are "
            "applied by matching whole rows, which is slower and ambiguous for identical rows.",
            "Add a primary key, or a unique index used with REPLICA IDENTITY USING INDEX.",
        )
    kind = "NOTHING" if ident == "n" else "DEFAULT without a primary key"
    if ident == "i":
        kind = "USING INDEX but the index is gone"
    return _error(
        rule,
        obj,
        f"Table {td.ref} has replica identity {kind}, so its updates and deletes cannot be "
        "replicated (and would fail on the source once published).",
        _identity_options(ctx, td),
    )


def _identity_options(ctx: _Ctx, td: TableDef) -> str:
    """The DBA's options; cdc-tui never alters a source table itself."""
    table = ctx.qt(td.ref)
    index = ctx.q(td.unique_not_null_indexes[0]) if td.unique_not_null_indexes else "an_index"
    hint = "" if td.unique_not_null_indexes else " (a unique index on NOT NULL columns)"
    return (
        f"Choose one: add a primary key (ALTER TABLE {table} ADD PRIMARY KEY (...);), "
        f"ALTER TABLE {table} REPLICA IDENTITY USING INDEX {index};{hint}, "
        f"ALTER TABLE {table} REPLICA IDENTITY FULL; (slower), "
        "or use --mode full_load_only."
    )
