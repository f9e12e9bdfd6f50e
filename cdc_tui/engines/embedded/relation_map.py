"""Relation ids of the replication stream → the target table shape their changes are written with.

A Relation is checked against its target table when it arrives, or at the first change that uses
it when it arrived inside a transaction being skipped (its shape may be older than the target's).
Columns appended on the source are added to the target in the open target transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import psycopg

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.apply_errors import PermanentApplyError, SchemaDriftError
from cdc_tui.engines.embedded.apply_sql import TableShape, add_column_sql
from cdc_tui.engines.embedded.messages import Relation, RelationColumn
from cdc_tui.engines.embedded.target_table import (
    SourceTypes,
    TargetTable,
    TypeNamer,
    check_relation,
    read_cast_types,
    read_strict_order,
    source_types,
)

log = logging.getLogger(__name__)

_UNBOUND = object()


class RelationMap:
    """What the applier knows about the stream's relations and the target tables they feed."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        pipeline: str,
        tables: Mapping[TableRef, TargetTable],
        type_namer: TypeNamer | None,
    ) -> None:
        self._conn = conn
        self._pipeline = pipeline
        self._type_namer = type_namer
        self._tables: dict[TableRef, TargetTable] = dict(tables)
        self._committed_tables = dict(self._tables)
        self._relations: dict[int, Relation] = {}
        self._bound: dict[int, TableShape | None] = {}
        self._shapes: dict[TableRef, TableShape] = {}
        self._source_types: dict[TableRef, SourceTypes] = {}
        self._ignored: set[TableRef] = set()

    @property
    def tables(self) -> Mapping[TableRef, TargetTable]:
        return dict(self._tables)

    @property
    def bound(self) -> Mapping[int, TableShape | None]:
        """Relation ids already checked, and their shape (None: not replicated); a live view."""
        return self._bound

    def learn(self, rel: Relation) -> None:
        """Remember a Relation message; it is checked by `bind` (now or at its first change)."""
        self._relations[rel.relation_id] = rel
        self._bound.pop(rel.relation_id, None)

    def shape_for(
        self, relation_id: int, lsn: int | None, flush: Callable[[], None]
    ) -> TableShape | None:
        """The shape changes of `relation_id` are written with; None for a table not replicated."""
        shape = self._bound.get(relation_id, _UNBOUND)
        if shape is _UNBOUND:
            return self.bind(relation_id, lsn, flush)
        return shape  # type: ignore[return-value]

    def bind(
        self, relation_id: int, lsn: int | None, flush: Callable[[], None]
    ) -> TableShape | None:
        """Check the relation against its target table, adding appended columns to the target.

        `flush` runs the applier's buffered changes (and waits for them) before an ALTER TABLE
        changes the columns or the catalog is read.
        Raises SchemaDriftError for any other difference, psycopg.Error from the target.
        """
        rel = self._relations.get(relation_id)
        if rel is None:
            raise PermanentApplyError(
                None, None, lsn, f"no Relation message came for relation {relation_id}"
            )
        source = TableRef(rel.namespace, rel.name)
        table = self._tables.get(source)
        if table is None:
            if source not in self._ignored:
                self._ignored.add(source)
                log.warning(
                    "%s is not in pipeline %s; ignoring its changes", source, self._pipeline
                )
            self._bound[relation_id] = None
            return None
        previous = self._source_types.get(source)
        appended = check_relation(table, rel, previous, self._type_namer, lsn)
        if appended:
            flush()  # buffered changes were decoded against the old columns
            table = self._add_columns(table, appended, lsn)
        shape = self._shape(table, flush)
        self._source_types[source] = source_types(rel)
        self._bound[relation_id] = shape
        return shape

    def _add_columns(
        self, table: TargetTable, appended: Sequence[RelationColumn], lsn: int | None
    ) -> TargetTable:
        if self._type_namer is None:
            raise SchemaDriftError(
                table.source, f"column {appended[0].name} was added with no type mapping set", lsn
            )
        for column in appended:
            type_sql = self._type_namer(column.type_oid, column.type_modifier)
            self._conn.execute(add_column_sql(table.target, column.name, type_sql))
            log.info(
                "added column %s %s to %s to follow the source", column.name, type_sql, table.target
            )
        names = tuple(c.name for c in appended)
        types = read_cast_types(self._conn, table.target)
        table = replace(
            table,
            columns=table.columns + names,
            column_types={**table.column_types, **{n: types[n] for n in names}},
        )
        self._tables[table.source] = table
        return table

    def _shape(self, table: TargetTable, flush: Callable[[], None]) -> TableShape:
        shape = self._shapes.get(table.source)
        if shape is not None and shape.columns == table.columns:
            return shape  # same object: keeps batching segments and cached statements
        flush()  # the catalog reads below must not interleave with statements in flight
        # Cast to what the target really has, without modifiers (see apply_sql), whatever the
        # mapping's column_types say: `::varchar(5)` would truncate where assignment refuses.
        types = read_cast_types(self._conn, table.target)
        missing = [c for c in table.columns if c not in types]
        if missing:
            raise PermanentApplyError(
                table.target, None, None, f"column {missing[0]} does not exist on the target"
            )
        shape = TableShape(
            table.target,
            table.columns,
            tuple(types[c] for c in table.columns),
            tuple(table.columns.index(k) for k in table.key),
            strict_order=read_strict_order(self._conn, table.target),
        )
        self._shapes[table.source] = shape
        return shape

    def committed(self) -> None:
        """The target committed: columns added so far are there for good."""
        self._committed_tables = dict(self._tables)

    def forget_uncommitted(self) -> None:
        """The target rolled back: undo added columns and re-check every relation."""
        self._tables = dict(self._committed_tables)
        self._bound.clear()
        self._shapes.clear()
