"""The statements the applier runs: one op per statement, with rows of text parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from psycopg import sql

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.apply_sql import (
    Match,
    TableShape,
    delete_sql,
    patch_sql,
    row_delete_sql,
    row_update_sql,
    truncate_sql,
    upsert_sql,
)
from cdc_tui.engines.embedded.messages import Change

TextRow = tuple[str | None, ...]
Key = tuple[str, ...]


class OpKind(StrEnum):
    UPSERT = "upsert"  # full rows; a keyless table gets a plain INSERT
    DELETE = "delete"  # by key
    PATCH = "patch"  # some columns, by old key
    ROW_UPDATE = "row_update"  # one keyless row, matched on its old values
    ROW_DELETE = "row_delete"
    TRUNCATE = "truncate"


_BATCHED = frozenset({OpKind.UPSERT, OpKind.DELETE, OpKind.PATCH})
# Rows of strings and None become the JSON batch parameter of apply_sql; raw UTF-8 is both smaller
# and cheaper than \u escapes, and the rows hold no containers that could be circular.
_encode_rows: Final = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


@dataclass(slots=True)
class Pending:
    """A buffered change with the table shape it was decoded against and its transaction's LSN.

    `truncate_targets` holds the known target tables of a Truncate (its `shape` is None). Not
    frozen: one is built per change, and a frozen dataclass costs twice as much to build.
    """

    change: Change
    shape: TableShape | None
    lsn: int
    truncate_targets: tuple[TableRef, ...] = ()


@dataclass(slots=True)
class Op:
    """One statement: a kind, its table, and rows of text parameters (one per source row).

    Batched kinds (UPSERT, DELETE, PATCH) send all rows as one JSON parameter; row kinds send
    the single row's values as scalar parameters. `lsns[i]` is the source transaction of `rows[i]`.
    """

    kind: OpKind
    shape: TableShape | None
    rows: list[TextRow]
    lsns: list[int]
    set_columns: tuple[int, ...] = ()
    match: Match = ()
    truncate: tuple[tuple[TableRef, ...], bool, bool] | None = None

    def query(self) -> sql.Composed:
        """The statement for this op (the applier caches it per shape and `cache_key`)."""
        if self.kind is OpKind.TRUNCATE:
            assert self.truncate is not None
            targets, cascade, restart = self.truncate
            return truncate_sql(targets, cascade=cascade, restart_identity=restart)
        shape = self.require_shape()
        if self.kind is OpKind.UPSERT:
            return upsert_sql(shape)
        if self.kind is OpKind.DELETE:
            return delete_sql(shape)
        if self.kind is OpKind.PATCH:
            return patch_sql(shape, self.set_columns)
        if self.kind is OpKind.ROW_UPDATE:
            return row_update_sql(shape, self.set_columns, self.match)
        return row_delete_sql(shape, self.match)

    @property
    def cache_key(self) -> tuple[object, ...] | None:
        return None if self.kind is OpKind.TRUNCATE else (self.kind, self.set_columns, self.match)

    def require_shape(self) -> TableShape:
        if self.shape is None:
            raise ValueError(f"a {self.kind} op needs a table")
        return self.shape

    def params(self) -> list[object]:
        """The rows as one JSON text for batched kinds, the row's values for row kinds."""
        if self.kind in _BATCHED:
            return [_encode_rows(self.rows)]
        return list(self.rows[0]) if self.rows else []

    def split(self) -> list[Op]:
        """One op per row (to find the row a failed batch stumbled on)."""
        if self.kind not in _BATCHED or len(self.rows) == 1:
            return [self]
        return [
            Op(self.kind, self.shape, [row], [lsn], self.set_columns, self.match)
            for row, lsn in zip(self.rows, self.lsns, strict=True)
        ]

    @property
    def table(self) -> TableRef | None:
        if self.truncate is not None:
            return self.truncate[0][0] if self.truncate[0] else None
        return None if self.shape is None else self.shape.target

    def key_text(self, i: int) -> str | None:
        """The key of row `i` for an error message; None when the table has no key."""
        if self.shape is None or not self.shape.has_key or self.kind not in _BATCHED:
            return None
        row = self.rows[i]
        if self.kind is OpKind.UPSERT:
            return self.shape.key_text([row[k] for k in self.shape.key])
        return self.shape.key_text(row[: len(self.shape.key)])
