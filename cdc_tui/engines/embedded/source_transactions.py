"""What every target's applier does the same way with source transactions.

A transaction whose commit lies below the stored end LSN is skipped whole (what the slot
re-sends after a crash is applied once); several source transactions share one target
transaction, committed only at a source boundary once the group is full or old enough; the
applied position moves only after that commit. Subclasses hold the target: they read and write
the position, turn changes into statements and commit them (`_commit_target`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime

from cdc_tui.engines.embedded.messages import (
    Begin,
    Change,
    Commit,
    Delete,
    Insert,
    Message,
    Relation,
    Truncate,
    Update,
)
from cdc_tui.lsn import lsn_to_str

log = logging.getLogger(__name__)


class SourceTransactions(ABC):
    """Skip, group and commit source transactions; the target side is the subclass's."""

    def __init__(self, group_limit: int, batch_interval_s: float, clock: Callable[[], float]):
        self._group_limit = group_limit
        self._batch_interval_s = batch_interval_s
        self._clock = clock
        self._position: int | None = None
        self._position_loaded = False
        self._committed_lsn: int | None = None
        self._txn_lsn: int | None = None
        self._skipping = False
        self._group_started: float | None = None
        self._group_changes = 0
        self._last_commit: Commit | None = None
        self.changes_applied = 0
        self.last_commit_time: datetime | None = None

    # -- the target's side ------------------------------------------------------------------

    @abstractmethod
    def read_position(self) -> int | None:
        """Read the stored end LSN; implementations call `_position_read`."""

    @abstractmethod
    def write_initial_position(self, lsn: int) -> None:
        """Store `lsn` alone in its own target transaction; implementations call
        `_position_written`."""

    @abstractmethod
    def relation(self, rel: Relation) -> None: ...

    @abstractmethod
    def change(self, msg: Change) -> None: ...

    @abstractmethod
    def flush_commit(self) -> int | None:
        """Commit the applied source transactions now (idle stream, stop), never inside one;
        returns `committed_lsn`."""

    @abstractmethod
    def _commit_target(self) -> None:
        """Commit the open group with the position of `_last_commit`, then `_group_committed`."""

    # -- position ---------------------------------------------------------------------------

    @property
    def committed_lsn(self) -> int | None:
        """End LSN of the last source transaction committed on the target: safe to acknowledge."""
        return self._committed_lsn

    @property
    def pending_commit(self) -> bool:
        """Whether applied source transactions wait in the open target transaction."""
        return self._last_commit is not None

    def advance_position(self, lsn: int) -> None:
        """With nothing pending, record that the source is consumed up to `lsn` (an idle
        stream's keepalive position), so the stored position never trails the slot."""
        if self._committed_lsn is not None and lsn <= self._committed_lsn:
            return
        self.write_initial_position(lsn)

    def _position_read(self, stored: int | None) -> None:
        self._position = stored
        self._position_loaded = True
        if self._committed_lsn is None:
            self._committed_lsn = stored

    def _position_written(self, lsn: int) -> None:
        self._position = self._committed_lsn = lsn
        self._position_loaded = True

    # -- the stream -------------------------------------------------------------------------

    def apply(self, msg: Message) -> None:
        """Dispatch one decoded message; Type, Origin and logical messages need nothing."""
        if isinstance(msg, Insert | Update | Delete | Truncate):
            self.change(msg)
        elif isinstance(msg, Begin):
            self.begin(msg)
        elif isinstance(msg, Commit):
            self.commit(msg)
        elif isinstance(msg, Relation):
            self.relation(msg)

    def begin(self, msg: Begin) -> None:
        """Start a source transaction; it is skipped whole when already applied."""
        if self._txn_lsn is not None:
            raise RuntimeError("begin() inside a source transaction")
        if not self._position_loaded:
            self.read_position()
        self._txn_lsn = msg.final_lsn
        # A commit record below the stored end LSN belongs to a transaction already applied.
        self._skipping = self._position is not None and msg.final_lsn < self._position
        if self._skipping:
            log.debug("skipping source transaction at %s: applied", lsn_to_str(msg.final_lsn))
        elif self._group_started is None:
            self._group_started = self._clock()

    def commit(self, msg: Commit) -> None:
        """End a source transaction; commit the target when the group is full or old enough."""
        if self._txn_lsn is None:
            raise RuntimeError("commit() outside a source transaction")
        self._txn_lsn = None
        if self._skipping:
            self._skipping = False
            return
        self._last_commit = msg
        started = self._group_started if self._group_started is not None else self._clock()
        if (
            self._group_changes >= self._group_limit
            or self._clock() - started >= self._batch_interval_s
        ):
            self._commit_target()

    def _group_committed(self, last: Commit) -> None:
        """The target committed the group ending with `last`: move the position on."""
        self._position = self._committed_lsn = last.end_lsn
        self.changes_applied += self._group_changes
        self.last_commit_time = last.commit_time
        log.debug("committed %d changes up to %s", self._group_changes, lsn_to_str(last.end_lsn))
        self._last_commit = None
        self._group_started = None
        self._group_changes = 0

    def _forget_group(self) -> None:
        """Drop everything uncommitted: the next begin() re-reads the stored position."""
        self._txn_lsn = None
        self._skipping = False
        self._group_started = None
        self._group_changes = 0
        self._last_commit = None
        self._position_loaded = False
