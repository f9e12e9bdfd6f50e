"""How one table's run of changes becomes ops, three ways.

`KeyedSegment` (a keyed table with nothing but its primary key: no other unique index, foreign
key, trigger or rule) folds each key's changes into its final state (deleted, a full row, or
columns to update), applied by at most one DELETE, one INSERT ... ON CONFLICT and one UPDATE per
set of columns. The keys those statements touch are disjoint, so the result equals applying the
changes one by one (insert-then-delete, A→B→C key chains, key swaps). A key UPDATE whose unchanged
TOAST values are not in the batch runs as its own UPDATE at its place.

`StrictSegment` (a keyed table with other constraints or triggers) keeps the exact order:
consecutive inserts or deletes of distinct keys batch, each update runs alone.

`KeylessSegment` (REPLICA IDENTITY FULL without a key) batches consecutive inserts and changes
every other row alone, matched on its old values.
"""

from __future__ import annotations

from typing import cast

from cdc_tui.engines.embedded.apply_errors import PermanentApplyError
from cdc_tui.engines.embedded.apply_ops import Key, Op, OpKind, TextRow
from cdc_tui.engines.embedded.apply_sql import Match, TableShape
from cdc_tui.engines.embedded.messages import UNCHANGED, Change, Delete, Insert, Row, Update


class _Deleted:
    """The final state of a key whose row is gone."""


_DELETED = _Deleted()
_State = _Deleted | TextRow | dict[int, str | None]


def _overlay(row: TextRow, new: Row) -> TextRow:
    """`new` over a known full row: UNCHANGED columns keep the row's values."""
    return tuple(old if value is UNCHANGED else value for old, value in zip(row, new, strict=True))


class _KeyReader:
    """Reads key values out of rows of one table, refusing rows that lack them."""

    def __init__(self, shape: TableShape) -> None:
        self.shape = shape
        self.key_columns = frozenset(shape.key)
        self.non_key = tuple(i for i in range(len(shape.columns)) if i not in self.key_columns)
        # Most keys are one column: read it without building a generator per row.
        self._single = shape.key[0] if len(shape.key) == 1 else None

    def key(self, row: Row, lsn: int) -> Key:
        if self._single is not None:
            value = row[self._single]
            if type(value) is str:
                return (value,)
            key: tuple[object, ...] = (value,)
        else:
            key = tuple([row[i] for i in self.shape.key])
            if None not in key and UNCHANGED not in key:
                return cast(Key, key)
        raise PermanentApplyError(
            self.shape.target, None, lsn, "a change arrived without the value of its key"
        )

    def full_row(self, row: Row, lsn: int) -> TextRow:
        if UNCHANGED in row:
            raise PermanentApplyError(self.shape.target, None, lsn, "an INSERT lacks values")
        return cast(TextRow, row)

    def keys_of_update(self, change: Update, lsn: int) -> tuple[Key, Key]:
        """Old and new key; equal unless the update moved the row."""
        new = change.new
        old_key = self.key(change.old if change.old is not None else new, lsn)
        new_key = tuple([new[i] for i in self.shape.key])
        if UNCHANGED in new_key:
            return old_key, old_key  # a TOASTed key that did not change
        return old_key, new_key  # type: ignore[return-value]

    def moving_patch(self, old_key: Key, new: Row, lsn: int) -> Op:
        """An UPDATE of every sent column (key included) of the row at `old_key`."""
        set_columns = tuple(i for i, v in enumerate(new) if v is not UNCHANGED)
        values = cast(TextRow, tuple(new[i] for i in set_columns))
        return Op(OpKind.PATCH, self.shape, [old_key + values], [lsn], set_columns)


