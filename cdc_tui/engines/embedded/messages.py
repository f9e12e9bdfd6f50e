"""The decoded pgoutput messages (protocol version 1, text tuple format).

The per-change messages are plain (not frozen) slotted dataclasses: a frozen one costs three
times as much to build, and every change builds one. Treat them as read-only all the same.

Column values are `str` (the type's text output, exactly as PostgreSQL printed it), `None` for SQL
NULL, or `UNCHANGED` for an unchanged TOASTed value that pgoutput did not send (`u`): the target
must keep its current value for that column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Final

from cdc_tui.engines.embedded.replication_protocol import pg_time_to_datetime


class Unchanged(Enum):
    UNCHANGED = "unchanged-toast"

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged.UNCHANGED

Value = str | None | Unchanged
Row = tuple[Value, ...]

# Flag bit of a Relation column that is part of the replica identity key.
KEY_COLUMN_FLAG: Final = 1


@dataclass(slots=True)
class Begin:
    """`commit_micros` stays in PostgreSQL's microseconds: most are never read as a datetime,
    and building one per transaction shows on a busy stream."""

    final_lsn: int
    commit_micros: int
    xid: int

    @property
    def commit_time(self) -> datetime:
        return pg_time_to_datetime(self.commit_micros)


@dataclass(slots=True)
class Commit:
    """`end_lsn` is the position to acknowledge once the transaction is applied."""

    flags: int
    commit_lsn: int
    end_lsn: int
    commit_micros: int

    @property
    def commit_time(self) -> datetime:
        return pg_time_to_datetime(self.commit_micros)


@dataclass(frozen=True, slots=True)
class Origin:
    lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class RelationColumn:
    flags: int
    name: str
    type_oid: int
    type_modifier: int

    @property
    def is_key(self) -> bool:
        return bool(self.flags & KEY_COLUMN_FLAG)


@dataclass(frozen=True, slots=True)
class Relation:
    """Sent before a table's first change in a session, after its schema changes, and again
    before every TRUNCATE of it: a re-sent Relation alone does not mean the schema changed."""

    relation_id: int
    namespace: str
    name: str
    replica_identity: str
    columns: tuple[RelationColumn, ...]


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """pgoutput's Type message: the name of a non-built-in type used by a following Relation."""

    type_oid: int
    namespace: str
    name: str


@dataclass(slots=True)
class Insert:
    relation_id: int
    new: Row


@dataclass(slots=True)
class Update:
    """`old` is set when the key changed ('K': key columns only) or, on every update, for
    REPLICA IDENTITY FULL ('O': the whole old row); otherwise None and the key is in `new`."""

    relation_id: int
    old: Row | None
    old_kind: str | None
    new: Row


@dataclass(slots=True)
class Delete:
    """`old` holds the key columns ('K') or the whole old row ('O', REPLICA IDENTITY FULL);
    non-key positions of a 'K' tuple are None."""

    relation_id: int
    old: Row
    old_kind: str


@dataclass(frozen=True, slots=True)
class Truncate:
    relation_ids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    """pg_logical_emit_message() output; only sent when the `messages` option is on (ignored)."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = (
    Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate
    | LogicalMessage
)  # fmt: skip
Change = Insert | Update | Delete | Truncate
