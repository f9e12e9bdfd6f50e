"""Step 0 for a PostgreSQL target: the schema and tables to create, and how each type maps.

Plans are built from the source catalog alone and render to SQL text without a connection
(psycopg >= 3.2 quotes identifiers itself when `as_string` gets no context).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from cdc_tui.domain.spec import MAX_IDENTIFIER_BYTES, TableRef
from cdc_tui.errors import UsageError
from cdc_tui.sources.postgres.catalog import ColumnDef, TableDef, TypeKind, is_serial_default
from cdc_tui.targets.keys import target_key

TARGET_KIND = "postgresql"

# Kinds whose source type need not exist on the target, so they travel as their text form.
_TEXT_KINDS = frozenset({TypeKind.ENUM, TypeKind.COMPOSITE, TypeKind.RANGE, TypeKind.MULTIRANGE})
_RANGE_KINDS = frozenset({TypeKind.RANGE, TypeKind.MULTIRANGE})


@dataclass(frozen=True)
class ColumnPlan:
    """One target column: the source's type, the type created, and why they differ if they do."""

    name: str
    source_type: str
    target_type: str
    nullable: bool
    note: str | None = None


@dataclass(frozen=True)
class TablePlan:
    """One source table and the target table Step 0 creates for it.

    `create_schema` must only run when the schema is missing: even with IF NOT EXISTS,
    PostgreSQL checks CREATE on the database first.
    """

    source: TableRef
    target: TableRef
    columns: list[ColumnPlan]
    primary_key: tuple[str, ...]
    create_schema: sql.Composed
    create_table: sql.Composed
    key_note: str | None = None

    @property
    def statements(self) -> list[sql.Composed]:
        """The statements in execution order: schema, then table."""
        return [self.create_schema, self.create_table]


def plan_tables(table_defs: Sequence[TableDef], *, target_schema: str | None) -> list[TablePlan]:
    """Plan the target tables; the target schema defaults to each table's source schema."""
    if target_schema is not None:
        _check_identifier(target_schema, "Target schema")
    return [_plan_table(td, target_schema) for td in table_defs]


def _check_identifier(name: str, what: str) -> None:
    if not name or len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise UsageError(
            f"{what} {name!r} is not a valid PostgreSQL name; use 1 to "
            f"{MAX_IDENTIFIER_BYTES} bytes (PostgreSQL would silently truncate a longer one)."
        )


def _plan_table(td: TableDef, target_schema: str | None) -> TablePlan:
    target = TableRef(target_schema or td.ref.schema, td.ref.name)
    columns = [map_column(c) for c in td.columns]
    key, key_note = target_key(td)
    return TablePlan(
        source=td.ref,
        target=target,
        columns=columns,
        primary_key=key,
        create_schema=sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            sql.Identifier(target.schema)
        ),
        create_table=_create_table(target, columns, key),
        key_note=key_note,
    )


def map_column(col: ColumnDef) -> ColumnPlan:
    """Map one source column to its target column (PostgreSQL to PostgreSQL keeps base types)."""
    target_type, type_note = _target_type(col)
    notes = [n for n in (type_note, _value_note(col)) if n]
    return ColumnPlan(
        name=col.name,
        source_type=col.type_sql,
        target_type=target_type,
        nullable=not col.not_null,
        note="; ".join(notes) or None,
    )


def _target_type(col: ColumnDef) -> tuple[str, str | None]:
    suffix = "[]" if col.type_kind == TypeKind.ARRAY else ""
    kind = col.scalar_kind
    if kind == TypeKind.DOMAIN and col.base_type_sql is not None:
        if col.base_kind in _TEXT_KINDS:
            return (
                "text" + suffix,
                f"domain {col.type_sql} over a {col.base_kind.name.lower()} as text",
            )
        return col.base_type_sql, (
            f"domain {col.type_sql} as its base type {col.base_type_sql}; "
            "its constraints are not copied"
        )
    if kind in _TEXT_KINDS and not (_builtin(col) and kind in _RANGE_KINDS):
        return "text" + suffix, f"{kind.name.lower()} {col.type_sql} as its text form"
    if not _builtin(col):
        return col.type_sql, f"type from schema {col.type_schema}: it must exist on the target"
    return col.type_sql, None


def _builtin(col: ColumnDef) -> bool:
    return col.type_schema == "pg_catalog"


def _value_note(col: ColumnDef) -> str | None:
    """Why a source default or generator is not reproduced: the values come from the source."""
    if col.identity:
        return "identity on the source; a plain column here, values come from the source"
    if is_serial_default(col):
        return "sequence default not copied; values come from the source"
    if col.generated:
        return "generated on the source; a plain column here holding the source's values"
    return None


def _create_table(
    target: TableRef, columns: list[ColumnPlan], key: tuple[str, ...]
) -> sql.Composed:
    # Types are format_type() output from the source catalog, which quotes any name it needs.
    items: list[sql.Composable] = [
        sql.SQL("    {} {}{}").format(
            sql.Identifier(c.name),
            sql.SQL(c.target_type),
            sql.SQL("") if c.nullable else sql.SQL(" NOT NULL"),
        )
        for c in columns
    ]
    if key:
        items.append(
            sql.SQL("    PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, key)))
        )
    return sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} (\n{}\n)").format(
        sql.Identifier(target.schema),
        sql.Identifier(target.name),
        sql.SQL(",\n").join(items),
    )


def render_plan(plans: Sequence[TablePlan], conn: psycopg.Connection[Any] | None = None) -> str:
    """The whole plan as an SQL script; each schema is created once, before its tables."""
    seen: set[str] = set()
    parts: list[str] = []
    for plan in plans:
        for stmt in plan.statements:
            text = stmt.as_string(conn)
            if text not in seen:
                seen.add(text)
                parts.append(text + ";")
    return "\n\n".join(parts) + ("\n" if parts else "")


def plan_to_json(plans: Sequence[TablePlan]) -> dict[str, Any]:
    """The plan in the `cdc-tui plan --json` shape."""
    return {
        "target_kind": TARGET_KIND,
        "tables": [
            {
                "source": str(p.source),
                "target": str(p.target),
                "primary_key": list(p.primary_key),
                "key_note": p.key_note,
                "columns": [
                    {
                        "name": c.name,
                        "source_type": c.source_type,
                        "target_type": c.target_type,
                        "nullable": c.nullable,
                        "note": c.note,
                    }
                    for c in p.columns
                ],
                "ddl": render_plan([p]),
            }
            for p in plans
        ],
    }