class KeyedSegment(_KeyReader):
    """Folds a keyed table's changes per key; see the module docstring."""

    def __init__(self, shape: TableShape) -> None:
        super().__init__(shape)
        self.final: dict[Key, _State] = {}
        self.lsns: dict[Key, int] = {}
        self.out: list[Op] = []

    def add(self, change: Change, lsn: int) -> None:
        # The hot path of Step 2: type() tests and no typing.cast calls, which cost a call each.
        kind = type(change)
        if kind is Insert:
            row: Row = change.new  # type: ignore[union-attr]
            key = self.key(row, lsn)
            if UNCHANGED in row:
                raise PermanentApplyError(self.shape.target, None, lsn, "an INSERT lacks values")
            self.final[key] = row  # type: ignore[assignment]
            self.lsns[key] = lsn
        elif kind is Delete:
            key = self.key(change.old, lsn)  # type: ignore[union-attr,arg-type]
            self.final[key] = _DELETED
            self.lsns[key] = lsn
        elif kind is Update:
            update: Update = change  # type: ignore[assignment]
            old_key, new_key = self.keys_of_update(update, lsn)
            if new_key == old_key:
                self._patch(old_key, update.new, lsn)
            else:
                self._move(old_key, new_key, update.new, lsn)

    def _patch(self, key: Key, new: Row, lsn: int) -> None:
        state = self.final.get(key)
        if state is _DELETED:
            return  # updating a deleted row changes nothing, as it would one by one
        if isinstance(state, tuple):
            self.final[key] = _overlay(state, new)
        else:
            values = {i: new[i] for i in self.non_key if new[i] is not UNCHANGED}
            if not values:
                return
            if state is None:
                self.final[key] = cast(dict[int, str | None], values)
            else:
                assert isinstance(state, dict)
                state.update(cast(dict[int, str | None], values))
        self.lsns[key] = lsn

    def _move(self, old_key: Key, new_key: Key, new: Row, lsn: int) -> None:
        old_state = self.final.get(old_key)
        new_state = self.final.get(new_key)
        if (new_state is not None and new_state is not _DELETED) or old_state is _DELETED:
            self._in_place(old_key, new, lsn)
            return
        if UNCHANGED not in new:
            row = cast(TextRow, new)
        elif isinstance(old_state, tuple):
            row = _overlay(old_state, new)
        else:
            self._in_place(old_key, new, lsn)  # unchanged TOAST values live only on the target
            return
        self.final[old_key] = _DELETED
        self.lsns[old_key] = lsn
        self.final[new_key] = row
        self.lsns[new_key] = lsn

    def _in_place(self, old_key: Key, new: Row, lsn: int) -> None:
        """Emit what the table holds so far, then this key UPDATE on its own."""
        self._emit_state()
        self.out.append(self.moving_patch(old_key, new, lsn))

    def _emit_state(self) -> None:
        deletes: list[TextRow] = []
        delete_lsns: list[int] = []
        upserts: list[TextRow] = []
        upsert_lsns: list[int] = []
        patches: dict[tuple[int, ...], tuple[list[TextRow], list[int]]] = {}
        lsns = self.lsns
        for key, state in self.final.items():
            if state is _DELETED:
                deletes.append(key)
                delete_lsns.append(lsns[key])
            elif type(state) is tuple:
                upserts.append(state)
                upsert_lsns.append(lsns[key])
            else:
                assert isinstance(state, dict)
                columns = tuple(sorted(state))
                rows, row_lsns = patches.setdefault(columns, ([], []))
                rows.append(key + tuple([state[c] for c in columns]))
                row_lsns.append(lsns[key])
        if deletes:
            self.out.append(Op(OpKind.DELETE, self.shape, deletes, delete_lsns))
        if upserts:
            self.out.append(Op(OpKind.UPSERT, self.shape, upserts, upsert_lsns))
        for columns, (rows, row_lsns) in patches.items():
            self.out.append(Op(OpKind.PATCH, self.shape, rows, row_lsns, columns))
        self.final = {}
        self.lsns = {}

    def close(self, ops: list[Op]) -> None:
        """Append everything held, in order, to `ops`."""
        self._emit_state()
        ops.extend(self.out)
        self.out = []


