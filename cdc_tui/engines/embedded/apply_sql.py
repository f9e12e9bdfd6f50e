"""The SQL the applier runs on a PostgreSQL target, composed from identifiers and catalog types.

Every value travels as text (a `text` parameter, or a string inside a JSON batch) and is converted
by an explicit cast to the target column's type *without* its modifier (`format_type(oid, -1)`), so
PostgreSQL parses it with that type's own input function, exactly as `COPY` would. Storing it in
the column then applies the modifier with assignment rules: an over-long `varchar(3)` value fails
instead of being silently truncated the way an explicit `::varchar(3)` cast would.

Batched statements take their rows as one JSON array of arrays of strings (`jsonb` parameter) and
read column n of each row with `->> n`, which yields the string unchanged (NULL for null). The
statement text depends only on the table and the columns set, so psycopg prepares each once; and
Python's C JSON encoder builds the parameter for a fraction of what dumping `text[]` arrays costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.apply_errors import describe_key

# Aliases no replicated column can make ambiguous: every column reference is qualified by them.
_T = sql.Identifier("_cdc_t")
_V = sql.Identifier("_cdc_v")
_ROWS_PARAM = sql.SQL("%b::pg_catalog.jsonb")
_ROW = sql.Identifier("_cdc_r")
# psycopg dumps a Python str in binary format as `text`; the cast after it picks the input function.
_TEXT_PARAM = sql.SQL("%b")

# Types without a btree equality (or whose `=` is not identity): keyless rows match on text form.
_TEXT_MATCH_TYPES = frozenset(
    {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}
)


@dataclass(frozen=True, eq=False)
class TableShape:
    """One target table as the applier writes it: columns in source order and their cast types.

    `cast_types[i]` is `format_type(atttypid, -1)` of column i on the target; `key` holds the
    positions of the primary-key columns (empty: keyless REPLICA IDENTITY FULL table).
    `strict_order` marks a target table with more than its primary key (another unique index, a
    foreign key, a trigger or a rule): its changes then run in exact source order. Rendered
    statements are cached on the shape, which is replaced whenever the table's columns change.
    """

    target: TableRef
    columns: tuple[str, ...]
    cast_types: tuple[str, ...]
    key: tuple[int, ...]
    strict_order: bool = False
    cache: dict[tuple[object, ...], bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.columns) != len(self.cast_types):
            raise ValueError(f"{self.target}: the column and type counts differ")
        if any(not 0 <= i < len(self.columns) for i in self.key):
            raise ValueError(f"{self.target}: key position out of range")

    @property
    def has_key(self) -> bool:
        return bool(self.key)

    def key_text(self, key_values: Sequence[object]) -> str:
        """The key for a message: `id=42` or `(a, b)=(1, x)`; NULL shows as NULL."""
        return describe_key([self.columns[i] for i in self.key], key_values)


def _table(ref: TableRef) -> sql.Identifier:
    return sql.Identifier(ref.schema, ref.name)


def _col(shape: TableShape, i: int) -> sql.Identifier:
    return sql.Identifier(shape.columns[i])


def _qualified(alias: sql.Identifier, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(alias, sql.Identifier(name))


def _cast(expr: sql.Composable, type_sql: str) -> sql.Composed:
    # Types are format_type() output from the target catalog, which quotes any name it needs.
    return sql.SQL("{}::{}").format(expr, sql.SQL(type_sql))


def _v(n: int) -> sql.Composed:
    return _qualified(_V, f"c{n}")


def _rows(width: int) -> sql.Composed:
    """`(SELECT r->>0 AS c0, ... FROM jsonb_array_elements(%b::jsonb) AS r) AS _cdc_v`."""
    columns = sql.SQL(", ").join(
        sql.SQL("{} OPERATOR(pg_catalog.->>) {} AS {}").format(
            _ROW, sql.Literal(n), sql.Identifier(f"c{n}")
        )
        for n in range(width)
    )
    return sql.SQL("(SELECT {} FROM pg_catalog.jsonb_array_elements({}) AS {}) AS {}").format(
        columns, _ROWS_PARAM, _ROW, _V
    )


def _key_join(shape: TableShape) -> sql.Composed:
    """`_cdc_t.k0 = _cdc_v.c0::T AND ...`: the key sits first in every batched key statement."""
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(
            _qualified(_T, shape.columns[i]), _cast(_v(n), shape.cast_types[i])
        )
        for n, i in enumerate(shape.key)
    )


def upsert_sql(shape: TableShape) -> sql.Composed:
    """Insert full rows (a JSON batch of rows); keyed tables update the row already there."""
    statement = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        _table(shape.target),
        sql.SQL(", ").join(_col(shape, i) for i in range(len(shape.columns))),
        sql.SQL(", ").join(_cast(_v(i), t) for i, t in enumerate(shape.cast_types)),
        _rows(len(shape.columns)),
    )
    if not shape.has_key:
        return statement
    non_key = [i for i in range(len(shape.columns)) if i not in shape.key]
    action = (
        sql.SQL("DO UPDATE SET {}").format(
            sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(_col(shape, i), _col(shape, i)) for i in non_key
            )
        )
        if non_key
        else sql.SQL("DO NOTHING")
    )
    return sql.SQL("{} ON CONFLICT ({}) {}").format(
        statement, sql.SQL(", ").join(_col(shape, i) for i in shape.key), action
    )


def delete_sql(shape: TableShape) -> sql.Composed:
    """Delete rows by key (a JSON batch of keys)."""
    return sql.SQL("DELETE FROM {} AS {} USING {} WHERE {}").format(
        _table(shape.target), _T, _rows(len(shape.key)), _key_join(shape)
    )


def patch_sql(shape: TableShape, set_columns: Sequence[int]) -> sql.Composed:
    """Update `set_columns` of rows found by their old key; each row: key columns, then values.

    Setting a key column moves the row (primary-key UPDATE).
    """
    width = len(shape.key)
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(_col(shape, i), _cast(_v(width + n), shape.cast_types[i]))
        for n, i in enumerate(set_columns)
    )
    return sql.SQL("UPDATE {} AS {} SET {} FROM {} WHERE {}").format(
        _table(shape.target),
        _T,
        assignments,
        _rows(width + len(set_columns)),
        _key_join(shape),
    )


Match = tuple[tuple[int, bool], ...]
"""Columns a keyless row is found by: (position, old value is NULL)."""


def _match_condition(shape: TableShape, match: Match) -> sql.Composed:
    parts: list[sql.Composable] = []
    for i, is_null in match:
        column = _col(shape, i)
        if is_null:
            parts.append(sql.SQL("{} IS NULL").format(column))
        elif shape.cast_types[i].removesuffix("[]") in _TEXT_MATCH_TYPES:
            parts.append(sql.SQL("{}::pg_catalog.text = {}").format(column, _TEXT_PARAM))
        else:
            parts.append(sql.SQL("{} = {}").format(column, _cast(_TEXT_PARAM, shape.cast_types[i])))
    return sql.SQL(" AND ").join(parts)


def _one_row(shape: TableShape, match: Match) -> sql.Composed:
    """`ctid = (SELECT ctid ... LIMIT 1)`: change exactly one of several identical keyless rows."""
    return sql.SQL("ctid = (SELECT ctid FROM {} WHERE {} LIMIT 1)").format(
        _table(shape.target), _match_condition(shape, match)
    )


def row_update_sql(shape: TableShape, set_columns: Sequence[int], match: Match) -> sql.Composed:
    """Update one keyless row; parameters: the new values, then the non-NULL old values."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(_col(shape, i), _cast(_TEXT_PARAM, shape.cast_types[i]))
        for i in set_columns
    )
    return sql.SQL("UPDATE {} SET {} WHERE {}").format(
        _table(shape.target), assignments, _one_row(shape, match)
    )


def row_delete_sql(shape: TableShape, match: Match) -> sql.Composed:
    """Delete one keyless row; parameters: the non-NULL old values."""
    return sql.SQL("DELETE FROM {} WHERE {}").format(_table(shape.target), _one_row(shape, match))


def truncate_sql(
    targets: Sequence[TableRef], *, cascade: bool, restart_identity: bool
) -> sql.Composed:
    """`TRUNCATE t1, t2` with the options the source sent."""
    return sql.SQL("TRUNCATE {}{}{}").format(
        sql.SQL(", ").join(_table(t) for t in targets),
        sql.SQL(" RESTART IDENTITY") if restart_identity else sql.SQL(""),
        sql.SQL(" CASCADE") if cascade else sql.SQL(""),
    )


def add_column_sql(target: TableRef, column: str, type_sql: str) -> sql.Composed:
    """`ALTER TABLE ... ADD COLUMN` for a column appended on the source."""
    return sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
        _table(target),
        sql.Identifier(column),
        sql.SQL(type_sql),
    )
