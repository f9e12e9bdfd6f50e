"""T-SQL the SQL Server applier runs: one statement per change, text built once per table shape.

`TableSql` renders a table's statements; `BoundTable` turns a decoded change into its statement
and parameters. Neither needs a connection.

Parameters are pymssql `%s` placeholders, which pymssql replaces client side with literals
(N'...', bare numbers, 0x...). Each placeholder is cast so SQL Server reads the literal as the
column's type: non-character values to the column's own type (datetimeoffset(6), decimal(p,s),
uniqueidentifier, ...), character and binary values to n/varchar(max) or varbinary(max), because
CAST to a shorter type truncates silently where assigning to the column raises an error.

SQL Server ignores trailing spaces when it compares strings, even under a BIN2 collation, so a
variable-length character key also compares DATALENGTH: 'a' and 'a ' then never match each other,
and a collision fails with a duplicate-key error instead of overwriting another source row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from cdc_tui.domain.spec import TableRef, quote_ident_display
from cdc_tui.engines.embedded.apply_errors import PermanentApplyError, describe_key
from cdc_tui.engines.embedded.messages import UNCHANGED, Delete, Insert, Row, Update, Value
from cdc_tui.targets.mssql.ddl import POSITION_SCHEMA, POSITION_TABLE
from cdc_tui.targets.mssql.errors import UnholdableValueError, ValueRejected
from cdc_tui.targets.mssql.identifiers import check_no_placeholder, quote_ident, quote_qualified

# The target type is pasted into CAST(... AS type): only a type name with optional (n[, s]|max).
_TYPE_NAME = re.compile(
    r"[A-Za-z][A-Za-z0-9_]*(?: ?\( ?(?:\d+|max) ?(?:, ?\d+ ?)?\))?", re.IGNORECASE
)
_CHARACTER = re.compile(r"(n?)(?:var)?char\b|(n?)text\b", re.IGNORECASE)
_FIXED_CHARACTER = re.compile(r"n?char\b", re.IGNORECASE)
_BINARY = re.compile(r"(?:var)?binary\b|image\b", re.IGNORECASE)

POSITION_REF: Final = TableRef(POSITION_SCHEMA, POSITION_TABLE)


@dataclass(frozen=True)
class MssqlColumn:
    """One replicated column: source and target share `name`; `converter` turns the source's
    text into the parameter value (raising ValueRejected for a value SQL Server cannot hold)."""

    name: str
    target_type: str
    converter: Callable[[str], object]
    source_type_oid: int | None = None

    @property
    def is_character(self) -> bool:
        return _CHARACTER.match(self.target_type) is not None

    @property
    def is_padded(self) -> bool:
        """nchar(n)/char(n): SQL Server pads, as PostgreSQL's character(n) compares padded."""
        return _FIXED_CHARACTER.match(self.target_type) is not None

    @property
    def placeholder(self) -> str:
        return "CAST(%s AS " + _cast_type(self.target_type) + ")"


@dataclass(frozen=True)
class MssqlTable:
    """A source table and the SQL Server table it feeds; an empty `key` is a keyless table."""

    source: TableRef
    target: TableRef
    columns: tuple[MssqlColumn, ...]
    key: tuple[str, ...]
    key_positions: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"{self.target}: columns must be non-empty and distinct")
        missing = [k for k in self.key if k not in names]
        if missing:
            raise ValueError(f"{self.target}: key column {missing[0]!r} is not a column")
        for name in (self.target.schema, self.target.name, *names):
            check_no_placeholder(name, f"Name of table {self.target}")
        for column in self.columns:
            _cast_type(column.target_type)
        object.__setattr__(self, "key_positions", tuple(names.index(k) for k in self.key))


def _cast_type(target_type: str) -> str:
    """The type a parameter for a column of `target_type` is cast to (see the module doc)."""
    if not _TYPE_NAME.fullmatch(target_type):
        raise ValueError(f"{target_type!r} is not a SQL Server type name")
    character = _CHARACTER.match(target_type)
    if character:
        return "nvarchar(max)" if character[1] or character[2] else "varchar(max)"
    if _BINARY.match(target_type):
        return "varbinary(max)"
    return target_type


def _and(predicates: list[str]) -> str:
    return " AND ".join(predicates)


