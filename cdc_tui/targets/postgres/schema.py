"""Step 0 on a PostgreSQL target: create the planned schema and tables, or check existing ones.

Everything happens in one target transaction, so a refusal or a failure leaves nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import psycopg

from cdc_tui.domain.spec import TableRef, quote_ident_display
from cdc_tui.errors import TargetError
from cdc_tui.pgerrors import short_reason
from cdc_tui.targets.postgres.ddl import TablePlan

logger = logging.getLogger(__name__)

SCHEMA_EXISTS_QUERY = """
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %(schema)s)
"""

# Any relation kind: a view or sequence of the planned name blocks the table just as well.
RELATION_QUERY = """
SELECT c.oid::int8, c.relkind::text
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE n.nspname = %(schema)s AND c.relname = %(name)s
"""

TABLE_COLUMNS_QUERY = """
SELECT a.attname::text,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.attnotnull,
       a.atthasdef OR a.attidentity <> '',
       a.attgenerated <> ''
  FROM pg_catalog.pg_attribute AS a
 WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

TABLE_KEY_QUERY = """
SELECT a.attname::text
  FROM pg_catalog.pg_index AS i
 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indrelid = %(oid)s AND i.indisprimary
 ORDER BY k.ord
"""

_RELKIND_NAMES = {
    "v": "a view",
    "m": "a materialized view",
    "S": "a sequence",
    "f": "a foreign table",
    "i": "an index",
    "I": "an index",
    "c": "a composite type",
}

STEP0_PREFIX = "Step 0: "


class SchemaIncompatibleError(TargetError):
    """An existing target table cannot receive the planned columns; nothing was changed."""

    default_title = "Target table not compatible"


@dataclass(frozen=True)
class _TargetColumn:
    name: str
    type_sql: str
    not_null: bool
    has_default: bool
    generated: bool


def apply_step0(
    conn: psycopg.Connection[Any], plans: Sequence[TablePlan], log: Callable[[str], None]
) -> list[str]:
    """Create the planned target schemas and tables, keeping compatible existing tables.

    Runs in one transaction on `conn`; returns one "Step 0: ..." line per action, passed to
    `log` as well once the transaction has committed.

    Raises:
        SchemaIncompatibleError: an existing table lacks a planned column, has another type or
            primary key, or has a NOT NULL column the load cannot fill.
        TargetError: the target refused a statement (permission, lost connection, ...).
    """
    done: list[str] = []
    current: TableRef | None = None
    try:
        with conn.transaction():
            known_schemas: set[str] = set()
            for plan in plans:
                current = plan.target
                done.extend(_apply_plan(conn, plan, known_schemas))
    except psycopg.Error as exc:
        where = f"target table {current}" if current is not None else "the target"
        raise TargetError(
            f"Step 0 failed on {where}: {short_reason(exc, [])}; nothing was created, fix the "
            "cause (often a missing CREATE privilege) and start again."
        ) from exc
    for line in done:
        logger.info("%s", line)
        log(line)
    return done


def _apply_plan(
    conn: psycopg.Connection[Any], plan: TablePlan, known_schemas: set[str]
) -> list[str]:
    lines: list[str] = []
    schema = plan.target.schema
    if schema not in known_schemas:
        row = conn.execute(SCHEMA_EXISTS_QUERY, {"schema": schema}).fetchone()
        # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists.
        if not (row and row[0]):
            conn.execute(plan.create_schema)
            lines.append(f"{STEP0_PREFIX}created schema {quote_ident_display(schema)}")
        known_schemas.add(schema)
    rel = conn.execute(RELATION_QUERY, {"schema": schema, "name": plan.target.name}).fetchone()
    if rel is None:
        conn.execute(plan.create_table)
        key = ", ".join(quote_ident_display(k) for k in plan.primary_key) or "none"
        lines.append(
            f"{STEP0_PREFIX}created table {plan.target} "
            f"({len(plan.columns)} columns, primary key: {key})"
        )
        return lines
    oid, relkind = rel
    if relkind not in ("r", "p"):
        what = _RELKIND_NAMES.get(relkind, "not a table")
        _refuse(plan.target, f"it is {what}")
    extra = _check_compatible(conn, plan, oid)
    suffix = f", {extra} extra column{'s' if extra != 1 else ''} ignored" if extra else ""
    lines.append(f"{STEP0_PREFIX}kept existing table {plan.target}: compatible{suffix}")
    return lines


def _check_compatible(conn: psycopg.Connection[Any], plan: TablePlan, oid: int) -> int:
    """Raise unless the table fits the plan; return how many extra columns it has."""
    rows = conn.execute(TABLE_COLUMNS_QUERY, {"oid": oid}).fetchall()
    existing = {row[0]: _TargetColumn(*row) for row in rows}
    for col in plan.columns:
        found = existing.get(col.name)
        name = quote_ident_display(col.name)
        if found is None:
            _refuse(plan.target, f"column {name} is missing (expected {col.target_type})")
        elif found.type_sql != col.target_type:
            _refuse(plan.target, f"column {name} is {found.type_sql}, expected {col.target_type}")
        elif found.generated:
            _refuse(plan.target, f"column {name} is a generated column and cannot be loaded")
        elif found.not_null and col.nullable:
            _refuse(plan.target, f"column {name} is NOT NULL but the source allows NULL")
    planned = {c.name for c in plan.columns}
    extras = [c for c in existing.values() if c.name not in planned]
    for extra in extras:
        if extra.not_null and not extra.has_default:
            name = quote_ident_display(extra.name)
            _refuse(plan.target, f"extra column {name} is NOT NULL without a default")
    key_rows = conn.execute(TABLE_KEY_QUERY, {"oid": oid}).fetchall()
    key = tuple(row[0] for row in key_rows)
    if key != plan.primary_key:
        expected = _key_text(plan.primary_key)
        _refuse(plan.target, f"primary key is {_key_text(key)}, expected {expected}")
    return len(extras)


def _key_text(key: tuple[str, ...]) -> str:
    if not key:
        return "none"
    return "(" + ", ".join(quote_ident_display(k) for k in key) + ")"


def _refuse(table: TableRef, reason: str) -> NoReturn:
    raise SchemaIncompatibleError(
        f"Target table {table} is not compatible: {reason}; drop or fix the target table, "
        "or choose another --target-schema."
    )
