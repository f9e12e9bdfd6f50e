"""Apply decoded source transactions to a PostgreSQL target, exactly once.

The runner feeds each pgoutput message in stream order. Changes are planned (at most
`batch_changes` at a time) into a few set-based statements sent, without waiting, into one open
target transaction; the target commits only at a source transaction boundary, together with the
applied position, once the group holds `group_changes` changes or `batch_interval_s` has passed.
A group of several batches lets the target run one batch while the next is decoded; a commit
waits for all of them. Transactions whose commit
lies below the stored position are skipped whole, so whatever the slot re-sends after a crash is
applied once. Any error rolls the target transaction back and resets the applier: the runner then
replays from the slot, which re-sends everything after the last acknowledged `committed_lsn`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import pq

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded import position
from cdc_tui.engines.embedded.apply_errors import ApplyError, classify, is_retriable
from cdc_tui.engines.embedded.apply_exec import BatchFailed, OpRunner, Statement
from cdc_tui.engines.embedded.apply_ops import Op
from cdc_tui.engines.embedded.apply_plan import Planner
from cdc_tui.engines.embedded.apply_sql import TableShape
from cdc_tui.engines.embedded.messages import (
    Change,
    Delete,
    Insert,
    Relation,
    Truncate,
    Update,
)
from cdc_tui.engines.embedded.relation_map import RelationMap
from cdc_tui.engines.embedded.source_transactions import SourceTransactions
from cdc_tui.engines.embedded.target_table import TargetTable, TypeNamer

log = logging.getLogger(__name__)

_UNBOUND = object()

# Values arrive as the source printed them (ISO dates, UTC, postgres intervals); the target
# session parses and, for keyless matching, prints them the same way. UTF8 makes a character the
# target's encoding lacks a PostgreSQL error (a rejected change) rather than a Python one.
_SESSION_SETTINGS = (
    "SELECT pg_catalog.set_config('client_encoding', 'UTF8', false),"
    " pg_catalog.set_config('DateStyle', 'ISO, MDY', false),"
    " pg_catalog.set_config('IntervalStyle', 'postgres', false),"
    " pg_catalog.set_config('TimeZone', 'UTC', false),"
    " pg_catalog.set_config('extra_float_digits', '3', false),"
    " pg_catalog.set_config('bytea_output', 'hex', false)"
)


class PgApplier(SourceTransactions):
    """Applies one pipeline's source transactions to its target connection (autocommit off).

    Feed messages with `apply()` (or `begin`/`relation`/`change`/`commit`), call `flush_commit()`
    when the stream is idle or stopping, and acknowledge `committed_lsn` to the slot.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        pipeline: str,
        tables: Mapping[TableRef, TargetTable],
        *,
        type_namer: TypeNamer | None = None,
        batch_changes: int = 5000,
        group_changes: int | None = None,
        batch_interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if conn.autocommit or conn.info.transaction_status != pq.TransactionStatus.IDLE:
            raise ValueError("the applier needs an idle target connection with autocommit off")
        if batch_changes < 1:
            raise ValueError("batch_changes must be at least 1")
        if group_changes is not None and group_changes < batch_changes:
            raise ValueError("group_changes must be at least batch_changes")
        conn.execute(_SESSION_SETTINGS)
        conn.commit()
        super().__init__(
            batch_changes if group_changes is None else group_changes, batch_interval_s, clock
        )
        self._conn = conn
        self._runner = OpRunner(conn)
        self._pipeline = pipeline
        self._batch_changes = batch_changes
        self._relmap = RelationMap(conn, pipeline, tables, type_namer)
        self._planner = Planner()
        # The relation map's live bindings, read directly on the hot path (see change()).
        self._bound = self._relmap.bound

    # -- position ---------------------------------------------------------------------------

    @property
    def tables(self) -> Mapping[TableRef, TargetTable]:
        """The current mapping, including columns added to follow the source."""
        return self._relmap.tables

    def ensure_position_table(self) -> None:
        """Create `cdc_tui.applied_position` on the target when missing."""
        self._require_between_groups("ensure_position_table")
        try:
            position.ensure_position_table(self._conn)
            self._conn.commit()
        except psycopg.Error as exc:
            raise self._failed(exc) from exc

    def read_position(self) -> int | None:
        """The stored end LSN of the last applied source transaction (None before any)."""
        self._wait()
        idle = self._conn.info.transaction_status == pq.TransactionStatus.IDLE
        try:
            stored = position.read_position(self._conn, self._pipeline)
            if idle:
                self._conn.commit()
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        self._position_read(stored)
        return stored

    def write_initial_position(self, lsn: int) -> None:
        """Record the full load's handoff LSN, alone in its own target transaction."""
        self._require_between_groups("write_initial_position")
        try:
            position.write_position(self._conn, self._pipeline, lsn, lsn, None)
            self._conn.commit()
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        self._position_written(lsn)

    # -- the stream -------------------------------------------------------------------------

    def relation(self, rel: Relation) -> None:
        """Learn a relation id; follow appended columns, raise SchemaDriftError on other drift."""
        self._relmap.learn(rel)
        if not self._skipping:
            self._shape_for(rel.relation_id, bind=True)

    def change(self, msg: Change) -> None:
        """Plan one change; a full batch runs (uncommitted) in the open target transaction."""
        lsn = self._txn_lsn
        if lsn is None:
            raise RuntimeError("change() outside a source transaction")
        if self._skipping:
            return
        planner = self._planner
        try:
            if type(msg) is Truncate:
                shapes = [self._shape_for(rid) for rid in msg.relation_ids]
                targets = tuple(s.target for s in shapes if s is not None)
                if not targets:
                    return
                planner.add_truncate(msg, targets, lsn)
            else:
                row_change: Insert | Update | Delete = msg  # type: ignore[assignment]
                relation_id = row_change.relation_id
                shape = self._bound.get(relation_id, _UNBOUND)
                if shape is _UNBOUND:
                    shape = self._shape_for(relation_id)
                if shape is None:
                    return
                planner.add(row_change, shape, lsn)  # type: ignore[arg-type]
        except ApplyError:
            self._reset()
            raise
        self._group_changes += 1
        if planner.changes >= self._batch_changes:
            self._flush()

    def flush_commit(self) -> int | None:
        """Commit the applied source transactions now (idle stream, stop); never mid-transaction.

        Returns `committed_lsn`, unchanged when called inside a source transaction.
        """
        if self._txn_lsn is not None:
            return self._committed_lsn
        try:
            if self._last_commit is not None:
                self._commit_target()
            elif self._conn.info.transaction_status == pq.TransactionStatus.INTRANS:
                self._conn.commit()  # only catalog reads: end them so no snapshot is held
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        return self._committed_lsn

    # -- internals --------------------------------------------------------------------------

    def _require_between_groups(self, what: str) -> None:
        if self._txn_lsn is not None or self._last_commit is not None or self._planner.changes:
            raise RuntimeError(f"{what}() while source transactions are being applied")

    def _shape_for(self, relation_id: int, *, bind: bool = False) -> TableShape | None:
        try:
            if bind:
                return self._relmap.bind(relation_id, self._txn_lsn, self._flush_and_wait)
            return self._relmap.shape_for(relation_id, self._txn_lsn, self._flush_and_wait)
        except ApplyError:
            self._reset()
            raise
        except psycopg.Error as exc:
            raise self._failed(exc) from exc

    def _flush(self, extra: Statement | None = None) -> None:
        """Send the buffered changes (and `extra`) into the open target transaction."""
        ops = self._planner.take()
        try:
            self._runner.send(ops, extra)
        except BatchFailed as failed:
            raise self._failed(failed.error, failed.ops) from failed.error

    def _wait(self) -> None:
        """Wait until the target has run everything sent."""
        try:
            self._runner.drain()
        except BatchFailed as failed:
            raise self._failed(failed.error, failed.ops) from failed.error

    def _flush_and_wait(self) -> None:
        self._flush()
        self._wait()

    def _commit_target(self) -> None:
        last = self._last_commit
        assert last is not None
        self._flush(
            position.upsert_position_args(
                self._pipeline, last.commit_lsn, last.end_lsn, last.commit_time
            )
        )
        self._wait()
        try:
            self._conn.commit()
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        self._relmap.committed()
        self._group_committed(last)

    def _failed(self, exc: psycopg.Error, ops: Sequence[Op] = ()) -> ApplyError:
        """Roll back, find the failing row of a rejected batch, reset; the error to raise."""
        lsn = self._txn_lsn or (self._last_commit.commit_lsn if self._last_commit else None)
        table: TableRef | None = None
        key: str | None = None
        retriable = is_retriable(exc) or self._conn.broken or self._conn.closed
        self._rollback()
        if ops and not retriable:
            found = self._runner.diagnose(ops)
            if found is not None:
                table, key, lsn = found.table, found.key, found.lsn
                exc = found.cause or exc
        self._reset()
        return classify(exc, table=table, key=key, lsn=lsn, retriable=retriable)

    def _rollback(self) -> None:
        self._runner.abandon()
        if self._conn.closed:
            return
        try:
            self._conn.rollback()
        except psycopg.Error as exc:
            log.debug("rollback after a failed apply failed too: %s", type(exc).__name__)

    def _reset(self) -> None:
        """Forget everything uncommitted: the next begin() re-reads the stored position."""
        self._rollback()
        self._planner.reset()
        self._forget_group()
        self._relmap.forget_uncommitted()
