"""The replication connection: slot creation with an exported snapshot, streaming, feedback.

psycopg has no replication API, so this drives libpq through `conn.pgconn`: walsender commands
need the simple query protocol, and streaming is a CopyBoth exchange read without blocking and
waited on with `select()`, so every call honours its timeout.

One thread owns a ReplicationConnection; it is not safe to share.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Self

import psycopg
from psycopg import pq
from psycopg.pq.abc import PGresult

from cdc_tui.engines.embedded.replication_errors import (
    ReplicationConnectionLost,
    ReplicationError,
    SlotExistsError,
    SlotInUseError,
    SlotInvalidatedError,
    SlotMissingError,
    connect_failure,
    is_lost_snapshot_error,
)
from cdc_tui.engines.embedded.replication_protocol import (
    XLOGDATA_HEADER_SIZE,
    XLOGDATA_TAG,
    Keepalive,
    ProtocolViolation,
    XLogData,
    create_slot_command,
    drop_slot_command,
    encode_standby_status,
    parse_copy_message,
    start_replication_command,
)
from cdc_tui.engines.embedded.replication_wire import COMMAND_TIMEOUT_S, Wire
from cdc_tui.lsn import lsn_to_int, lsn_to_str
from cdc_tui.pgconn import PgParams
from cdc_tui.pgerrors import conninfo_password, describe_endpoint, short_reason

__all__ = [
    "CreatedSlot",
    "ReplicationConnection",
    "ReplicationConnectionLost",
    "ReplicationError",
    "SlotExistsError",
    "SlotInUseError",
    "SlotInvalidatedError",
    "SlotMissingError",
    "XLogData",
    "is_lost_snapshot_error",
]

log = logging.getLogger(__name__)

# Fixed text output settings, so pgoutput prints timestamptz, floats and dates exactly and stably.
SESSION_OPTIONS: Final = (
    "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3 -c timezone=UTC "
    "-c client_encoding=UTF8"
)
# An XLogData message: its tag byte, then a 24-byte header before the pgoutput payload.
_XLOGDATA_BYTE: Final = XLOGDATA_TAG[0]
_XLOGDATA_HEADER: Final = 1 + XLOGDATA_HEADER_SIZE
# Well under the default wal_sender_timeout (60 s), which kills a silent client.
DEFAULT_STATUS_INTERVAL_S: Final = 10.0


@dataclass(frozen=True)
class CreatedSlot:
    """What CREATE_REPLICATION_SLOT returned; `consistent_point` is the full-load LSN."""

    slot_name: str
    consistent_point: int
    snapshot_name: str | None
    output_plugin: str


class ReplicationConnection:
    """A `replication=database` walsender session: create/drop slots, then stream one slot."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        status_interval_s: float = DEFAULT_STATUS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._wire = Wire(conn.pgconn, clock)
        self._status_interval_s = status_interval_s
        self._clock = clock
        self._slot: str | None = None
        self._streaming = False
        self._acknowledged = 0
        self._server_wal_end = 0
        self._last_status_at = float("-inf")

    @classmethod
    def open(
        cls,
        params: PgParams,
        *,
        application_name: str,
        options: str = SESSION_OPTIONS,
        status_interval_s: float = DEFAULT_STATUS_INTERVAL_S,
    ) -> Self:
        """Open a walsender session on the source database `params` points to.

        Raises:
            ReplicationError: bad credentials, no REPLICATION privilege, unknown database.
            ReplicationConnectionLost: the server is unreachable or out of wal senders (retry).
        """
        kwargs = params.connect_kwargs()
        kwargs.update(application_name=application_name, replication="database", options=options)
        try:
            conn = psycopg.connect(params.url, autocommit=True, **kwargs)
        except psycopg.Error as e:
            where, _user = describe_endpoint(params)
            reason = short_reason(e, [params.password, conninfo_password(params.url)])
            raise connect_failure(where, reason) from e
        return cls(conn, status_interval_s=status_interval_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._conn.closed

    @property
    def streaming(self) -> bool:
        return self._streaming

    @property
    def acknowledged_lsn(self) -> int:
        """The highest position the caller has acknowledged as durably applied."""
        return self._acknowledged

    @property
    def server_wal_end(self) -> int:
        """The WAL position the server last reported in a keepalive (0 before the first one)."""
        return self._server_wal_end

    # Commands (before streaming).

    def server_version_num(self) -> int:
        """The server's version as an int (150004); no round trip, so a snapshot stays valid."""
        return int(self._conn.pgconn.server_version)

    def identify_system(self) -> tuple[str, int, int, str | None]:
        """IDENTIFY_SYSTEM: (systemid, timeline, current WAL position, database name)."""
        result = self._command(
            b"IDENTIFY_SYSTEM",
            doing="identifying the system",
            slot=None,
            timeout_s=COMMAND_TIMEOUT_S,
        )
        systemid, timeline, xlogpos, dbname = (_text(result, i) for i in range(4))
        return str(systemid), int(str(timeline)), lsn_to_int(str(xlogpos)), dbname

    def create_slot(
        self, slot_name: str, *, export_snapshot: bool, timeout_s: float | None = None
    ) -> CreatedSlot:
        """Create a logical pgoutput slot, optionally exporting its snapshot.

        The exported snapshot stays importable only while this connection is open and idle: keep
        this object open, and issue nothing else on it (no command, no `start`), until every
        full-load worker has run `SET TRANSACTION SNAPSHOT`. The server waits for transactions
        running at creation to finish; `timeout_s` bounds that wait (None waits forever).

        Raises:
            SlotExistsError: a slot of that name already exists.
            ReplicationError: any other refusal, or the timeout expired (the command is cancelled).
        """
        command = create_slot_command(
            slot_name, server_version=self.server_version_num(), export_snapshot=export_snapshot
        )
        result = self._command(
            command,
            doing=f'creating replication slot "{slot_name}"',
            slot=slot_name,
            timeout_s=timeout_s,
        )
        name, point, snapshot, plugin = (_text(result, i) for i in range(4))
        log.info("created replication slot %s at %s", name, point)
        return CreatedSlot(str(name), lsn_to_int(str(point)), snapshot, str(plugin))

    def drop_slot(
        self,
        slot_name: str,
        *,
        wait: bool = True,
        missing_ok: bool = False,
        timeout_s: float | None = COMMAND_TIMEOUT_S,
    ) -> None:
        """Drop a slot; with `wait` the server first waits for its walsender to let go.

        Raises:
            SlotMissingError: no such slot, unless `missing_ok`.
            SlotInUseError: `wait=False` and the slot is active.
        """
        command = drop_slot_command(slot_name, wait=wait)
        try:
            self._command(
                command,
                doing=f'dropping replication slot "{slot_name}"',
                slot=slot_name,
                timeout_s=timeout_s,
            )
        except SlotMissingError:
            if not missing_ok:
                raise
        else:
            log.info("dropped replication slot %s", slot_name)

    # Streaming.

    def start(
        self,
        slot_name: str,
        start_lsn: int,
        *,
        publication_names: Sequence[str],
        proto_version: int = 1,
        messages: bool = False,
    ) -> None:
        """Start streaming `slot_name` from `start_lsn` (the caller's durable position).

        The server sends every transaction committed after max(start_lsn, the slot's
        confirmed_flush_lsn), so a restart from the acknowledged LSN repeats what was not
        acknowledged (at-least-once). It silently skips ahead if the slot is past `start_lsn`:
        compare the two first (pg_replication_slots) and fail loudly on a gap.

        Raises:
            SlotMissingError, SlotInvalidatedError: resync required.
            SlotInUseError, ReplicationConnectionLost: retriable.
            ReplicationError: any other refusal (unknown publication, privileges).
        """
        command = start_replication_command(
            slot_name,
            start_lsn,
            publication_names=publication_names,
            proto_version=proto_version,
            messages=messages,
        )
        doing = f'starting replication from slot "{slot_name}"'
        result = self._command(command, doing=doing, slot=slot_name, timeout_s=COMMAND_TIMEOUT_S)
        if result.status != pq.ExecStatus.COPY_BOTH:
            raise ReplicationError(f"The source did not start streaming while {doing}.")
        self._slot = slot_name
        self._streaming = True
        self._acknowledged = max(self._acknowledged, start_lsn)
        log.info("streaming slot %s from %s", slot_name, lsn_to_str(start_lsn))

    def read(self, timeout_s: float) -> XLogData | None:
        """The next XLogData, or None when none arrives within `timeout_s`.

        Keepalives are handled here: `server_wal_end` is updated and a requested reply is sent
        at once; a status update also goes out every `status_interval_s`. Take positions from
        the decoded Begin/Commit: the header LSNs are 0 on some messages (Relation, Type).

        Raises:
            ReplicationConnectionLost: the stream ended or the connection broke (retriable).
            SlotInvalidatedError, ReplicationError: the server ended the stream with an error.
        """
        deadline = self._clock() + max(timeout_s, 0.0)
        doing = f'streaming slot "{self._slot}"'
        consumed = False
        with self._stream_io():
            while True:
                message = self._poll_message(doing)
                if isinstance(message, XLogData):
                    self.maybe_send_status()
                    return message
                if isinstance(message, Keepalive):
                    self._on_keepalive(message)
                    continue
                self.maybe_send_status()
                now = self._clock()
                if now >= deadline:
                    if not consumed:
                        # Take what already sits in the socket before saying nothing is there.
                        consumed = True
                        self._wire.consume_input(doing=doing)
                        continue
                    return None
                next_status = self._last_status_at + self._status_interval_s
                self._wire.wait_readable(min(deadline, next_status) - now, doing=doing)
                self._wire.consume_input(doing=doing)

    def read_payloads(self, timeout_s: float, limit: int = 1024) -> list[bytes]:
        """The pgoutput payloads of the XLogData messages that have arrived, in stream order.

        Returns at once with every message libpq already holds (up to `limit`), else waits up to
        `timeout_s` for the first to arrive; empty when none did. This is `read()` without a
        message object or a clock call per message: on a busy stream that overhead rivals
        decoding. Keepalives and status updates are handled as in `read()`.

        Raises:
            ReplicationConnectionLost, SlotInvalidatedError, ReplicationError: as `read()`.
        """
        deadline = self._clock() + max(timeout_s, 0.0)
        doing = f'streaming slot "{self._slot}"'
        payloads: list[bytes] = []
        consumed = False
        with self._stream_io():
            get_copy = self._wire.get_copy
            while True:
                data = get_copy(doing=doing, slot=self._slot)
                if data is not None:
                    if data[0] == _XLOGDATA_BYTE and len(data) >= _XLOGDATA_HEADER:
                        payloads.append(bytes(data[_XLOGDATA_HEADER:]))
                        if len(payloads) < limit:
                            continue
                        break
                    message = self._parse(data, doing)
                    if isinstance(message, Keepalive):
                        self._on_keepalive(message)
                    continue
                if payloads:
                    break
                now = self._clock()
                if now >= deadline:
                    if not consumed:
                        consumed = True
                        self._wire.consume_input(doing=doing)
                        continue
                    break
                next_status = self._last_status_at + self._status_interval_s
                self._wire.wait_readable(min(deadline, next_status) - now, doing=doing)
                self._wire.consume_input(doing=doing)
                self.maybe_send_status()
        self.maybe_send_status()
        return payloads

    def acknowledge(self, flush_lsn: int) -> None:
        """Record `flush_lsn` as durably applied and tell the server; never moves backwards.

        The slot's confirmed_flush_lsn advances only from this. Acknowledge a Commit's end LSN
        once the target transaction holding it has committed.
        """
        if flush_lsn <= self._acknowledged:
            return
        self._acknowledged = flush_lsn
        if self._streaming:
            self.send_status()

    def maybe_send_status(self) -> bool:
        """Send a status update if `status_interval_s` has passed; call it from long loops."""
        if not self._streaming:
            return False
        if self._clock() - self._last_status_at < self._status_interval_s:
            return False
        self.send_status()
        return True

    def send_status(self, *, request_reply: bool = False) -> None:
        """Send a standby status update now (write = flush = apply = acknowledged position).

        `request_reply=True` asks the server to answer with a keepalive, which refreshes
        `server_wal_end` on the next `read`.
        """
        ack = self._acknowledged
        message = encode_standby_status(ack, ack, ack, datetime.now(UTC), reply=request_reply)
        with self._stream_io():
            self._wire.put_copy(message, doing=f'acknowledging slot "{self._slot}"')
        self._last_status_at = self._clock()

    def close(self) -> None:
        """End COPY politely if streaming, then close the connection; safe to call twice."""
        if self._conn.closed:
            return
        try:
            if self._streaming and self._wire.ok:
                self._wire.end_copy()
        except (psycopg.Error, ReplicationError) as e:
            log.debug("ending the replication stream politely failed: %s", e)
        finally:
            self._streaming = False
            self._conn.close()

    # Internals.

    def _command(
        self, command: bytes, *, doing: str, slot: str | None, timeout_s: float | None
    ) -> PGresult:
        if self._streaming:
            raise ReplicationError(f"Cannot run a command while {doing}: the connection streams.")
        return self._wire.command(command, doing=doing, slot=slot, timeout_s=timeout_s)

    def _poll_message(self, doing: str) -> XLogData | Keepalive | None:
        data = self._wire.get_copy(doing=doing, slot=self._slot)
        if data is None:
            return None
        return self._parse(data, doing)

    def _parse(self, data: memoryview, doing: str) -> XLogData | Keepalive:
        try:
            return parse_copy_message(data)
        except ProtocolViolation as e:
            raise ReplicationError(
                f"The source sent a malformed message while {doing} ({e}); restart the pipeline."
            ) from e

    def _on_keepalive(self, message: Keepalive) -> None:
        self._server_wal_end = max(self._server_wal_end, message.wal_end)
        if message.reply_requested:
            self.send_status()

    @contextmanager
    def _stream_io(self) -> Iterator[None]:
        """Guard streaming I/O: a failure ends the stream, so later calls fail fast."""
        if not self._streaming:
            raise ReplicationError("The replication connection is not streaming; call start().")
        try:
            yield
        except ReplicationError:
            self._streaming = False
            raise


def _text(result: PGresult, column: int) -> str | None:
    value = result.get_value(0, column)
    return None if value is None else value.decode()
