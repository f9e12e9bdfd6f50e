"""Byte formats and command text of the streaming replication protocol, as pure functions.

Covers the CopyBoth messages of a logical walsender (XLogData 'w', primary keepalive 'k',
standby status update 'r') and the walsender commands cdc-tui sends. Names reaching a command
are validated first, then quoted anyway, so no unvalidated text is ever interpolated.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cdc_tui.errors import UsageError
from cdc_tui.lsn import lsn_to_str

# PostgreSQL timestamps on the wire count microseconds from this instant.
PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)

NAME_RE: Final = re.compile(r"^[a-z0-9_]{1,63}$")
# The first release that accepts `CREATE_REPLICATION_SLOT ... (SNAPSHOT '...')`.
NEW_SLOT_SYNTAX_VERSION: Final = 150000
# pgoutput's protocol versions; 1 is what the decoder in pgoutput.py understands.
PROTO_VERSIONS: Final = range(1, 5)

_XLOGDATA = struct.Struct("!QQq")
_KEEPALIVE = struct.Struct("!Qq?")
_STATUS = struct.Struct("!cQQQqB")
XLOGDATA_TAG: Final = b"w"
XLOGDATA_HEADER_SIZE: Final = _XLOGDATA.size
KEEPALIVE_TAG: Final = b"k"
STATUS_TAG: Final = b"r"


class ProtocolViolation(ValueError):
    """A CopyBoth message that does not have the documented shape."""


@dataclass(slots=True)
class XLogData:
    """One 'w' message: `payload` is one pgoutput message, returned undecoded.

    The send time stays in PostgreSQL's microseconds until asked for: building a datetime for
    every message costs more than the rest of the header on a busy stream.
    """

    data_start: int
    wal_end: int
    send_micros: int
    payload: memoryview | bytes

    @property
    def send_time(self) -> datetime:
        return pg_time_to_datetime(self.send_micros)


@dataclass(frozen=True, slots=True)
class Keepalive:
    """One primary keepalive 'k': the server's WAL end and whether it wants a reply now."""

    wal_end: int
    send_time: datetime
    reply_requested: bool


def pg_time_to_datetime(micros: int) -> datetime:
    """Microseconds since 2000-01-01 UTC to an aware datetime."""
    return PG_EPOCH + timedelta(microseconds=micros)


def datetime_to_pg_time(moment: datetime) -> int:
    """An aware datetime to microseconds since 2000-01-01 UTC."""
    delta = moment - PG_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_copy_message(buf: memoryview | bytes) -> XLogData | Keepalive:
    """Parse one CopyData message sent by a walsender; the payload is a zero-copy slice."""
    view = memoryview(buf)
    tag = bytes(view[:1])
    if tag == XLOGDATA_TAG:
        if len(view) < 1 + _XLOGDATA.size:
            raise ProtocolViolation(f"XLogData message too short ({len(view)} bytes)")
        start, end, sent = _XLOGDATA.unpack_from(view, 1)
        return XLogData(start, end, sent, view[1 + _XLOGDATA.size :])
    if tag == KEEPALIVE_TAG:
        if len(view) != 1 + _KEEPALIVE.size:
            raise ProtocolViolation(f"keepalive message has {len(view)} bytes, expected 18")
        end, sent, reply = _KEEPALIVE.unpack_from(view, 1)
        return Keepalive(end, pg_time_to_datetime(sent), reply)
    raise ProtocolViolation(f"unknown replication message type {tag!r}")


def encode_xlogdata(message: XLogData) -> bytes:
    """The wire form of an XLogData message (the server's side; used by tests and tools)."""
    header = _XLOGDATA.pack(message.data_start, message.wal_end, message.send_micros)
    return XLOGDATA_TAG + header + bytes(message.payload)


def encode_keepalive(message: Keepalive) -> bytes:
    """The wire form of a primary keepalive (the server's side; used by tests and tools)."""
    body = _KEEPALIVE.pack(
        message.wal_end, datetime_to_pg_time(message.send_time), message.reply_requested
    )
    return KEEPALIVE_TAG + body


def encode_standby_status(
    write_lsn: int, flush_lsn: int, apply_lsn: int, client_time: datetime, *, reply: bool
) -> bytes:
    """A standby status update 'r'; `reply=True` asks the server to answer with a keepalive."""
    return _STATUS.pack(
        STATUS_TAG, write_lsn, flush_lsn, apply_lsn, datetime_to_pg_time(client_time), int(reply)
    )


def validate_name(name: str, what: str) -> str:
    """Return `name` if it may name a slot or publication (`[a-z0-9_]{1,63}`), else raise."""
    if not NAME_RE.match(name):
        raise UsageError(
            f"{what} name {name!r} is not allowed; use 1-63 lowercase letters, digits or "
            "underscores."
        )
    return name


def quote_ident(name: str) -> str:
    """A double-quoted identifier, embedded quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A single-quoted string literal, embedded quotes doubled (the walsender has no escapes)."""
    return "'" + text.replace("'", "''") + "'"


def create_slot_command(slot_name: str, *, server_version: int, export_snapshot: bool) -> bytes:
    """`CREATE_REPLICATION_SLOT` for pgoutput in the syntax this server version accepts."""
    slot = quote_ident(validate_name(slot_name, "Replication slot"))
    if server_version >= NEW_SLOT_SYNTAX_VERSION:
        mode = "export" if export_snapshot else "nothing"
        return f"CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput (SNAPSHOT '{mode}')".encode()
    keyword = "EXPORT_SNAPSHOT" if export_snapshot else "NOEXPORT_SNAPSHOT"
    return f"CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput {keyword}".encode()


def drop_slot_command(slot_name: str, *, wait: bool) -> bytes:
    """`DROP_REPLICATION_SLOT`; with WAIT the server waits for the slot to become inactive."""
    slot = quote_ident(validate_name(slot_name, "Replication slot"))
    return f"DROP_REPLICATION_SLOT {slot}{' WAIT' if wait else ''}".encode()


def start_replication_command(
    slot_name: str,
    start_lsn: int,
    *,
    publication_names: Sequence[str],
    proto_version: int = 1,
    messages: bool = False,
) -> bytes:
    """`START_REPLICATION SLOT ... LOGICAL X/Y (...)` with pgoutput's options."""
    slot = quote_ident(validate_name(slot_name, "Replication slot"))
    if isinstance(publication_names, str) or not publication_names:
        raise UsageError("START_REPLICATION needs a list of at least one publication name.")
    if proto_version not in PROTO_VERSIONS:
        raise UsageError(f"pgoutput proto_version {proto_version} is not 1 to 4.")
    if not 0 <= start_lsn < 1 << 64:
        raise UsageError(f"{start_lsn} is not an LSN.")
    # pgoutput splits this value as a comma-separated list of (quoted) identifiers.
    names = ",".join(quote_ident(validate_name(p, "Publication")) for p in publication_names)
    options = [
        f"proto_version {quote_literal(str(proto_version))}",
        f"publication_names {quote_literal(names)}",
    ]
    if messages:
        options.append("messages 'true'")
    lsn = lsn_to_str(start_lsn)
    return f"START_REPLICATION SLOT {slot} LOGICAL {lsn} ({', '.join(options)})".encode()