class TableSql:
    """The statements for one table, each rendered once per shape and then reused.

    Column arguments are positions in `table.columns`; the parameters a statement takes are
    listed with each method, in placeholder order.
    """

    def __init__(self, table: MssqlTable) -> None:
        self.table = table
        self.name = quote_qualified(table.target.schema, table.target.name)
        self._cols = tuple(quote_ident(c.name, "Column") for c in table.columns)
        self._holders = tuple(c.placeholder for c in table.columns)
        # A key parameter is bound twice when its column also compares DATALENGTH.
        self.key_params = tuple(
            p
            for i, p in enumerate(table.key_positions)
            for _ in range(2 if self._guarded(i) else 1)
        )
        self._cache: dict[tuple[object, ...], str] = {}

    def _guarded(self, key_index: int) -> bool:
        column = self.table.columns[self.table.key_positions[key_index]]
        return column.is_character and not column.is_padded

    def _cached(self, shape: tuple[object, ...], build: Callable[[], str]) -> str:
        text = self._cache.get(shape)
        if text is None:
            text = self._cache[shape] = build()
        return text

    def upsert(self) -> str:
        """MERGE one full row by key. Parameters: every column."""
        return self._cached(("upsert",), self._upsert)

    def insert(self) -> str:
        """Plain INSERT of one full row (keyless tables). Parameters: every column."""
        return self._cached(("insert",), self._insert)

    def update(self, set_columns: tuple[int, ...]) -> str:
        """UPDATE `set_columns` (key columns too when the key changed) of the row at a key.

        Parameters: the set columns, then `key_params` of the old key.
        """
        return self._cached(("update", set_columns), lambda: self._update(set_columns))

    def delete(self) -> str:
        """DELETE the row at a key. Parameters: `key_params`."""
        return self._cached(("delete",), self._delete)

    def row_update(self, set_columns: tuple[int, ...], match_columns: tuple[int, ...]) -> str:
        """UPDATE TOP (1) a keyless row equal to the old values of `match_columns`.

        Parameters: the set columns, then the match columns.
        """
        return self._cached(
            ("row_update", set_columns, match_columns),
            lambda: self._row_update(set_columns, match_columns),
        )

    def row_delete(self, match_columns: tuple[int, ...]) -> str:
        """DELETE TOP (1) a keyless row equal to the old values of `match_columns`."""
        return self._cached(("row_delete", match_columns), lambda: self._row_delete(match_columns))

    def truncate(self) -> str:
        return self._cached(("truncate",), lambda: f"TRUNCATE TABLE {self.name};")

    # -- builders ---------------------------------------------------------------------------
    # The S608 exemptions in this module: every name goes through quote_ident and every value is
    # a placeholder, so no text from the source reaches a statement.

    def _source(self, columns: tuple[int, ...]) -> str:
        """`(VALUES (...)) AS s ([a], [b])`, the one-row source MERGE and row matches read."""
        values = ", ".join(self._holders[i] for i in columns)
        names = ", ".join(self._cols[i] for i in columns)
        return f"(VALUES ({values})) AS s ({names})"

    def _upsert(self) -> str:
        everything = tuple(range(len(self._cols)))
        key = self.table.key_positions
        on = _and([self._key_match(i, f"t.{self._cols[p]}", f"s.{self._cols[p]}")
                   for i, p in enumerate(key)])  # fmt: skip
        names = ", ".join(self._cols)
        from_source = ", ".join(f"s.{c}" for c in self._cols)
        sets = ", ".join(f"{self._cols[i]} = s.{self._cols[i]}" for i in everything if i not in key)
        # A table holding only its key has nothing to update when the row exists.
        matched = f" WHEN MATCHED THEN UPDATE SET {sets}" if sets else ""
        merge = f"MERGE {self.name} WITH (HOLDLOCK) AS t USING {self._source(everything)}"
        insert = f"INSERT ({names}) VALUES ({from_source})"  # noqa: S608
        return f"{merge} ON {on}{matched} WHEN NOT MATCHED THEN {insert};"

    def _insert(self) -> str:
        names = ", ".join(self._cols)
        values = ", ".join(self._holders)
        return f"INSERT INTO {self.name} ({names}) VALUES ({values});"  # noqa: S608

    def _key_where(self) -> str:
        key = self.table.key_positions
        return _and([self._key_match(i, self._cols[p], self._holders[p])
                     for i, p in enumerate(key)])  # fmt: skip

    def _key_match(self, key_index: int, left: str, right: str) -> str:
        equal = f"{left} = {right}"
        if self._guarded(key_index):
            return f"{equal} AND DATALENGTH({left}) = DATALENGTH({right})"
        return equal

    def _update(self, set_columns: tuple[int, ...]) -> str:
        sets = ", ".join(f"{self._cols[i]} = {self._holders[i]}" for i in set_columns)
        return f"UPDATE {self.name} SET {sets} WHERE {self._key_where()};"  # noqa: S608

    def _delete(self) -> str:
        return f"DELETE FROM {self.name} WHERE {self._key_where()};"  # noqa: S608

    def _null_safe(self, i: int) -> str:
        left, right = f"t.{self._cols[i]}", f"s.{self._cols[i]}"
        column = self.table.columns[i]
        equal = f"{left} = {right}"
        if column.is_character and not column.is_padded:
            equal = f"({equal} AND DATALENGTH({left}) = DATALENGTH({right}))"
        return f"({equal} OR ({left} IS NULL AND {right} IS NULL))"

    def _row_match(self, match_columns: tuple[int, ...]) -> str:
        on = _and([self._null_safe(i) for i in match_columns])
        return f"FROM {self.name} AS t JOIN {self._source(match_columns)} ON {on}"

    def _row_update(self, set_columns: tuple[int, ...], match_columns: tuple[int, ...]) -> str:
        sets = ", ".join(f"{self._cols[i]} = {self._holders[i]}" for i in set_columns)
        return f"UPDATE TOP (1) t SET {sets} {self._row_match(match_columns)};"  # noqa: S608

    def _row_delete(self, match_columns: tuple[int, ...]) -> str:
        return f"DELETE TOP (1) t {self._row_match(match_columns)};"


