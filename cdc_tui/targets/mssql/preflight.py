"""Target preflight for SQL Server: connection, version, permissions, collation, schema and the
tables already there. Reads only; every rule yields a finding, never an exception."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cdc_tui.domain.findings import Finding, Severity
from cdc_tui.domain.spec import TableRef
from cdc_tui.targets.mssql.connection import MssqlParams, connect
from cdc_tui.targets.mssql.ddl import DEFAULT_SCHEMA, POSITION_SCHEMA
from cdc_tui.targets.mssql.identifiers import quote_ident, quote_qualified
from cdc_tui.targets.mssql.server_errors import DRIVER_ERRORS, describe_mssql_error
from cdc_tui.targets.mssql.types import KEY_COLLATION

# ISJSON, used by the CHECK on json columns, arrived with SQL Server 2016 (major version 13).
MIN_MAJOR_VERSION = 13

SERVER_QUERY = """
SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)),
       CAST(SERVERPROPERTY('Edition') AS nvarchar(128)),
       SUSER_SNAME(),
       USER_NAME(),
       DB_NAME(),
       CAST(DATABASEPROPERTYEX(DB_NAME(), 'Collation') AS nvarchar(128)),
       HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'CREATE TABLE'),
       HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'CREATE SCHEMA')
"""

# Whether the schema exists and what the current user may do in it (NULL when it is missing).
SCHEMA_QUERY = """
SELECT SCHEMA_ID(%s),
       HAS_PERMS_BY_NAME(%s, 'SCHEMA', 'ALTER'),
       HAS_PERMS_BY_NAME(%s, 'SCHEMA', 'SELECT'),
       HAS_PERMS_BY_NAME(%s, 'SCHEMA', 'INSERT'),
       HAS_PERMS_BY_NAME(%s, 'SCHEMA', 'UPDATE'),
       HAS_PERMS_BY_NAME(%s, 'SCHEMA', 'DELETE')
"""

# What already holds a target name: its type (U table, V view, ...) and identity columns.
OBJECT_QUERY = """
SELECT o.type,
       (SELECT COUNT(*) FROM sys.identity_columns AS ic WHERE ic.object_id = o.object_id)
  FROM sys.objects AS o
 WHERE o.object_id = OBJECT_ID(%s)
