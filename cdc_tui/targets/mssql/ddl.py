"""Step 0 for a SQL Server target: the T-SQL batches creating schemas, tables and the position.

Plans are built from the source catalog alone and render to text without a connection, so
`cdc-tui plan` can print them. Each batch holds one statement; a script separates them with GO
because CREATE SCHEMA must be alone in its batch. Every batch is safe to run twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdc_tui.domain.spec import TableRef
from cdc_tui.errors import UsageError
from cdc_tui.sources.postgres.catalog import ColumnDef, TableDef, TypeKind
from cdc_tui.targets.keys import target_key
from cdc_tui.targets.mssql.identifiers import (
    check_identifier,
    check_no_placeholder,
    collision_key,
    quote_ident,
    quote_literal,
    quote_qualified,
)
from cdc_tui.targets.mssql.types import KEY_COLLATION, NumericPolicy, map_column_type

TARGET_KIND = "mssql"
DEFAULT_SCHEMA = "dbo"
BATCH_SEPARATOR = "GO"
MAX_COLUMNS = 1024
MAX_CLUSTERED_KEY_BYTES = 900
# Stored key widths; anything else in a key is counted as decimal(38,s), the widest, 17 bytes.
_KEY_BYTES = {"bit": 1, "smallint": 2, "int": 4, "real": 4, "bigint": 8, "float(53)": 8,
              "date": 3, "time(6)": 5, "datetime2(6)": 8, "datetimeoffset(6)": 10,
              "uniqueidentifier": 16}  # fmt: skip
_WIDEST_FIXED_KEY_BYTES = 17
_TEXT_WIDTH = re.compile(r"n(?:var)?char\((\d+)\)")

POSITION_SCHEMA = "cdc_tui"
POSITION_TABLE = "applied_position"
# The PostgreSQL target's columns; an LSN is an unsigned 64-bit number, so decimal(20,0).
CREATE_POSITION_TABLE = """IF OBJECT_ID(N'[cdc_tui].[applied_position]', N'U') IS NULL
CREATE TABLE [cdc_tui].[applied_position] (
    [pipeline] nvarchar(128) NOT NULL PRIMARY KEY,
    [commit_lsn] decimal(20,0) NOT NULL,
    [end_lsn] decimal(20,0) NOT NULL,
    [commit_time] datetimeoffset(6) NULL,
    [applied_at] datetimeoffset(6) NOT NULL DEFAULT SYSUTCDATETIME()
);"""


@dataclass(frozen=True)
class ColumnPlan:
    """One target column: the source's type, the SQL Server type created, and why if they differ."""

    name: str
    source_type: str
    target_type: str
    nullable: bool
    collation: str | None = None
    check: str | None = None
    note: str | None = None

    @property
    def definition(self) -> str:
        """The column's line in CREATE TABLE; NULL is explicit since session settings vary it."""
        parts = [quote_ident(self.name, "Column"), self.target_type]
        if self.collation:
            parts.append(f"COLLATE {self.collation}")
        parts.append("NULL" if self.nullable else "NOT NULL")
        if self.check:
            parts.append(f"CHECK ({self.check})")
        return " ".join(parts)


@dataclass(frozen=True)
class TablePlan:
    """One source table and the SQL Server table Step 0 creates for it.

    `create_schema` is None for dbo, which every database has.
    """

    source: TableRef
    target: TableRef
    columns: list[ColumnPlan]
    primary_key: tuple[str, ...]
    create_schema: str | None
    create_table: str
    key_note: str | None = None

    @property
    def batches(self) -> list[str]:
        """The batches in execution order: schema (when not dbo), then table."""
        return [b for b in (self.create_schema, self.create_table) if b is not None]


def plan_tables(
    table_defs: Sequence[TableDef],
    *,
    target_schema: str | None = None,
    numeric_policy: NumericPolicy = NumericPolicy.ERROR,
    enum_labels: Mapping[str, Sequence[str]] | None = None,
) -> list[TablePlan]:
    """Plan the SQL Server tables, all in `target_schema` (dbo when None).

    `enum_labels` maps an enum type, spelled as the catalog's `type_sql` prints it, to its
    labels in order; an enum missing from it becomes nvarchar(63) without a CHECK.
    """
    schema = target_schema or DEFAULT_SCHEMA
    check_identifier(schema, "Target schema")
    check_no_placeholder(schema, "Target schema")
    plans = [_plan_table(td, schema, numeric_policy, enum_labels or {}) for td in table_defs]
    taken = {
        (collision_key(POSITION_SCHEMA), collision_key(POSITION_TABLE)): "cdc-tui's position table"
    }
    for plan in plans:
        key = (collision_key(plan.target.schema), collision_key(plan.target.name))
        name = quote_qualified(plan.target.schema, plan.target.name)
        if key in taken:
            raise UsageError(
                f"Table {plan.source} and {taken[key]} would both be {name} on SQL Server, "
                "which compares names without case or trailing spaces; replicate them in "
                "separate pipelines with different target schemas."
            )
        taken[key] = f"table {plan.source}"
    return plans


def _plan_table(
    td: TableDef, schema: str, policy: NumericPolicy, labels: Mapping[str, Sequence[str]]
) -> TablePlan:
    target = TableRef(schema, td.ref.name)
    if target.name.startswith("#"):
        raise UsageError(
            f"Table {td.ref} starts with #, which SQL Server reads as a temporary table; rename "
            "it on the source or leave it out of the pipeline."
        )
    if not td.columns or len(td.columns) > MAX_COLUMNS:
        raise UsageError(
            f"Table {td.ref} has {len(td.columns)} columns and a SQL Server table needs 1 to "
            f"{MAX_COLUMNS}; leave it out of the pipeline."
        )
    _check_column_names(td)
    key, key_note = target_key(td)
    columns = [
        _column_plan(td.ref, c, c.name in key, policy, labels.get(_enum_type_sql(c)))
        for c in td.columns
    ]
    return TablePlan(
        source=td.ref,
        target=target,
        columns=columns,
        primary_key=key,
        create_schema=None if schema == DEFAULT_SCHEMA else create_schema_batch(schema),
        create_table=_create_table(target, columns, key),
        key_note="; ".join(n for n in (key_note, *_key_limits(columns, key)) if n) or None,
    )