_POSITION = quote_qualified(POSITION_SCHEMA, POSITION_TABLE)
# Parameters: pipeline, commit LSN, end LSN (ints), commit time (ISO text or None).
POSITION_UPSERT: Final = (
    f"MERGE {_POSITION} WITH (HOLDLOCK) AS t USING (VALUES (CAST(%s AS nvarchar(max)), "  # noqa: S608
    "CAST(%s AS decimal(20,0)), CAST(%s AS decimal(20,0)), CAST(%s AS datetimeoffset(6)))) "
    "AS s ([pipeline], [commit_lsn], [end_lsn], [commit_time]) ON t.[pipeline] = s.[pipeline] "
    "WHEN MATCHED THEN UPDATE SET [commit_lsn] = s.[commit_lsn], [end_lsn] = s.[end_lsn], "
    "[commit_time] = s.[commit_time], [applied_at] = SYSUTCDATETIME() "
    "WHEN NOT MATCHED THEN INSERT ([pipeline], [commit_lsn], [end_lsn], [commit_time], "
    "[applied_at]) VALUES (s.[pipeline], s.[commit_lsn], s.[end_lsn], s.[commit_time], "
    "SYSUTCDATETIME());"
)
# Parameters: pipeline. Returns (commit_lsn, end_lsn) as decimals, or no row.
POSITION_READ: Final = (
    f"SELECT [commit_lsn], [end_lsn] FROM {_POSITION} "  # noqa: S608
    "WHERE [pipeline] = CAST(%s AS nvarchar(max));"
)
# DB-Library sessions (pymssql's) start with several ANSI options off. XACT_ABORT makes any error
# roll the whole transaction back; ANSI_WARNINGS turns truncation and overflow into errors rather
# than silent data changes; NOCOUNT drops a round of row counts per statement of a batch.
SESSION_SETTINGS: Final = (
    "SET XACT_ABORT ON; SET NOCOUNT ON; SET ANSI_WARNINGS ON; SET ANSI_NULLS ON; "
    "SET ANSI_PADDING ON; SET CONCAT_NULL_YIELDS_NULL ON; SET ARITHABORT ON; "
    "SET QUOTED_IDENTIFIER ON;"
)


# -- changes as statements --------------------------------------------------------------------


class Planned(NamedTuple):
    """One change's statement, its parameters and (for messages) the key of its row."""

    sql: str
    params: tuple[object, ...]
    key: tuple[Value, ...] | None


