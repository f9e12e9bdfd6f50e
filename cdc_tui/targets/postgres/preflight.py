"""Target preflight for a PostgreSQL target: can Step 0 create what it must, read only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from cdc_tui.domain.findings import Finding, Severity
from cdc_tui.domain.spec import TableRef
from cdc_tui.pgconn import PgParams, connect
from cdc_tui.pgerrors import (
    catalog_failure_finding,
    connect_failure_finding,
    describe_endpoint,
)
from cdc_tui.sources.postgres.catalog import quote_idents

TARGET_ROLE_QUERY = """
SELECT current_user::text,
       current_database()::text,
       r.rolsuper,
       has_database_privilege(current_database(), 'CREATE'),
       current_setting('server_version')
  FROM pg_catalog.pg_roles AS r
 WHERE r.rolname = current_user
"""

# Per wanted schema: does it exist, and may the current role create in it and use it.
TARGET_SCHEMAS_QUERY = """
SELECT w.schema_name,
       n.oid IS NOT NULL,
       COALESCE(has_schema_privilege(n.oid, 'CREATE'), false),
       COALESCE(has_schema_privilege(n.oid, 'USAGE'), false)
  FROM unnest(%(schemas)s::text[]) AS w(schema_name)
  LEFT JOIN pg_catalog.pg_namespace AS n ON n.nspname = w.schema_name
"""

# Relations already present under the target names (any kind: a view blocks CREATE TABLE too).
TARGET_TABLES_QUERY = """
SELECT n.nspname::text, c.relname::text, c.relkind::text
  FROM unnest(%(schemas)s::text[], %(names)s::text[]) AS w(schema_name, table_name)
  JOIN pg_catalog.pg_namespace AS n ON n.nspname = w.schema_name
  JOIN pg_catalog.pg_class AS c ON c.relnamespace = n.oid AND c.relname = w.table_name
"""


def target_tables(tables: Sequence[TableRef], target_schema: str | None) -> list[TableRef]:
    """The target name of each source table: same name, in `target_schema` or the source's."""
    return [TableRef(target_schema or t.schema, t.name) for t in tables]


def run_target_preflight(
    params: PgParams, *, target_schema: str | None, tables: Sequence[TableRef]
) -> list[Finding]:
    """Check that Step 0 can create the target schema and tables; reads only.

    `tables` are the source tables; their target names follow `target_schema`.
    """
    try:
        conn = connect(params, autocommit=False)
    except psycopg.Error as exc:
        return [connect_failure_finding("target.connect", "target", params, exc)]
    try:
        conn.read_only = True
        return _run_checks(conn, params, target_tables(tables, target_schema))
    except psycopg.Error as exc:
        return [catalog_failure_finding("target.catalog", "target", params, exc)]
    finally:
        conn.close()  # the read-only transaction is discarded with the session


def _run_checks(
    conn: psycopg.Connection[Any], params: PgParams, targets: list[TableRef]
) -> list[Finding]:
    row = conn.execute(TARGET_ROLE_QUERY).fetchone()
    if row is None:
        raise psycopg.ProgrammingError("the current role is missing from pg_roles")
    role, database, superuser, can_create_schema, version = row
    where, _user = describe_endpoint(params)
    schemas = sorted({t.schema for t in targets})
    quoted = quote_idents(conn, [role, database, *schemas])
    findings = [
        Finding(
            "target.connect", Severity.OK, where, f"Connected as {role} to PostgreSQL {version}."
        )
    ]
    rows = conn.execute(TARGET_SCHEMAS_QUERY, {"schemas": schemas}).fetchall()
    for schema, exists, can_create, can_use in rows:
        grant = _missing_grant(
            quoted, role, database, schema, exists=exists,
            allowed=superuser or (can_create and can_use if exists else can_create_schema),
        )  # fmt: skip
        findings.append(_create_finding(role, database, schema, exists, grant))
    findings += _conflicts(conn, targets)
    return findings


def _missing_grant(
    quoted: dict[str, str], role: str, database: str, schema: str, *, exists: bool, allowed: bool
) -> str | None:
    if allowed:
        return None
    if exists:
        return f"GRANT CREATE, USAGE ON SCHEMA {quoted[schema]} TO {quoted[role]};"
    return f"GRANT CREATE ON DATABASE {quoted[database]} TO {quoted[role]};"


def _create_finding(
    role: str, database: str, schema: str, exists: bool, grant: str | None
) -> Finding:
    if exists:
        what = f"create tables in the existing schema {schema}"
    else:
        what = f"create the schema {schema} in database {database}"
    if grant is None:
        return Finding("target.create", Severity.OK, schema, f"Role {role} may {what}.")
    return Finding(
        "target.create",
        Severity.ERROR,
        schema,
        f"Role {role} may not {what}.",
        f"Run {grant} on the target as its owner or a superuser.",
    )


def _conflicts(conn: psycopg.Connection[Any], targets: list[TableRef]) -> list[Finding]:
    params = {"schemas": [t.schema for t in targets], "names": [t.name for t in targets]}
    existing = {
        TableRef(schema, name): kind
        for schema, name, kind in conn.execute(TARGET_TABLES_QUERY, params).fetchall()
    }
    findings: list[Finding] = []
    for ref in targets:
        kind = existing.get(ref)
        if kind is None:
            findings.append(
                Finding("target.table_conflict", Severity.OK, str(ref), "No such table yet.")
            )
        elif kind in ("r", "p"):
            findings.append(
                Finding(
                    "target.table_conflict",
                    Severity.WARNING,
                    str(ref),
                    f"Table {ref} already exists on the target; Step 0 reuses it only if its "
                    "columns are compatible.",
                    "Drop it or choose another --target-schema if it holds unrelated data.",
                )
            )
        else:
            findings.append(
                Finding(
                    "target.table_conflict",
                    Severity.ERROR,
                    str(ref),
                    f"{ref} already exists on the target and is not a table.",
                    "Drop or rename it, or choose another --target-schema.",
                )
            )
    return findings
