"""libpq driven by hand for a walsender session: simple-protocol commands and CopyBoth I/O.

psycopg opens connections in nonblocking mode, so every send is flushed in a loop and every wait
is a `select()` with a deadline: no call here can hang on a dead network. libpq-level failures
become ReplicationConnectionLost; server errors are classified by replication_errors.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable
from typing import Final

import psycopg
from psycopg import pq
from psycopg.pq.abc import PGconn, PGresult

from cdc_tui.engines.embedded.replication_errors import (
    ReplicationConnectionLost,
    ReplicationError,
    connection_lost,
    result_failure,
)

log = logging.getLogger(__name__)

# Ordinary walsender commands answer at once; a stuck one means a broken network.
COMMAND_TIMEOUT_S: Final = 60.0
SEND_TIMEOUT_S: Final = 30.0
# How long a closing or failed stream may take to say goodbye before we hang up.
GOODBYE_TIMEOUT_S: Final = 2.0


class Wire:
    """One libpq connection in walsender mode; the owner keeps protocol state."""

    def __init__(self, pgconn: PGconn, clock: Callable[[], float] = time.monotonic) -> None:
        self.pgconn = pgconn
        self.clock = clock

    @property
    def ok(self) -> bool:
        return self.pgconn.status == pq.ConnStatus.OK

    def command(
        self, command: bytes, *, doing: str, slot: str | None, timeout_s: float | None
    ) -> PGresult:
        """Run one command and return its result; a timeout cancels it on the server.

        Raises:
            ReplicationError (or a subclass): the server refused it or it timed out.
            ReplicationConnectionLost: the connection broke.
        """
        self.send_query(command, doing=doing)
        deadline = float("inf") if timeout_s is None else self.clock() + timeout_s
        try:
            first = self.next_result(deadline, doing=doing)
        except TimeoutError:
            self._cancel(doing)
            raise ReplicationError(
                f"Timed out after {timeout_s:g} s while {doing}; a long-running transaction on "
                "the source may be holding it up, so find it in pg_stat_activity and retry."
            ) from None
        self.drain_results()
        if first is None:
            raise ReplicationError(f"The source returned nothing while {doing}.")
        if first.status == pq.ExecStatus.FATAL_ERROR:
            raise result_failure(first, doing=doing, slot=slot)
        return first

    def send_query(self, command: bytes, *, doing: str) -> None:
        """Send a simple-protocol query (walsender commands accept nothing else)."""
        if not self.ok:
            raise ReplicationConnectionLost(f"The replication connection is closed ({doing}).")
        try:
            self.pgconn.send_query(command)
        except psycopg.OperationalError as e:
            raise connection_lost(e, doing=doing) from e
        self.flush(doing=doing)

    def next_result(self, deadline: float, *, doing: str) -> PGresult | None:
        """The next result, or None after the last; raises TimeoutError at the deadline."""
        while True:
            try:
                self.pgconn.consume_input()
                if not self.pgconn.is_busy():
                    return self.pgconn.get_result()
            except psycopg.OperationalError as e:
                raise connection_lost(e, doing=doing) from e
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise TimeoutError(doing)
            self.wait_readable(remaining, doing=doing)

    def drain_results(self) -> None:
        """Read the results after the first so the connection is idle again."""
        deadline = self.clock() + COMMAND_TIMEOUT_S
        while (result := self.next_result(deadline, doing="finishing a command")) is not None:
            if result.status in (pq.ExecStatus.COPY_BOTH, pq.ExecStatus.COPY_OUT):
                return

    def _cancel(self, doing: str) -> None:
        try:
            self.pgconn.get_cancel().cancel()
            self.drain_results()
        except (psycopg.Error, ReplicationError, TimeoutError) as e:
            log.warning("cancelling %s failed, closing the connection: %s", doing, e)
            self.pgconn.finish()

    def get_copy(self, *, doing: str, slot: str | None = None) -> memoryview | None:
        """One CopyData message if a whole one has arrived, else None; never blocks.

        Raises:
            ReplicationError: the server left COPY mode; its error result says why, if any.
        """
        try:
            nbytes, data = self.pgconn.get_copy_data(1)
        except psycopg.OperationalError as e:
            raise connection_lost(e, doing=doing) from e
        if nbytes == -1:
            raise self._copy_ended(doing, slot)
        return data if nbytes > 0 else None

    def _copy_ended(self, doing: str, slot: str | None) -> ReplicationError:
        error: ReplicationError | None = None
        try:
            deadline = self.clock() + GOODBYE_TIMEOUT_S
            while (result := self.next_result(deadline, doing=doing)) is not None:
                if result.status == pq.ExecStatus.FATAL_ERROR and error is None:
                    error = result_failure(result, doing=doing, slot=slot)
        except (ReplicationError, TimeoutError) as e:
            log.debug("reading why the stream ended failed: %s", e)
        return error or ReplicationConnectionLost(
            f"The source ended the replication stream while {doing}."
        )

    def put_copy(self, message: bytes, *, doing: str) -> None:
        """Send one CopyData message and flush it."""
        try:
            while not self.pgconn.put_copy_data(message):
                self.flush(doing=doing)
        except psycopg.OperationalError as e:
            raise connection_lost(e, doing=doing) from e
        self.flush(doing=doing)

    def end_copy(self) -> None:
        """Send CopyDone and skip what the server still sends until it ends COPY too."""
        doing = "ending the replication stream"
        try:
            self.pgconn.put_copy_end()
        except psycopg.OperationalError as e:
            raise connection_lost(e, doing=doing) from e
        self.flush(doing=doing)
        deadline = self.clock() + GOODBYE_TIMEOUT_S
        while self.clock() < deadline:
            try:
                if self.get_copy(doing=doing) is None:
                    self.wait_readable(deadline - self.clock(), doing=doing)
                    self.consume_input(doing=doing)
            except ReplicationError as e:
                log.debug("replication stream closed: %s", e)
                return
        # A walsender in the middle of a large transaction only stops at its end: hang up.
        log.debug("the source did not end the stream within %s s; hanging up", GOODBYE_TIMEOUT_S)

    def flush(self, *, doing: str) -> None:
        """Push libpq's output buffer to the socket; nonblocking mode may need several tries."""
        deadline = self.clock() + SEND_TIMEOUT_S
        try:
            while self.pgconn.flush():
                remaining = deadline - self.clock()
                if remaining <= 0:
                    raise ReplicationConnectionLost(f"Sending timed out while {doing}.")
                sock = self.pgconn.socket
                readable, _w, _x = select.select([sock], [sock], [], remaining)
                if readable:
                    self.pgconn.consume_input()
        except (psycopg.OperationalError, OSError, ValueError) as e:
            raise connection_lost(e, doing=doing) from e

    def wait_readable(self, timeout_s: float, *, doing: str) -> None:
        """Wait until the socket has data or `timeout_s` passes (inf waits forever)."""
        if timeout_s <= 0:
            return
        wait = None if timeout_s == float("inf") else timeout_s
        try:
            select.select([self.pgconn.socket], [], [], wait)
        except (psycopg.OperationalError, OSError, ValueError) as e:
            raise connection_lost(e, doing=doing) from e

    def consume_input(self, *, doing: str) -> None:
        """Move what arrived on the socket into libpq's buffer."""
        try:
            self.pgconn.consume_input()
        except psycopg.OperationalError as e:
            raise connection_lost(e, doing=doing) from e
