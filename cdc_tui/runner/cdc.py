"""Step 2 on the embedded engine: stream the slot, apply each transaction, acknowledge after commit.

Order of truth: a source transaction is applied inside a target transaction that also stores its
commit end LSN; only after that target COMMIT returns is the LSN acknowledged to the slot. A crash
anywhere therefore replays from the last acknowledgement and the applier skips what the target
already holds, by commit LSN.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cdc_tui.engines.embedded.messages import (
    Begin,
    Commit,
    Delete,
    Insert,
    Relation,
    Truncate,
    Update,
)
from cdc_tui.engines.embedded.pgoutput import decode
from cdc_tui.engines.embedded.replication import ReplicationConnection
from cdc_tui.engines.embedded.source_transactions import SourceTransactions
from cdc_tui.lsn import lsn_to_str

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.2
METRICS_INTERVAL_S = 1.0
# How often an idle stream confirms the server's position (a target write and a status update).
IDLE_CONFIRM_INTERVAL_S = 1.0


@dataclass
class StreamMetrics:
    """What the runner persists about Step 2 (at most once a second)."""

    applied_lsn: int = 0
    changes_applied: int = 0
    last_applied_at: datetime | None = None
    lag_seconds: float | None = None


class CdcStream:
    """Reads one slot and feeds one applier until `should_stop()` at a transaction boundary."""

    def __init__(
        self,
        repl: ReplicationConnection,
        applier: SourceTransactions,
        *,
        should_stop: Callable[[], bool],
        on_metrics: Callable[[StreamMetrics], None],
        start_lsn: int,
    ) -> None:
        self.repl = repl
        self.applier = applier
        self.should_stop = should_stop
        self.on_metrics = on_metrics
        self.metrics = StreamMetrics(applied_lsn=start_lsn)
        self._in_transaction = False
        self._pending_changes = 0
        self._last_commit: Commit | None = None
        self._last_metrics = 0.0
        self._last_idle_confirm = 0.0

    def run(self) -> None:
        """Stream until asked to stop; errors propagate to the runner's retry policy."""
        read = self.repl.read_payloads
        while True:
            if not self._in_transaction and self.should_stop():
                self._commit_and_ack()
                self._publish(force=True)
                return
            payloads = read(0)
            if not payloads and not self._in_transaction and self.applier.pending_commit:
                # The stream paused between transactions: commit now rather than wait for the
                # group to fill, so latency stays low under a steady trickle.
                self._commit_and_ack()
            if not payloads:
                payloads = read(READ_TIMEOUT_S)
            if payloads:
                self._apply_all(payloads)
            else:
                self._on_idle()
            self._publish()

    def _apply_all(self, payloads: list[bytes]) -> None:
        """Decode and apply a run of messages; the hot loop, so it avoids attribute lookups."""
        change = self.applier.change
        changes = 0
        try:
            for payload in payloads:
                msg = decode(payload)
                kind = type(msg)
                if kind is Insert or kind is Update or kind is Delete:
                    change(msg)  # type: ignore[arg-type]
                    changes += 1
                else:
                    self._pending_changes += changes  # counted before a Commit reports them
                    changes = 0
                    self._dispatch(msg)
        finally:
            self._pending_changes += changes

    def _dispatch(self, msg: object) -> None:
        if isinstance(msg, Insert | Update | Delete | Truncate):
            self.applier.change(msg)
            self._pending_changes += 1
        elif isinstance(msg, Begin):
            self._in_transaction = True
            self.applier.begin(msg)
        elif isinstance(msg, Commit):
            self.applier.commit(msg)
            self._in_transaction = False
            self._last_commit = msg
            self._acknowledge_committed()
        elif isinstance(msg, Relation):
            self.applier.relation(msg)
        # Origin, Type and logical messages carry nothing to apply.

    def _acknowledge_committed(self) -> None:
        committed = self.applier.committed_lsn
        if committed is not None and committed > self.repl.acknowledged_lsn:
            self.repl.acknowledge(committed)
            self.metrics.applied_lsn = committed
            self.metrics.changes_applied += self._pending_changes
            self._pending_changes = 0
            self.metrics.last_applied_at = datetime.now(UTC)
            if self._last_commit is not None:
                lag = (self.metrics.last_applied_at - self._last_commit.commit_time).total_seconds()
                self.metrics.lag_seconds = max(0.0, lag)

    def _commit_and_ack(self) -> None:
        self.applier.flush_commit()
        self._acknowledge_committed()

    def _on_idle(self) -> None:
        """Nothing arrived: commit a grouped batch, then confirm the server's position."""
        if self._in_transaction:
            return
        self._commit_and_ack()
        wal_end = self.repl.server_wal_end
        now = time.monotonic()
        if now - self._last_idle_confirm < IDLE_CONFIRM_INTERVAL_S:
            return
        self._last_idle_confirm = now
        if wal_end > self.repl.acknowledged_lsn and self.applier.committed_lsn is not None:
            # Everything sent so far is applied, so the slot may move on even though our tables
            # are idle; the target position moves too, so it never trails the slot (row 24).
            self.applier.advance_position(wal_end)
            self.repl.acknowledge(wal_end)
            self.metrics.applied_lsn = wal_end
        self.metrics.lag_seconds = 0.0

    def _publish(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_metrics >= METRICS_INTERVAL_S:
            self._last_metrics = now
            self.on_metrics(self.metrics)


def describe(metrics: StreamMetrics) -> str:
    return f"applied up to {lsn_to_str(metrics.applied_lsn)}, {metrics.changes_applied} changes"
