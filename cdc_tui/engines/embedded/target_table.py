"""Which target table each source table feeds, and whether a Relation message still fits it.

A Relation message may add columns at the end (the applier adds them to the target) but any other
difference (a dropped, renamed, reordered or retyped column, another replica identity key) is
schema drift: the pipeline stops at that transaction rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from cdc_tui.domain.spec import TableRef, quote_ident_display
from cdc_tui.engines.embedded.apply_errors import PermanentApplyError, SchemaDriftError
from cdc_tui.engines.embedded.messages import Relation, RelationColumn

TypeNamer = Callable[[int, int], str]
"""Source type oid and modifier → the target column type SQL (Step 0's mapping)."""

SourceTypes = tuple[tuple[int, int], ...]

# format_type(oid, -1) names the type without its modifier: what the applier casts values to.
_TARGET_COLUMNS = """
SELECT a.attname,
       pg_catalog.format_type(a.atttypid, -1),
       pg_catalog.array_position(i.indkey::pg_catalog.int2[], a.attnum)
  FROM pg_catalog.pg_attribute AS a
  JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_index AS i ON i.indrelid = c.oid AND i.indisprimary
 WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

# Anything that could see one row's change from another row or table makes order matter.
_STRICT_ORDER = """
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint AS k
                WHERE (k.conrelid = c.oid OR k.confrelid = c.oid) AND k.contype IN ('f', 'x'))
    OR EXISTS (SELECT 1 FROM pg_catalog.pg_index AS i
                WHERE i.indrelid = c.oid AND i.indisunique AND NOT i.indisprimary)
    OR EXISTS (SELECT 1 FROM pg_catalog.pg_trigger AS g
                WHERE g.tgrelid = c.oid AND NOT g.tgisinternal)
    OR EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite AS r
                WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN')
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND c.relname = %s
"""


@dataclass(frozen=True)
class TargetTable:
    """One replicated table: target column names equal the source's; `key` is the primary key
    (empty for a REPLICA IDENTITY FULL table without one). `column_types` records the target
    types for callers; the applier casts to the types it reads from the target catalog."""

    source: TableRef
    target: TableRef
    columns: tuple[str, ...]
    key: tuple[str, ...]
    column_types: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [k for k in self.key if k not in self.columns]
        if missing:
            raise ValueError(f"{self.target}: key column {missing[0]!r} is not a column")


def _read_columns(
    conn: psycopg.Connection[Any], target: TableRef
) -> list[tuple[str, str, int | None]]:
    rows = conn.execute(_TARGET_COLUMNS, (target.schema, target.name)).fetchall()
    if not rows:
        raise PermanentApplyError(target, None, None, "the target table does not exist")
    return [(str(r[0]), str(r[1]), None if r[2] is None else int(r[2])) for r in rows]


def read_target_table(
    conn: psycopg.Connection[Any], source: TableRef, target: TableRef
) -> TargetTable:
    """The mapping for a target table as it exists now: its columns, primary key and types."""
    rows = _read_columns(conn, target)
    positions = {name: pos for name, _t, pos in rows if pos is not None}
    key = tuple(sorted(positions, key=positions.__getitem__))
    return TargetTable(
        source,
        target,
        tuple(name for name, _t, _p in rows),
        key,
        {name: type_sql for name, type_sql, _p in rows},
    )


def read_cast_types(conn: psycopg.Connection[Any], target: TableRef) -> dict[str, str]:
    """Each target column's type without modifier, as the applier casts values to it."""
    return {name: type_sql for name, type_sql, _p in _read_columns(conn, target)}


def read_strict_order(conn: psycopg.Connection[Any], target: TableRef) -> bool:
    """Whether the target table has more than its primary key: foreign keys (either way),
    another unique index, an exclusion constraint, a trigger or a rule."""
    row = conn.execute(_STRICT_ORDER, (target.schema, target.name)).fetchone()
    if row is None:
        raise PermanentApplyError(target, None, None, "the target table does not exist")
    return bool(row[0])


def check_relation(
    table: TargetTable,
    rel: Relation,
    previous: SourceTypes | None,
    type_namer: TypeNamer | None,
    lsn: int | None = None,
) -> tuple[RelationColumn, ...]:
    """The columns the source appended (to add on the target); raise on any other drift.

    `previous` holds the source types of the last Relation accepted for this table, if any;
    `lsn` (the source transaction's commit LSN) goes into the error.
    """
    names = tuple(c.name for c in rel.columns)
    known = table.columns
    if names[: len(known)] != known:
        raise SchemaDriftError(table.source, _describe_names(known, names), lsn)
    if previous is not None:
        for column, (oid, typmod) in zip(rel.columns, previous, strict=False):
            if (column.type_oid, column.type_modifier) != (oid, typmod):
                raise SchemaDriftError(
                    table.source,
                    f"column {quote_ident_display(column.name)} changed type from "
                    f"{_type_name(type_namer, oid, typmod)} to "
                    f"{_type_name(type_namer, column.type_oid, column.type_modifier)}",
                    lsn,
                )
    _check_key(table, rel, lsn)
    return rel.columns[len(known) :]


def source_types(rel: Relation) -> SourceTypes:
    """The (type oid, modifier) of each column, the baseline the next Relation is compared to."""
    return tuple((c.type_oid, c.type_modifier) for c in rel.columns)


def _type_name(type_namer: TypeNamer | None, oid: int, typmod: int) -> str:
    return type_namer(oid, typmod) if type_namer is not None else f"type oid {oid}"


def _names(columns: tuple[str, ...] | list[str]) -> str:
    return ", ".join(quote_ident_display(c) for c in columns)


def _describe_names(known: tuple[str, ...], names: tuple[str, ...]) -> str:
    missing = [c for c in known if c not in names]
    added = [c for c in names if c not in known]
    if len(missing) == 1 and len(added) == 1 and known.index(missing[0]) == names.index(added[0]):
        return (
            f"column {quote_ident_display(missing[0])} renamed to {quote_ident_display(added[0])}"
        )
    if len(missing) == 1:
        return f"column {quote_ident_display(missing[0])} dropped"
    if missing:
        return f"columns {_names(missing)} dropped"
    return (
        f"columns reordered: the target has ({_names(known)}), the source sends ({_names(names)})"
    )


def _check_key(table: TargetTable, rel: Relation, lsn: int | None) -> None:
    if rel.replica_identity == "f":
        return  # FULL sends whole old rows: the target key (or all columns) finds the row
    flagged = [c.name for c in rel.columns if c.is_key]
    if set(flagged) == set(table.key):
        return
    if not table.key:
        detail = f"the source now identifies rows by ({_names(flagged)}) but the target has no key"
    else:
        source_key = f"({_names(flagged)})" if flagged else "nothing"
        detail = (
            f"the source identifies rows by {source_key}, the target key is ({_names(table.key)})"
        )
    raise SchemaDriftError(table.source, detail, lsn)
