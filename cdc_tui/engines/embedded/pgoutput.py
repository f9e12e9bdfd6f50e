"""Decoder for pgoutput protocol version 1 messages (text tuple format).

One call decodes the payload of one XLogData message, or one `data` row of
`pg_logical_slot_get_binary_changes(..., 'proto_version', '1', ...)`, into a dataclass from
`messages`. Integers are network byte order; strings are NUL-terminated in the server encoding;
timestamps are microseconds since 2000-01-01 UTC.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from cdc_tui.engines.embedded.messages import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Message,
    Origin,
    Relation,
    RelationColumn,
    Row,
    Truncate,
    TypeInfo,
    Update,
    Value,
)
from cdc_tui.errors import OperationError

__all__ = ["PgoutputError", "decode"]

_BEGIN: Final = struct.Struct("!QqI")  # final LSN, commit time, xid
_COMMIT: Final = struct.Struct("!BQQq")  # flags, commit LSN, end LSN, commit time
_LSN: Final = struct.Struct("!Q")
_U32: Final = struct.Struct("!I")
_U16: Final = struct.Struct("!H")
_U32_B: Final = struct.Struct("!IB")  # Insert: relation id, tuple marker
_B_U16: Final = struct.Struct("!BH")  # Relation: replica identity, column count
_B_LSN: Final = struct.Struct("!BQ")  # Message: flags, LSN
_COLUMN_TAIL: Final = struct.Struct("!Ii")  # Relation column: type OID, type modifier

# Tuple column kinds and the markers that introduce a tuple, as the ints bytes indexing yields.
_TEXT: Final = ord("t")
_NULL: Final = ord("n")
_TOAST: Final = ord("u")
_BINARY: Final = ord("b")
_NEW: Final = ord("N")
_KEY: Final = ord("K")
_OLD: Final = ord("O")

# Commit times (microseconds since 2000-01-01 UTC) that fit a datetime: years 1 to 9999.
_MIN_MICROS: Final = -63_082_281_600_000_000
_MAX_MICROS: Final = 252_455_615_999_999_999

_TRUNCATE_CASCADE: Final = 1
_TRUNCATE_RESTART_IDENTITY: Final = 2
_MESSAGE_TRANSACTIONAL: Final = 1

_NAMES: Final = {
    ord("B"): "Begin",
    ord("C"): "Commit",
    ord("O"): "Origin",
    ord("R"): "Relation",
    ord("Y"): "Type",
    ord("I"): "Insert",
    ord("U"): "Update",
    ord("D"): "Delete",
    ord("T"): "Truncate",
    ord("M"): "Message",
}


class PgoutputError(OperationError):
    """A pgoutput message could not be decoded: unknown type, truncated or malformed."""

    default_title = "Replication stream error"


class _Malformed(Exception):
    """Internal: a structural check failed; `decode` turns it into a PgoutputError."""


def _check_time(micros: int) -> None:
    """Refuse a commit time a datetime cannot hold, here rather than when it is first read."""
    if not _MIN_MICROS <= micros <= _MAX_MICROS:
        raise _Malformed(f"commit time {micros} is out of range")


def _string(buf: bytes, pos: int, encoding: str) -> tuple[str, int]:
    end = buf.index(b"\0", pos)
    return buf[pos:end].decode(encoding), end + 1


def _tuple(buf: bytes, pos: int, encoding: str) -> tuple[Row, int]:
    """Decode a TupleData at `pos`; return the row and the position after it."""
    (ncols,) = _U16.unpack_from(buf, pos)
    pos += 2
    # An all-ASCII message (the common case, in every server encoding) is decoded once and
    # sliced at the same offsets: a str slice per column costs less than a slice and a decode.
    text = buf.decode("ascii") if buf.isascii() else None
    unpack_len = _U32.unpack_from
    values: list[Value] = []
    append = values.append
    for index in range(ncols):
        kind = buf[pos]
        if kind == _TEXT:
            start = pos + 5
            # A length running past the end leaves pos > len(buf), which the next read or
            # decode()'s final length check rejects, so no per-column bounds check is needed.
            pos = start + unpack_len(buf, pos + 1)[0]
            append(text[start:pos] if text is not None else buf[start:pos].decode(encoding))
            continue
        pos += 1
        if kind == _NULL:
            append(None)
        elif kind == _TOAST:
            append(UNCHANGED)
        elif kind == _BINARY:
            raise PgoutputError(
                f"pgoutput sent column {index + 1} in binary format; cdc-tui reads only the text "
                "format, so start the stream without the 'binary' option."
            )
        else:
            raise _Malformed(f"column {index + 1} has unknown kind {kind:#04x}")
    return tuple(values), pos


def _marker(buf: bytes, pos: int, allowed: tuple[int, ...]) -> int:
    kind = buf[pos]
    if kind not in allowed:
        wanted = " or ".join(repr(chr(a)) for a in allowed)
        raise _Malformed(f"expected tuple marker {wanted}, got {kind:#04x}")
    return kind


def _begin(buf: bytes, encoding: str) -> tuple[Message, int]:
    final_lsn, micros, xid = _BEGIN.unpack_from(buf, 1)
    _check_time(micros)
    return Begin(final_lsn, micros, xid), 1 + _BEGIN.size


def _commit(buf: bytes, encoding: str) -> tuple[Message, int]:
    flags, commit_lsn, end_lsn, micros = _COMMIT.unpack_from(buf, 1)
    _check_time(micros)
    return Commit(flags, commit_lsn, end_lsn, micros), 1 + _COMMIT.size


def _origin(buf: bytes, encoding: str) -> tuple[Message, int]:
    (lsn,) = _LSN.unpack_from(buf, 1)
    name, pos = _string(buf, 9, encoding)
    return Origin(lsn, name), pos


def _relation(buf: bytes, encoding: str) -> tuple[Message, int]:
    (relation_id,) = _U32.unpack_from(buf, 1)
    namespace, pos = _string(buf, 5, encoding)
    name, pos = _string(buf, pos, encoding)
    identity, ncols = _B_U16.unpack_from(buf, pos)
    pos += 3
    columns = []
    for _ in range(ncols):
        flags = buf[pos]
        column, pos = _string(buf, pos + 1, encoding)
        type_oid, type_modifier = _COLUMN_TAIL.unpack_from(buf, pos)
        pos += 8
        columns.append(RelationColumn(flags, column, type_oid, type_modifier))
    return Relation(relation_id, namespace, name, chr(identity), tuple(columns)), pos


def _type(buf: bytes, encoding: str) -> tuple[Message, int]:
    (type_oid,) = _U32.unpack_from(buf, 1)
    namespace, pos = _string(buf, 5, encoding)
    name, pos = _string(buf, pos, encoding)
    return TypeInfo(type_oid, namespace, name), pos


def _insert(buf: bytes, encoding: str) -> tuple[Message, int]:
    relation_id, kind = _U32_B.unpack_from(buf, 1)
    if kind != _NEW:
        raise _Malformed(f"expected tuple marker 'N', got {kind:#04x}")
    new, pos = _tuple(buf, 6, encoding)
    return Insert(relation_id, new), pos


def _update(buf: bytes, encoding: str) -> tuple[Message, int]:
    (relation_id,) = _U32.unpack_from(buf, 1)
    kind = _marker(buf, 5, (_KEY, _OLD, _NEW))
    old: Row | None = None
    old_kind: str | None = None
    pos = 6
    if kind != _NEW:
        old_kind = chr(kind)
        old, pos = _tuple(buf, pos, encoding)
        _marker(buf, pos, (_NEW,))
        pos += 1
    new, pos = _tuple(buf, pos, encoding)
    return Update(relation_id, old, old_kind, new), pos


def _delete(buf: bytes, encoding: str) -> tuple[Message, int]:
    (relation_id,) = _U32.unpack_from(buf, 1)
    kind = _marker(buf, 5, (_KEY, _OLD))
    old, pos = _tuple(buf, 6, encoding)
    return Delete(relation_id, old, chr(kind)), pos


def _truncate(buf: bytes, encoding: str) -> tuple[Message, int]:
    (count,) = _U32.unpack_from(buf, 1)
    options = buf[5]
    end = 6 + 4 * count
    # Checked before unpacking so a garbage count cannot build a huge format string.
    if end > len(buf):
        raise _Malformed(f"{count} relation ids do not fit in {len(buf)} bytes")
    relation_ids = struct.unpack_from(f"!{count}I", buf, 6)
    return Truncate(
        relation_ids,
        cascade=bool(options & _TRUNCATE_CASCADE),
        restart_identity=bool(options & _TRUNCATE_RESTART_IDENTITY),
    ), end


def _message(buf: bytes, encoding: str) -> tuple[Message, int]:
    flags, lsn = _B_LSN.unpack_from(buf, 1)
    prefix, pos = _string(buf, 10, encoding)
    (length,) = _U32.unpack_from(buf, pos)
    start = pos + 4
    end = start + length
    if end > len(buf):
        raise _Malformed("content runs past the end")
    content = buf[start:end]
    return LogicalMessage(bool(flags & _MESSAGE_TRANSACTIONAL), lsn, prefix, content), end


_DECODERS: Final[dict[int, Callable[[bytes, str], tuple[Message, int]]]] = {
    ord("B"): _begin,
    ord("C"): _commit,
    ord("O"): _origin,
    ord("R"): _relation,
    ord("Y"): _type,
    ord("I"): _insert,
    ord("U"): _update,
    ord("D"): _delete,
    ord("T"): _truncate,
    ord("M"): _message,
}


def decode(payload: bytes | memoryview, *, encoding: str = "utf-8") -> Message:
    """Decode one pgoutput protocol-version-1 message.

    Args:
        payload: the whole message, starting with its type byte.
        encoding: the Python codec of the source database's server encoding.

    Returns:
        The decoded message; tuple columns are `str`, `None` (NULL) or `UNCHANGED`.

    Raises:
        PgoutputError: the type byte is unknown, a column is in binary format, or the message is
            truncated, malformed or has trailing bytes.
    """
    # bytes slices and indexing beat memoryview's per-slice objects for short column values.
    buf = payload if type(payload) is bytes else bytes(payload)
    if not buf:
        raise PgoutputError(
            "Received an empty pgoutput message; the replication stream is corrupt, so restart "
            "the pipeline."
        )
    decoder = _DECODERS.get(buf[0])
    if decoder is None:
        raise PgoutputError(
            f"Unknown pgoutput message type {buf[0]:#04x} ({chr(buf[0])!r}); cdc-tui reads "
            "protocol version 1 only, so check the slot is read with proto_version '1'."
        )
    try:
        message, end = decoder(buf, encoding)
    except (_Malformed, struct.error, IndexError, ValueError, OverflowError) as exc:
        raise _broken(buf, str(exc)) from exc
    if end != len(buf):
        raise _broken(buf, f"{len(buf) - end} unexpected trailing bytes")
    return message


def _broken(buf: bytes, detail: str) -> PgoutputError:
    name = _NAMES[buf[0]]
    return PgoutputError(
        f"pgoutput {name} message of {len(buf)} bytes is truncated or malformed ({detail}); "
        "the replication stream is corrupt, so restart the pipeline and report it if it recurs."
    )