def _check_column_names(td: TableDef) -> None:
    seen: dict[str, str] = {}
    check_no_placeholder(td.ref.name, "Table")
    for col in td.columns:
        check_identifier(col.name, f"Column of table {td.ref}")
        check_no_placeholder(col.name, f"Column of table {td.ref}")
        other = seen.setdefault(collision_key(col.name), col.name)
        if other != col.name:
            raise UsageError(
                f"Columns {other!r} and {col.name!r} of table {td.ref} would be one column on "
                "SQL Server, which compares names without case or trailing spaces; rename one "
                "on the source or leave the table out of the pipeline."
            )


def _enum_type_sql(col: ColumnDef) -> str:
    """The type whose labels an enum column takes: a domain's base type, else its own."""
    if col.scalar_kind == TypeKind.DOMAIN and col.base_type_sql is not None:
        return col.base_type_sql
    return col.type_sql


def _column_plan(
    table: TableRef,
    col: ColumnDef,
    in_key: bool,
    policy: NumericPolicy,
    labels: Sequence[str] | None,
) -> ColumnPlan:
    mapped = map_column_type(table, col, in_key=in_key, numeric_policy=policy, enum_labels=labels)
    return ColumnPlan(
        name=col.name,
        source_type=col.type_sql,
        target_type=mapped.sql_type,
        nullable=not col.not_null and not in_key,
        collation=mapped.collation,
        check=mapped.check,
        note=mapped.note,
    )


def _key_limits(columns: list[ColumnPlan], key: tuple[str, ...]) -> list[str]:
    """Warnings about keys SQL Server treats differently from PostgreSQL."""
    key_columns = [c for c in columns if c.name in key]
    notes = []
    if any(c.collation == KEY_COLLATION for c in key_columns):
        notes.append(
            "SQL Server ignores trailing spaces when it compares keys, so two source keys that "
            "differ only in trailing spaces stop the pipeline with a duplicate-key error"
        )
    widest = sum(_max_key_bytes(c.target_type) for c in key_columns)
    if widest > MAX_CLUSTERED_KEY_BYTES:
        notes.append(
            f"the key can reach {widest} bytes, over SQL Server's {MAX_CLUSTERED_KEY_BYTES}-byte "
            "limit for a clustered primary key: a row with a longer key stops the pipeline"
        )
    return notes


def _max_key_bytes(target_type: str) -> int:
    match = _TEXT_WIDTH.fullmatch(target_type)
    if match:
        return 2 * int(match[1])
    return _KEY_BYTES.get(target_type, _WIDEST_FIXED_KEY_BYTES)


def create_schema_batch(schema: str) -> str:
    """Create `schema` when missing; EXEC runs CREATE SCHEMA as the only statement of its batch."""
    create = "CREATE SCHEMA " + quote_ident(schema, "Schema")
    return f"IF SCHEMA_ID({quote_literal(schema)}) IS NULL EXEC({quote_literal(create)});"


def _create_table(target: TableRef, columns: list[ColumnPlan], key: tuple[str, ...]) -> str:
    name = quote_qualified(target.schema, target.name)
    items = [f"    {c.definition}" for c in columns]
    if key:
        items.append(f"    PRIMARY KEY ({', '.join(quote_ident(k, 'Column') for k in key)})")
    body = ",\n".join(items)
    return f"IF OBJECT_ID({quote_literal(name)}, N'U') IS NULL\nCREATE TABLE {name} (\n{body}\n);"


def position_table_batches() -> list[str]:
    """The batches creating `cdc_tui.applied_position`, where the applied LSN is recorded."""
    return [create_schema_batch(POSITION_SCHEMA), CREATE_POSITION_TABLE]


def script_batches(plans: Sequence[TablePlan], *, position_table: bool = True) -> list[str]:
    """Every batch of Step 0 in order, each schema created once before its first table."""
    batches = position_table_batches() if position_table else []
    for plan in plans:
        batches.extend(b for b in plan.batches if b not in batches)
    return batches


def render_script(plans: Sequence[TablePlan], *, position_table: bool = True) -> str:
    """Step 0 as a T-SQL script for sqlcmd or SSMS: the batches, each followed by a GO line."""
    batches = script_batches(plans, position_table=position_table)
    return "\n".join(f"{b}\n{BATCH_SEPARATOR}\n" for b in batches)


def plan_to_json(plans: Sequence[TablePlan]) -> dict[str, Any]:
    """The plan in the `cdc-tui plan --json` shape of the PostgreSQL target, plus T-SQL extras."""
    return {
        "target_kind": TARGET_KIND,
        "tables": [
            {
                "source": str(p.source),
                "target": quote_qualified(p.target.schema, p.target.name),
                "primary_key": list(p.primary_key),
                "key_note": p.key_note,
                "columns": [
                    {
                        "name": c.name,
                        "source_type": c.source_type,
                        "target_type": c.target_type,
                        "nullable": c.nullable,
                        "collation": c.collation,
                        "check": c.check,
                        "note": c.note,
                    }
                    for c in p.columns
                ],
                "ddl": render_script([p], position_table=False),
            }
            for p in plans
        ],
    }
