"""Apply decoded source transactions to a SQL Server target, exactly once.

The same contract as the PostgreSQL applier (`cdc_tui.engines.embedded.applier`): each change
becomes one T-SQL statement (`dml`), sent `batch_statements` at a time as one batch (one round
trip) into an open target transaction; the target commits only at a source transaction boundary,
together with the position upsert of the last source transaction applied, once the group holds
`group_changes` changes or `batch_interval_s` has passed. A source transaction whose commit lies
below the stored end LSN is skipped whole, so what the slot re-sends after a crash applies once.

Any failure rolls back and resets (the next begin re-reads the stored position). When a batch of
several statements is refused, the group is replayed one statement at a time in a throwaway
transaction to name the change that fails: table, key and the LSN of its source transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from pymssql import _mssql

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.apply_errors import ApplyError, PermanentApplyError
from cdc_tui.engines.embedded.messages import (
    Change,
    Delete,
    Insert,
    Relation,
    Truncate,
    Update,
    Value,
)
from cdc_tui.engines.embedded.source_transactions import SourceTransactions
from cdc_tui.targets.mssql.apply_errors import check_relation, classify
from cdc_tui.targets.mssql.ddl import position_table_batches
from cdc_tui.targets.mssql.dml import (
    POSITION_READ,
    POSITION_REF,
    POSITION_UPSERT,
    SESSION_SETTINGS,
    BoundTable,
    MssqlTable,
    TableSql,
    key_text,
)
from cdc_tui.targets.mssql.server_errors import DRIVER_ERRORS, is_retriable

log = logging.getLogger(__name__)

# Past this many statements in one target transaction, those already run are no longer kept
# for diagnosis, so one huge source transaction cannot hold every statement in memory.
DEFAULT_REPLAY_LIMIT = 50_000


class Cursor(Protocol):
    """The DB-API cursor the applier uses (pymssql's): `%s` placeholders, tuple rows."""

    def execute(self, operation: str, params: tuple[object, ...] = ..., /) -> object: ...

    def fetchone(self) -> Sequence[Any] | None: ...


class Connection(Protocol):
    """A DB-API connection with autocommit off: there is always an open transaction."""

    def cursor(self) -> Cursor: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class _Stmt(NamedTuple):
    """One statement of the open target transaction and the change it applies."""

    sql: str
    params: tuple[object, ...]
    table: MssqlTable | None  # None for the position upsert
    key: tuple[Value, ...] | None
    lsn: int | None


class MssqlApplier(SourceTransactions):
    """Applies one pipeline's source transactions to its SQL Server connection.

    Feed messages with `apply()` (or `begin`/`relation`/`change`/`commit`), call `flush_commit()`
    when the stream is idle or stopping, and acknowledge `committed_lsn` to the slot.
    """

    def __init__(
        self,
        conn: Connection,
        pipeline: str,
        tables: Mapping[TableRef, MssqlTable],
        *,
        group_changes: int = 2000,
        batch_statements: int = 200,
        batch_interval_s: float = 0.5,
        replay_limit: int = DEFAULT_REPLAY_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if group_changes < 1 or batch_statements < 1:
            raise ValueError("group_changes and batch_statements must be at least 1")
        super().__init__(group_changes, batch_interval_s, clock)
        self._conn = conn
        self._cursor = conn.cursor()
        self._pipeline = pipeline
        self._tables = dict(tables)
        self._batch_statements = batch_statements
        self._replay_limit = replay_limit
        self._relations: dict[int, Relation] = {}
        self._bound: dict[int, BoundTable | None] = {}
        self._sql: dict[TableRef, TableSql] = {}
        self._source_types: dict[TableRef, dict[str, tuple[int, int]]] = {}
        self._ignored: set[TableRef] = set()
        # Statements of the open target transaction; those from `_sent` on are not sent yet.
        self._log: list[_Stmt] = []
        self._sent = 0
        self._log_complete = True
        try:
            self._cursor.execute(SESSION_SETTINGS)
            conn.commit()
        except DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc

    # -- position ---------------------------------------------------------------------------

    @property
    def tables(self) -> Mapping[TableRef, MssqlTable]:
        return dict(self._tables)

    def ensure_position_table(self) -> None:
        """Create `[cdc_tui].[applied_position]` on the target when missing."""
        self._require_between_groups("ensure_position_table")
        try:
            for batch in position_table_batches():
                self._cursor.execute(batch)
            self._conn.commit()
        except DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc

    def read_position(self) -> int | None:
        """The stored end LSN of the last applied source transaction (None before any)."""
        idle = not self._log and self._last_commit is None
        try:
            cursor = self._conn.cursor()
            cursor.execute(POSITION_READ, (self._pipeline,))
            row = cursor.fetchone()
            if idle:
                self._conn.commit()  # end the read so no lock or snapshot outlives it
        except DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc
        stored = None if row is None else int(row[1])
        self._position_read(stored)
        return stored

    def write_initial_position(self, lsn: int) -> None:
        """Record the full load's handoff LSN, alone in its own target transaction."""
        self._require_between_groups("write_initial_position")
        try:
            self._cursor.execute(POSITION_UPSERT, (self._pipeline, lsn, lsn, None))
            self._conn.commit()
        except DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc
        self._position_written(lsn)

    # -- the stream -------------------------------------------------------------------------

    def relation(self, rel: Relation) -> None:
        """Learn a relation; check it now unless its transaction is skipped (then at first use,
        since a replayed Relation may describe a schema older than the target's)."""
        self._relations[rel.relation_id] = rel
        self._bound.pop(rel.relation_id, None)
        if not self._skipping:
            try:
                self._bind(rel.relation_id)
            except ApplyError:
                self._reset()
                raise

    def change(self, msg: Change) -> None:
        """Turn one change into its statement; a full batch is sent to the open transaction."""
        lsn = self._txn_lsn
        if lsn is None:
            raise RuntimeError("change() outside a source transaction")
        if self._skipping:
            return
        try:
            if type(msg) is Truncate:
                if not self._truncate(msg, lsn):
                    return
            else:
                row_change: Insert | Update | Delete = msg  # type: ignore[assignment]
                bound = self._bound_table(row_change.relation_id)
                if bound is None:
                    return
                planned = bound.plan(row_change, lsn)
                if planned is not None:
                    sql, params, key = planned
                    self._log.append(_Stmt(sql, params, bound.table, key, lsn))
        except ApplyError:
            self._reset()
            raise
        self._group_changes += 1
        if len(self._log) - self._sent >= self._batch_statements:
            self._send()

    def flush_commit(self) -> int | None:
        """Commit the applied source transactions now (idle stream, stop); never mid-transaction.

        Returns `committed_lsn`, unchanged when called inside a source transaction.
        """
        if self._txn_lsn is None and self._last_commit is not None:
            self._commit_target()
        return self._committed_lsn

    def _truncate(self, msg: Truncate, lsn: int) -> bool:
        """Queue TRUNCATE TABLE for each replicated table; False when none is replicated."""
        found = False
        for relation_id in msg.relation_ids:
            bound = self._bound_table(relation_id)
            if bound is not None:
                self._log.append(_Stmt(bound.sql.truncate(), (), bound.table, None, lsn))
                found = True
        return found

    # -- relations --------------------------------------------------------------------------

    def _bound_table(self, relation_id: int) -> BoundTable | None:
        """The relation's table, checked at its first use; None for a table not replicated."""
        try:
            return self._bound[relation_id]
        except KeyError:
            return self._bind(relation_id)

    def _bind(self, relation_id: int) -> BoundTable | None:
        """Check a relation against its table; None for a table the pipeline does not hold."""
        lsn = self._txn_lsn
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
                log.warning("%s is not in pipeline %s; ignoring it", source, self._pipeline)
            self._bound[relation_id] = None
            return None
        check_relation(table, rel, self._source_types.get(source), lsn)
        self._source_types[source] = {c.name: (c.type_oid, c.type_modifier) for c in rel.columns}
        names = [c.name for c in rel.columns]
        order = tuple(names.index(c.name) for c in table.columns)
        sql = self._sql.get(source)
        if sql is None:
            sql = self._sql[source] = TableSql(table)
        bound = BoundTable(table, sql, None if order == tuple(range(len(order))) else order)
        self._bound[relation_id] = bound
        return bound

    # -- the target transaction -------------------------------------------------------------

    def _require_between_groups(self, what: str) -> None:
        if self._txn_lsn is not None or self._last_commit is not None or self._log:
            raise RuntimeError(f"{what}() while source transactions are being applied")

    def _execute(self, batch: Sequence[_Stmt]) -> None:
        """Run statements as one batch (one round trip).

        pymssql substitutes parameters on the client, in time that grows faster than the text
        (100 us a statement in a batch of 200, 16 in one of 20), so a batch is rendered one
        statement at a time by the same function and sent without parameters.
        """
        if len(batch) == 1:
            stmt = batch[0]
            if stmt.params:
                self._cursor.execute(stmt.sql, stmt.params)
            else:
                self._cursor.execute(stmt.sql)
            return
        # The converters only produce types pymssql quotes; its stub names them one by one.
        render: Callable[[str, tuple[object, ...]], bytes] = _mssql.substitute_params  # type: ignore[assignment]
        text = "\n".join(
            render(s.sql, s.params).decode("utf-8") if s.params else s.sql for s in batch
        )
        self._cursor.execute(text)

    def _send(self) -> None:
        """Send the statements not sent yet into the open target transaction."""
        start = self._sent
        if start == len(self._log):
            return
        try:
            self._execute(self._log[start:])
        except DRIVER_ERRORS as exc:
            raise self._failed(exc, start) from exc
        self._sent = len(self._log)
        if self._sent > self._replay_limit:
            self._log.clear()
            self._sent = 0
            self._log_complete = False

    def _commit_target(self) -> None:
        last = self._last_commit
        assert last is not None
        commit_time = last.commit_time.isoformat()
        params = (self._pipeline, last.commit_lsn, last.end_lsn, commit_time)
        self._log.append(_Stmt(POSITION_UPSERT, params, None, None, last.commit_lsn))
        self._send()
        try:
            self._conn.commit()
        except DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc
        self._log.clear()
        self._sent = 0
        self._log_complete = True
        self._group_committed(last)

    def _failed(self, exc: Exception, batch_start: int | None = None) -> ApplyError:
        """Roll back, find the failing change of a refused batch, reset; the error to raise."""
        lsn = self._txn_lsn or (self._last_commit.commit_lsn if self._last_commit else None)
        table: TableRef | None = None
        key: str | None = None
        rolled_back = self._rollback()
        # A connection that cannot even roll back is gone: replaying it later may succeed.
        retriable = is_retriable(exc) or not rolled_back
        if batch_start is not None and not retriable:
            batch = self._log[batch_start:]
            found = (batch[0], exc) if len(batch) == 1 else self._diagnose(batch_start)
            if found is not None:
                stmt, exc = found
                table = stmt.table.target if stmt.table is not None else POSITION_REF
                key = key_text(stmt.table, stmt.key) if stmt.table is not None else None
                lsn = stmt.lsn
        self._reset(rollback=False)
        return classify(exc, table=table, key=key, lsn=lsn, retriable=retriable)

    def _diagnose(self, batch_start: int) -> tuple[_Stmt, Exception] | None:
        """Replay the rolled-back group, the refused batch one statement at a time, to find the
        statement the target refuses; roll back again whatever happens."""
        try:
            if self._log_complete:
                prior = self._log[:batch_start]
                for i in range(0, len(prior), self._batch_statements):
                    self._execute(prior[i : i + self._batch_statements])
            for stmt in self._log[batch_start:]:
                try:
                    self._execute((stmt,))
                except DRIVER_ERRORS as exc:
                    return None if is_retriable(exc) else (stmt, exc)
        except DRIVER_ERRORS as exc:
            log.debug("could not replay the refused batch to find its change: %s", exc)
        finally:
            self._rollback()
        return None

    def _rollback(self) -> bool:
        """Roll the target transaction back; False when even that failed."""
        try:
            self._conn.rollback()
        except DRIVER_ERRORS as exc:
            log.debug("rollback after a failed apply failed too: %s", type(exc).__name__)
            return False
        return True

    def _reset(self, *, rollback: bool = True) -> None:
        """Forget everything uncommitted: the next begin() re-reads the stored position."""
        if rollback:
            self._rollback()
        self._log.clear()
        self._sent = 0
        self._log_complete = True
        self._forget_group()
