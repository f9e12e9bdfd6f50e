"""pgoutput v1 decoder on hand-built messages: every message type, every column kind, bad input."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime, timedelta

import pytest

from cdc_tui.engines.embedded.messages import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Origin,
    Relation,
    RelationColumn,
    Truncate,
    TypeInfo,
    Update,
    Value,
)
from cdc_tui.engines.embedded.pgoutput import PgoutputError, decode
from cdc_tui.engines.embedded.replication_protocol import datetime_to_pg_time
from cdc_tui.errors import OperationError

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
MAX_LSN = 0xFFFF_FFFF_FFFF_FFFF
UNICORN = "🦄"


# Builders write the wire format independently of the decoder, straight from the protocol docs.
def cstr(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding) + b"\0"


def tuple_data(*values: Value | bytes) -> bytes:
    out = struct.pack("!H", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is UNCHANGED:
            out += b"u"
        elif isinstance(value, bytes):
            out += b"t" + struct.pack("!I", len(value)) + value
        else:
            assert isinstance(value, str)
            raw = value.encode()
            out += b"t" + struct.pack("!I", len(raw)) + raw
    return out


def micros(moment: datetime) -> int:
    return (moment - PG_EPOCH) // timedelta(microseconds=1)


def begin(final_lsn: int, moment: datetime, xid: int) -> bytes:
    return b"B" + struct.pack("!QqI", final_lsn, micros(moment), xid)


def commit(flags: int, commit_lsn: int, end_lsn: int, moment: datetime) -> bytes:
    return b"C" + struct.pack("!BQQq", flags, commit_lsn, end_lsn, micros(moment))


def relation(relid: int, namespace: str, name: str, identity: str, *cols: bytes) -> bytes:
    head = b"R" + struct.pack("!I", relid) + cstr(namespace) + cstr(name)
    return head + identity.encode() + struct.pack("!H", len(cols)) + b"".join(cols)


def column(flags: int, name: str, type_oid: int, typmod: int) -> bytes:
    return bytes([flags]) + cstr(name) + struct.pack("!Ii", type_oid, typmod)


def insert(relid: int, *values: Value | bytes) -> bytes:
    return b"I" + struct.pack("!I", relid) + b"N" + tuple_data(*values)


def truncate(options: int, *relids: int) -> bytes:
    return (
        b"T" + struct.pack("!IB", len(relids), options) + struct.pack(f"!{len(relids)}I", *relids)
    )


def message(flags: int, lsn: int, prefix: str, content: bytes) -> bytes:
    return (
        b"M"
        + struct.pack("!BQ", flags, lsn)
        + cstr(prefix)
        + struct.pack("!I", len(content))
        + content
    )


MOMENT = datetime(2026, 11, 23, 18, 30, 0, 123456, tzinfo=UTC)

SAMPLES: dict[str, bytes] = {
    "begin": begin(0x16B3748, MOMENT, 771),
    "commit": commit(0, 0x16B3748, 0x16B3778, MOMENT),
    "origin": b"O" + struct.pack("!Q", 0xABCDEF) + cstr("upstream"),
    "relation": relation(
        16384, "public", "orders", "d", column(1, "id", 23, -1), column(0, "note", 1043, 36)
    ),
    "type": b"Y" + struct.pack("!I", 16390) + cstr("public") + cstr("mood"),
    "insert": insert(16384, "1", None, UNCHANGED, "", UNICORN),
    "update": b"U" + struct.pack("!I", 16384) + b"K" + tuple_data("1", None) + b"N"
    + tuple_data("2", "x"),
    "delete": b"D" + struct.pack("!I", 16384) + b"O" + tuple_data("1", "x"),
    "truncate": truncate(3, 16384, 16400),
    "message": message(1, 0x1000, "p", b"hello"),
}  # fmt: skip


def test_begin_decodes_lsn_aware_commit_time_and_xid() -> None:
    assert decode(SAMPLES["begin"]) == Begin(
        final_lsn=0x16B3748, commit_micros=datetime_to_pg_time(MOMENT), xid=771
    )


def test_commit_decodes_every_field() -> None:
    assert decode(SAMPLES["commit"]) == Commit(
        flags=0, commit_lsn=0x16B3748, end_lsn=0x16B3778, commit_micros=datetime_to_pg_time(MOMENT)
    )


def test_timestamps_are_utc_from_the_postgres_epoch_and_lsns_are_unsigned() -> None:
    decoded = decode(begin(MAX_LSN, PG_EPOCH - timedelta(microseconds=1), 0xFFFFFFFF))
    assert isinstance(decoded, Begin)
    assert decoded.final_lsn == MAX_LSN
    assert decoded.xid == 0xFFFFFFFF
    assert decoded.commit_time == datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert decoded.commit_time.utcoffset() == timedelta(0)


def test_origin() -> None:
    assert decode(SAMPLES["origin"]) == Origin(lsn=0xABCDEF, name="upstream")


def test_relation_with_key_flags_and_type_modifiers() -> None:
    decoded = decode(SAMPLES["relation"])
    assert decoded == Relation(
        relation_id=16384,
        namespace="public",
        name="orders",
        replica_identity="d",
        columns=(RelationColumn(1, "id", 23, -1), RelationColumn(0, "note", 1043, 36)),
    )
    assert isinstance(decoded, Relation)
    assert [c.is_key for c in decoded.columns] == [True, False]


def test_relation_with_zero_columns_and_pg_catalog_empty_namespace() -> None:
    assert decode(relation(1259, "", f"t{UNICORN}", "n")) == Relation(
        1259, "", f"t{UNICORN}", "n", ()
    )


def test_type() -> None:
    assert decode(SAMPLES["type"]) == TypeInfo(type_oid=16390, namespace="public", name="mood")


def test_insert_column_kinds_null_unchanged_empty_and_four_byte_utf8() -> None:
    decoded = decode(SAMPLES["insert"])
    assert decoded == Insert(relation_id=16384, new=("1", None, UNCHANGED, "", UNICORN))
    assert isinstance(decoded, Insert)
    assert decoded.new[3] == "" and decoded.new[1] is None


def test_insert_with_zero_columns() -> None:
    assert decode(insert(7)) == Insert(7, ())


def test_text_is_decoded_with_the_given_encoding() -> None:
    payload = insert(7, "é".encode("latin-1"))
    assert decode(payload, encoding="latin-1") == Insert(7, ("é",))
    with pytest.raises(PgoutputError, match="Insert"):
        decode(payload)


def test_update_without_old_tuple() -> None:
    payload = b"U" + struct.pack("!I", 9) + b"N" + tuple_data("1", "b")
    assert decode(payload) == Update(relation_id=9, old=None, old_kind=None, new=("1", "b"))


def test_update_with_old_key() -> None:
    assert decode(SAMPLES["update"]) == Update(16384, old=("1", None), old_kind="K", new=("2", "x"))


def test_update_with_full_old_row_and_unchanged_toast() -> None:
    payload = (
        b"U" + struct.pack("!I", 9) + b"O" + tuple_data("1", "big", "a")
        + b"N" + tuple_data("1", UNCHANGED, "b")
    )  # fmt: skip
    assert decode(payload) == Update(9, ("1", "big", "a"), "O", ("1", UNCHANGED, "b"))


def test_delete_with_key_and_with_full_row() -> None:
    key = b"D" + struct.pack("!I", 9) + b"K" + tuple_data("1", None)
    assert decode(key) == Delete(relation_id=9, old=("1", None), old_kind="K")
    assert decode(SAMPLES["delete"]) == Delete(16384, old=("1", "x"), old_kind="O")


@pytest.mark.parametrize(
    ("options", "cascade", "restart"),
    [(0, False, False), (1, True, False), (2, False, True), (3, True, True)],
)
def test_truncate_option_bits(options: int, cascade: bool, restart: bool) -> None:
    assert decode(truncate(options, 16384, 16400, 0xFFFFFFF0)) == Truncate(
        relation_ids=(16384, 16400, 0xFFFFFFF0), cascade=cascade, restart_identity=restart
    )


def test_logical_message_transactional_and_not() -> None:
    assert decode(SAMPLES["message"]) == LogicalMessage(True, 0x1000, "p", b"hello")
    assert decode(message(0, MAX_LSN, "", b"\0\xff")) == LogicalMessage(
        False, MAX_LSN, "", b"\0\xff"
    )


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_accepts_any_bytes_like_payload(wrap: type) -> None:
    assert decode(wrap(SAMPLES["insert"])) == decode(SAMPLES["insert"])


def test_memoryview_slice_of_a_larger_buffer() -> None:
    frame = b"xxxx" + SAMPLES["update"] + b"yy"
    view = memoryview(frame)[4:-2]
    assert decode(view) == Update(16384, ("1", None), "K", ("2", "x"))


def test_binary_column_is_refused_clearly() -> None:
    payload = (
        b"I"
        + struct.pack("!I", 7)
        + b"N"
        + struct.pack("!H", 1)
        + b"b"
        + struct.pack("!I", 1)
        + b"\x01"
    )
    with pytest.raises(PgoutputError, match="column 1 in binary format"):
        decode(payload)


def test_unknown_message_type_names_the_byte() -> None:
    with pytest.raises(PgoutputError, match=r"0x5a \('Z'\)"):
        decode(b"Z\0\0\0\0")


def test_error_is_an_operation_error_with_a_title() -> None:
    with pytest.raises(OperationError) as info:
        decode(b"")
    assert isinstance(info.value, PgoutputError)
    assert info.value.title == "Replication stream error"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_truncation_is_a_pgoutput_error(name: str) -> None:
    payload = SAMPLES[name]
    for cut in range(len(payload)):
        with pytest.raises(PgoutputError):
            decode(payload[:cut])


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_trailing_bytes_are_a_pgoutput_error(name: str) -> None:
    with pytest.raises(PgoutputError, match="trailing"):
        decode(SAMPLES[name] + b"\0")


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"I" + struct.pack("!I", 7) + b"K" + tuple_data("1"), "'N'"),
        (b"U" + struct.pack("!I", 7) + b"X" + tuple_data("1"), "'K' or 'O' or 'N'"),
        (b"U" + struct.pack("!I", 7) + b"K" + tuple_data("1") + b"K" + tuple_data("1"), "'N'"),
        (b"D" + struct.pack("!I", 7) + b"N" + tuple_data("1"), "'K' or 'O'"),
        (b"I" + struct.pack("!I", 7) + b"N" + struct.pack("!H", 1) + b"x", "unknown kind 0x78"),
        (b"I" + struct.pack("!I", 7) + b"N" + struct.pack("!H", 1) + b"t\0\0\x10\0abc", "Insert"),
        (b"I" + struct.pack("!I", 7) + b"N" + tuple_data(b"\xff\xfe"), "utf-8"),
        (b"B" + struct.pack("!QqI", 1, 2**63 - 1, 1), "Begin"),
        (b"T" + struct.pack("!IB", 0xFFFFFFFF, 0), "relation ids"),
        (b"M" + struct.pack("!BQ", 1, 1) + cstr("p") + struct.pack("!I", 99) + b"x", "content"),
        (b"R" + struct.pack("!I", 1) + b"public", "Relation"),
    ],
)
def test_malformed_input_is_a_pgoutput_error(payload: bytes, detail: str) -> None:
    with pytest.raises(PgoutputError, match="malformed") as info:
        decode(payload)
    assert detail in info.value.message


def test_random_garbage_and_corrupted_samples_only_raise_pgoutput_error() -> None:
    rng = random.Random(20261123)
    payloads = [bytes([rng.choice(b"BCORYIUDTM")]) + rng.randbytes(40) for _ in range(1000)]
    for sample in SAMPLES.values():
        for _ in range(200):
            corrupt = bytearray(sample)
            corrupt[rng.randrange(1, len(sample))] = rng.randrange(256)
            payloads.append(bytes(corrupt))
    failures = 0
    for payload in payloads:
        try:
            decode(payload)
        except PgoutputError:
            failures += 1
    # Anything other than PgoutputError would have escaped and failed the test already.
    assert 1000 <= failures < len(payloads)
