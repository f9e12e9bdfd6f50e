"""Sending planned statements to the target, and finding the row a rejected batch tripped on.

Inside a target transaction the connection stays in pipeline mode: a batch is sent without
waiting, so the server applies it while the applier decodes and plans the next one. Each `send`
first waits for the batch before it, so an error is always pinned to the batch that caused it,
and at most one batch is in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any, LiteralString, NamedTuple

import psycopg

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.apply_errors import is_retriable
from cdc_tui.engines.embedded.apply_ops import Op

log = logging.getLogger(__name__)

Statement = tuple[LiteralString, tuple[object, ...]]


class BatchFailed(Exception):
    """A batch failed on the target: `error` is psycopg's, `ops` the batch it belongs to."""

    def __init__(self, error: psycopg.Error, ops: Sequence[Op]) -> None:
        super().__init__(str(error))
        self.error = error
        self.ops = ops


class Culprit(NamedTuple):
    """The row (or at least the statement) a rejected batch failed on."""

    table: TableRef | None
    key: str | None
    lsn: int | None
    cause: psycopg.Error | None


class OpRunner:
    """Runs ops on one target connection inside its open transaction.

    Statement text is rendered once per table shape and kind, so psycopg prepares it once.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._pipeline: psycopg.Pipeline | None = None
        self._exit = ExitStack()
        self._in_flight: Sequence[Op] = ()

    def send(self, ops: Sequence[Op], extra: Statement | None = None) -> None:
        """Wait for the previous batch, then send `ops` (and `extra`) without waiting.

        Raises BatchFailed for whichever batch the target rejected.
        """
        self._confirm()
        if not ops and extra is None:
            return
        if self._pipeline is None:
            self._pipeline = self._exit.enter_context(self._conn.pipeline())
        cursor = self._conn.cursor()
        try:
            for op in ops:
                cursor.execute(self.query(op), op.params())
            if extra is not None:
                cursor.execute(extra[0], extra[1])
        except psycopg.Error as exc:
            self.abandon()
            raise BatchFailed(exc, ops) from exc
        self._in_flight = ops

    def drain(self) -> None:
        """Wait for everything sent and leave pipeline mode (before a commit or other SQL)."""
        self._confirm()
        self._pipeline = None
        try:
            self._exit.close()
        except psycopg.Error as exc:
            raise BatchFailed(exc, ()) from exc

    def abandon(self) -> None:
        """Leave pipeline mode after a failure, forgetting what was in flight."""
        self._pipeline = None
        self._in_flight = ()
        try:
            self._exit.close()
        except psycopg.Error as exc:
            log.debug("leaving pipeline mode after a failure failed: %s", type(exc).__name__)

    def _confirm(self) -> None:
        if self._pipeline is None:
            return
        try:
            self._pipeline.sync()
        except psycopg.Error as exc:
            ops = self._in_flight
            self.abandon()
            raise BatchFailed(exc, ops) from exc
        self._in_flight = ()

    def query(self, op: Op) -> bytes:
        """The op's statement text, from the shape's cache when it has one."""
        key = op.cache_key
        shape = op.shape
        if key is None or shape is None:
            return op.query().as_bytes(self._conn)
        cached = shape.cache.get(key)
        if cached is None:
            cached = shape.cache[key] = op.query().as_bytes(self._conn)
        return cached

    def diagnose(self, ops: Sequence[Op]) -> Culprit | None:
        """Replay a rejected batch row by row in a throwaway transaction to name the bad row.

        Call it after rolling the failed transaction back. Rows from earlier batches of the same
        target transaction are not there, so a failure that depends on them names only the table.
        """
        try:
            with self._conn.transaction(force_rollback=True):
                for op in ops:
                    if self._attempt(op) is None:
                        continue
                    for single in op.split():
                        cause = self._attempt(single)
                        if cause is not None:
                            return Culprit(single.table, single.key_text(0), single.lsns[0], cause)
                    return Culprit(op.table, None, op.lsns[0] if op.lsns else None, None)
        except psycopg.Error as exc:
            log.debug("could not replay the failed batch to find its row: %s", type(exc).__name__)
        return None

    def _attempt(self, op: Op) -> psycopg.Error | None:
        """Run one op under a savepoint; the error it raised, if any."""
        try:
            with self._conn.transaction():
                self._conn.execute(self.query(op), op.params())
        except psycopg.Error as exc:
            if is_retriable(exc):
                raise
            return exc
        return None