"""

_SCHEMA_RIGHTS = ("ALTER", "SELECT", "INSERT", "UPDATE", "DELETE")


def run_mssql_preflight(
    params: MssqlParams,
    *,
    target_schema: str | None,
    tables: Sequence[TableRef],
    connector: Callable[[MssqlParams], Any] = connect,
    identity_insert: bool = False,
) -> list[Finding]:
    """Check that Steps 0-2 can run on the SQL Server target; reads only.

    `identity_insert`: the writer can insert into IDENTITY columns (the kafka_connect sink turns
    IDENTITY_INSERT on), so an existing table with one is a warning, not an error.
    """
    where = params.display
    try:
        conn = connector(params)
    except DRIVER_ERRORS as exc:
        reason = describe_mssql_error(exc, params.password)
        return [
            Finding(
                "target.connect", Severity.ERROR, where,
                f"Cannot connect to SQL Server {where}: {reason}.",
                "Check the host, port, database, login and password source (password_env, "
                "password_file or MSSQL_PASSWORD), and that TCP connections are enabled.",
            )
        ]  # fmt: skip
    try:
        schema = target_schema or DEFAULT_SCHEMA
        return _checks(conn.cursor(), where, schema, tables, identity_insert)
    except DRIVER_ERRORS as exc:
        reason = describe_mssql_error(exc, params.password)
        return [
            Finding("target.catalog", Severity.ERROR, where,
                    f"Cannot read the SQL Server catalog of {where}: {reason}.",
                    "Grant the login VIEW DEFINITION on the database, or run check as its owner.")
        ]  # fmt: skip
    finally:
        conn.rollback()
        conn.close()


def _checks(
    cursor: Any, where: str, schema: str, tables: Sequence[TableRef], identity_insert: bool
) -> list[Finding]:
    cursor.execute(SERVER_QUERY)
    version, edition, login, user, database, collation, can_table, can_schema = cursor.fetchone()
    findings = [_version(where, str(version), str(edition), str(login), str(database))]
    findings.append(_collation(str(database), str(collation)))
    for name in dict.fromkeys((schema, POSITION_SCHEMA)):
        findings.append(_schema(cursor, name, str(user), str(database), can_table, can_schema))
    for table in tables:
        findings.append(_existing(cursor, quote_qualified(schema, table.name), identity_insert))
    return findings


def _version(where: str, version: str, edition: str, login: str, database: str) -> Finding:
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
    if major < MIN_MAJOR_VERSION:
        return Finding(
            "target.version", Severity.ERROR, where,
            f"SQL Server {version} is older than 2016 (13.x), which ISJSON needs.",
            "Use SQL Server 2016 or later (or Azure SQL).",
        )  # fmt: skip
    return Finding(
        "target.connect", Severity.OK, where,
        f"Connected as {login} to database {database} on SQL Server {version} ({edition}).",
    )  # fmt: skip


def _collation(database: str, collation: str) -> Finding:
    return Finding(
        "target.collation", Severity.OK, database,
        f"Database collation {collation}: text columns take it, key text columns use "
        f"{KEY_COLLATION} so keys that differ in case or accents stay distinct.",
    )  # fmt: skip


def _schema(
    cursor: Any, schema: str, user: str, database: str, can_table: object, can_schema: object
) -> Finding:
    cursor.execute(SCHEMA_QUERY, (schema,) * 6)
    schema_id, *rights = cursor.fetchone()
    quoted, who = quote_ident(schema, "Schema"), quote_ident(user, "User")
    if schema_id is None:
        if can_schema == 1 and can_table == 1:
            message = f"User {user} may create the schema {schema} in {database}."
            return Finding("target.create", Severity.OK, schema, message)
        return Finding(
            "target.create", Severity.ERROR, schema,
            f"Schema {schema} does not exist and user {user} may not create it and its tables.",
            f"Run CREATE SCHEMA {quoted}; GRANT CREATE TABLE TO {who}; GRANT ALTER, SELECT, "
            f"INSERT, UPDATE, DELETE ON SCHEMA::{quoted} TO {who}; as the database owner.",
        )  # fmt: skip
    missing = [r for r, ok in zip(_SCHEMA_RIGHTS, rights, strict=True) if ok != 1]
    if can_table != 1:
        missing.insert(0, "CREATE TABLE")
    if not missing:
        return Finding("target.create", Severity.OK, schema,
                       f"User {user} may create and write tables in schema {schema}.")  # fmt: skip
    grants = []
    if "CREATE TABLE" in missing:
        grants.append(f"GRANT CREATE TABLE TO {who};")
    on_schema = [r for r in missing if r != "CREATE TABLE"]
    if on_schema:
        grants.append(f"GRANT {', '.join(on_schema)} ON SCHEMA::{quoted} TO {who};")
    return Finding(
        "target.create", Severity.ERROR, schema,
        f"User {user} lacks {', '.join(missing)} for schema {schema}.",
        f"Run {' '.join(grants)} as the database owner.",
    )  # fmt: skip


def _existing(cursor: Any, name: str, identity_insert: bool) -> Finding:
    cursor.execute(OBJECT_QUERY, (name,))
    row = cursor.fetchone()
    if row is None:
        return Finding("target.table_conflict", Severity.OK, name, "No such table yet.")
    kind, identities = str(row[0]).strip(), int(row[1] or 0)
    if kind != "U":
        return Finding(
            "target.table_conflict", Severity.ERROR, name,
            f"{name} already exists on the target and is not a table.",
            "Drop or rename it, or choose another --target-schema.",
        )  # fmt: skip
    if identities and identity_insert:
        return Finding(
            "target.identity", Severity.WARNING, name,
            f"Table {name} already exists with an IDENTITY column: the JDBC sink inserts into "
            "it with IDENTITY_INSERT on, which needs ALTER on the table.",
            "GRANT ALTER on the table to the login, or drop it and let Step 0 create it.",
        )  # fmt: skip
    if identities:
        return Finding(
            "target.identity", Severity.ERROR, name,
            f"Table {name} already exists with an IDENTITY column, so the source's values "
            "cannot be inserted as they are.",
            "Drop it and let Step 0 create it (cdc-tui never creates IDENTITY columns), or "
            "choose another --target-schema.",
        )  # fmt: skip
    return Finding(
        "target.table_conflict", Severity.WARNING, name,
        f"Table {name} already exists on the target; Step 0 reuses it only if it has exactly "
        "the planned columns.",
        "Drop it or choose another --target-schema if it holds unrelated data.",
    )  # fmt: skip