class StrictSegment(_KeyReader):
    """Keeps a keyed table's exact order: only runs of inserts or deletes of distinct keys batch."""

    def __init__(self, shape: TableShape) -> None:
        super().__init__(shape)
        self.run: Op | None = None
        self.run_keys: set[Key] = set()
        self.out: list[Op] = []

    def add(self, change: Change, lsn: int) -> None:
        if isinstance(change, Insert):
            key = self.key(change.new, lsn)
            self._extend(OpKind.UPSERT, key, self.full_row(change.new, lsn), lsn)
        elif isinstance(change, Delete):
            key = self.key(change.old, lsn)
            self._extend(OpKind.DELETE, key, key, lsn)
        elif isinstance(change, Update):
            old_key, new_key = self.keys_of_update(change, lsn)
            self._end_run()
            if new_key != old_key:
                self.out.append(self.moving_patch(old_key, change.new, lsn))
                return
            set_columns = tuple(i for i in self.non_key if change.new[i] is not UNCHANGED)
            if set_columns:
                values = cast(TextRow, tuple(change.new[i] for i in set_columns))
                self.out.append(
                    Op(OpKind.PATCH, self.shape, [old_key + values], [lsn], set_columns)
                )

    def _extend(self, kind: OpKind, key: Key, row: TextRow, lsn: int) -> None:
        if self.run is None or self.run.kind is not kind or key in self.run_keys:
            self._end_run()
            self.run = Op(kind, self.shape, [], [])
        self.run.rows.append(row)
        self.run.lsns.append(lsn)
        self.run_keys.add(key)

    def _end_run(self) -> None:
        if self.run is not None:
            self.out.append(self.run)
            self.run = None
            self.run_keys = set()

    def close(self, ops: list[Op]) -> None:
        """Append everything held, in order, to `ops`."""
        self._end_run()
        ops.extend(self.out)
        self.out = []


class KeylessSegment:
    """A table without a key: consecutive inserts batch, each update or delete runs alone."""

    def __init__(self, shape: TableShape) -> None:
        self.shape = shape
        self.inserts: list[TextRow] = []
        self.insert_lsns: list[int] = []
        self.out: list[Op] = []

    def add(self, change: Change, lsn: int) -> None:
        if isinstance(change, Insert):
            if UNCHANGED in change.new:
                raise PermanentApplyError(self.shape.target, None, lsn, "an INSERT lacks values")
            self.inserts.append(cast(TextRow, change.new))
            self.insert_lsns.append(lsn)
            return
        if not isinstance(change, Update | Delete):
            return
        self._end_inserts()
        match, match_values = self._match(change.old, lsn)
        if isinstance(change, Delete):
            self.out.append(Op(OpKind.ROW_DELETE, self.shape, [match_values], [lsn], match=match))
            return
        set_columns = tuple(i for i, v in enumerate(change.new) if v is not UNCHANGED)
        if set_columns:
            values = cast(TextRow, tuple(change.new[i] for i in set_columns))
            row = values + match_values
            self.out.append(Op(OpKind.ROW_UPDATE, self.shape, [row], [lsn], set_columns, match))

    def _match(self, old: Row | None, lsn: int) -> tuple[Match, TextRow]:
        """Match every old column that was sent: non-NULL by value, NULL by IS NULL."""
        if old is None:
            raise PermanentApplyError(
                self.shape.target,
                None,
                lsn,
                "an UPDATE on a table without a key came without the old row; set REPLICA "
                "IDENTITY FULL on the source table",
            )
        match = tuple((i, v is None) for i, v in enumerate(old) if v is not UNCHANGED)
        if not match:
            raise PermanentApplyError(
                self.shape.target, None, lsn, "the old row of a change has no value to match on"
            )
        values = tuple(cast(str, old[i]) for i, is_null in match if not is_null)
        return match, values

    def _end_inserts(self) -> None:
        if self.inserts:
            self.out.append(Op(OpKind.UPSERT, self.shape, self.inserts, self.insert_lsns))
            self.inserts = []
            self.insert_lsns = []

    def close(self, ops: list[Op]) -> None:
        """Append everything held, in order, to `ops`."""
        self._end_inserts()
        ops.extend(self.out)
        self.out = []


Segment = KeyedSegment | StrictSegment | KeylessSegment


def new_segment(shape: TableShape) -> Segment:
    """The segment kind for a table: see the module docstring."""
    if not shape.has_key:
        return KeylessSegment(shape)
    return StrictSegment(shape) if shape.strict_order else KeyedSegment(shape)