class BoundTable:
    """A table as one Relation sends its rows: turns each change into its statement.

    `order[j]` is the position in the Relation's rows of `table.columns[j]` (None: the same).
    A keyed table upserts full rows (so a row missing on the target comes back, as on
    PostgreSQL), updates the columns sent by key, and deletes by key; a keyless table inserts
    plainly and changes one row equal to the old values (REPLICA IDENTITY FULL).
    """

    __slots__ = ("order", "sql", "table")

    def __init__(self, table: MssqlTable, sql: TableSql, order: tuple[int, ...] | None) -> None:
        self.table = table
        self.sql = sql
        self.order = order

    def plan(self, change: Insert | Update | Delete, lsn: int) -> Planned | None:
        """The change's statement; None when it changes nothing (only unchanged TOAST values).

        Raises PermanentApplyError for a change that lacks its key or values, or whose value a
        converter rejects.
        """
        if type(change) is Insert:
            new = self._reorder(change.new)
            if UNCHANGED in new:
                raise PermanentApplyError(self.table.target, None, lsn, "an INSERT lacks values")
            return self._full_row(new, new, lsn)
        if type(change) is Delete:
            old = self._reorder(change.old)
            if self.table.key:
                return Planned(self.sql.delete(), self._key_params(old, lsn), self._key(old))
            match = self._match(old, lsn)
            return Planned(self.sql.row_delete(match), self._params(old, match, old, lsn), None)
        return self._update(change, lsn)  # type: ignore[arg-type]

    def _update(self, change: Update, lsn: int) -> Planned | None:
        table = self.table
        new = self._reorder(change.new)
        old = None if change.old is None else self._reorder(change.old)
        if not table.key:
            if old is None:
                raise PermanentApplyError(
                    table.target, None, lsn, "an UPDATE of a table without a key came without "
                    "its old row; the source table needs REPLICA IDENTITY FULL",
                )  # fmt: skip
            set_columns, match = _sent(new), self._match(old, lsn)
            if not set_columns:
                return None
            params = self._params(new, set_columns, old, lsn) + self._params(old, match, old, lsn)
            return Planned(self.sql.row_update(set_columns, match), params, None)
        where = new if old is None else old
        keys = table.key_positions
        if old is not None and any(new[p] is not UNCHANGED and new[p] != old[p] for p in keys):
            set_columns = _sent(new)  # the key moved: set it too, where the old key is
        elif UNCHANGED not in new:
            return self._full_row(new, where, lsn)
        else:
            set_columns = tuple(i for i in _sent(new) if i not in keys)
        key_params = self._key_params(where, lsn)
        if not set_columns:
            return None
        params = self._params(new, set_columns, where, lsn) + key_params
        return Planned(self.sql.update(set_columns), params, self._key(where))

    def _full_row(self, new: Row, where: Row, lsn: int) -> Planned:
        if not self.table.key:
            return Planned(self.sql.insert(), self._params(new, range(len(new)), new, lsn), None)
        self._require_key(where, lsn)
        self._require_key(new, lsn)
        return Planned(
            self.sql.upsert(), self._params(new, range(len(new)), new, lsn), self._key(new)
        )

    def _match(self, old: Row, lsn: int) -> tuple[int, ...]:
        """The columns a keyless row is found by: every old value sent."""
        match = _sent(old)
        if not match:
            raise PermanentApplyError(
                self.table.target, None, lsn, "a change of a table without a key came without "
                "its old values; the source table needs REPLICA IDENTITY FULL",
            )  # fmt: skip
        return match

    def _reorder(self, row: Row) -> Row:
        order = self.order
        return row if order is None else tuple([row[i] for i in order])

    def _key(self, row: Row) -> tuple[Value, ...]:
        return tuple([row[p] for p in self.table.key_positions])

    def _require_key(self, row: Row, lsn: int) -> None:
        if any(not isinstance(row[p], str) for p in self.table.key_positions):
            raise PermanentApplyError(
                self.table.target, None, lsn, "a change arrived without the value of its key"
            )

    def _key_params(self, row: Row, lsn: int) -> tuple[object, ...]:
        self._require_key(row, lsn)
        return self._params(row, self.sql.key_params, row, lsn)

    def _params(
        self, row: Row, columns: Sequence[int], key_row: Row, lsn: int
    ) -> tuple[object, ...]:
        """The parameters for `columns` of `row`; a rejected value names its column and key."""
        out: list[object] = []
        cols = self.table.columns
        for i in columns:
            value = row[i]
            if isinstance(value, str):
                try:
                    out.append(cols[i].converter(value))
                except ValueRejected as exc:
                    raise UnholdableValueError(
                        self.table.source,
                        quote_qualified(self.table.target.schema, self.table.target.name),
                        key_text(self.table, self._key(key_row)),
                        lsn,
                        f"column {quote_ident_display(cols[i].name)}: {exc.reason}",
                    ) from exc
            else:
                out.append(None)
        return tuple(out)


def _sent(row: Row) -> tuple[int, ...]:
    """Positions whose value was sent (not an unchanged TOASTed value)."""
    return tuple([i for i, v in enumerate(row) if v is not UNCHANGED])


def key_text(table: MssqlTable, key: Sequence[Value] | None) -> str | None:
    """The key as every target's errors show it, `id=7` or `(a, b)=(1, x)`; None without one."""
    if not table.key or key is None:
        return None
    return describe_key(table.key, [v if isinstance(v, str) else None for v in key])
