"""Byte formats, command text and error classification of the replication connection."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cdc_tui.engines.embedded.replication_errors import (
    ReplicationConnectionLost,
    ReplicationError,
    SlotExistsError,
    SlotInUseError,
    SlotInvalidatedError,
    SlotMissingError,
    connect_failure,
    is_lost_snapshot_error,
    server_failure,
)
from cdc_tui.engines.embedded.replication_protocol import (
    PG_EPOCH,
    Keepalive,
    ProtocolViolation,
    XLogData,
    create_slot_command,
    datetime_to_pg_time,
    drop_slot_command,
    encode_keepalive,
    encode_standby_status,
    encode_xlogdata,
    parse_copy_message,
    pg_time_to_datetime,
    quote_ident,
    quote_literal,
    start_replication_command,
    validate_name,
)
from cdc_tui.errors import OperationError, UsageError

MOMENT = datetime(2024, 2, 29, 12, 30, 1, 123456, tzinfo=UTC)


# Timestamps.


def test_pg_time_counts_microseconds_from_2000() -> None:
    assert datetime_to_pg_time(PG_EPOCH) == 0
    assert datetime_to_pg_time(PG_EPOCH + timedelta(seconds=1, microseconds=7)) == 1_000_007
    assert datetime_to_pg_time(PG_EPOCH - timedelta(microseconds=1)) == -1
    assert pg_time_to_datetime(datetime_to_pg_time(MOMENT)) == MOMENT


# Standby status update.


def test_standby_status_update_layout() -> None:
    message = encode_standby_status(0x1_0000_0010, 0x20, 0x30, PG_EPOCH, reply=True)
    assert len(message) == 34
    assert message == (
        b"r"
        + (0x1_0000_0010).to_bytes(8, "big")
        + (0x20).to_bytes(8, "big")
        + (0x30).to_bytes(8, "big")
        + bytes(8)
        + b"\x01"
    )


def test_standby_status_update_without_reply_and_with_a_clock() -> None:
    message = encode_standby_status(1, 2, 3, MOMENT, reply=False)
    tag, write, flush, apply, sent, reply = struct.unpack("!cQQQqB", message)
    assert (tag, write, flush, apply, reply) == (b"r", 1, 2, 3, 0)
    assert pg_time_to_datetime(sent) == MOMENT


# XLogData and keepalive.


def test_xlogdata_round_trip_keeps_the_payload_undecoded() -> None:
    original = XLogData(0x16_B374D848, 0x16_B374D900, datetime_to_pg_time(MOMENT), b"Bpayload")
    wire = encode_xlogdata(original)
    assert wire[:1] == b"w"
    assert len(wire) == 25 + len(b"Bpayload")
    parsed = parse_copy_message(memoryview(wire))
    assert isinstance(parsed, XLogData)
    assert (parsed.data_start, parsed.wal_end, parsed.send_time) == (
        original.data_start,
        original.wal_end,
        MOMENT,
    )
    assert isinstance(parsed.payload, memoryview)
    assert bytes(parsed.payload) == b"Bpayload"


def test_xlogdata_with_empty_payload_and_too_short() -> None:
    parsed = parse_copy_message(encode_xlogdata(XLogData(1, 2, 0, b"")))
    assert isinstance(parsed, XLogData)
    assert bytes(parsed.payload) == b""
    with pytest.raises(ProtocolViolation, match="too short"):
        parse_copy_message(b"w" + bytes(23))


@pytest.mark.parametrize("reply", [True, False])
def test_keepalive_round_trip(reply: bool) -> None:
    wire = encode_keepalive(Keepalive(0xABCDEF, MOMENT, reply))
    assert len(wire) == 18
    assert wire[-1:] == (b"\x01" if reply else b"\x00")
    assert parse_copy_message(wire) == Keepalive(0xABCDEF, MOMENT, reply)


@pytest.mark.parametrize("wire", [b"k" + bytes(16), b"k" + bytes(18), b"x123", b""])
def test_malformed_or_unknown_messages_are_refused(wire: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        parse_copy_message(wire)


# Names and quoting.


@pytest.mark.parametrize("name", ["cdc_orders", "a", "0_9", "x" * 63])
def test_valid_names(name: str) -> None:
    assert validate_name(name, "Replication slot") == name


@pytest.mark.parametrize(
    "name", ["", "x" * 64, "Orders", "a-b", 'x"; DROP TABLE y; --', "pub'1", "é", "a b"]
)
def test_invalid_names_are_refused_before_reaching_a_command(name: str) -> None:
    with pytest.raises(UsageError, match="not allowed"):
        validate_name(name, "Publication")
    with pytest.raises(UsageError):
        start_replication_command("slot", 0, publication_names=[name])
    with pytest.raises(UsageError):
        create_slot_command(name, server_version=160000, export_snapshot=True)
    with pytest.raises(UsageError):
        drop_slot_command(name, wait=True)


def test_quoting_doubles_embedded_quotes() -> None:
    assert quote_ident('a"b') == '"a""b"'
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal('"p1","p2"') == '\'"p1","p2"\''


# Commands.


def test_create_slot_syntax_per_server_version() -> None:
    assert create_slot_command("s1", server_version=150004, export_snapshot=True) == (
        b"CREATE_REPLICATION_SLOT \"s1\" LOGICAL pgoutput (SNAPSHOT 'export')"
    )
    assert create_slot_command("s1", server_version=160000, export_snapshot=False) == (
        b"CREATE_REPLICATION_SLOT \"s1\" LOGICAL pgoutput (SNAPSHOT 'nothing')"
    )
    assert create_slot_command("s1", server_version=140010, export_snapshot=True) == (
        b'CREATE_REPLICATION_SLOT "s1" LOGICAL pgoutput EXPORT_SNAPSHOT'
    )
    assert create_slot_command("s1", server_version=140010, export_snapshot=False) == (
        b'CREATE_REPLICATION_SLOT "s1" LOGICAL pgoutput NOEXPORT_SNAPSHOT'
    )


def test_drop_slot_command() -> None:
    assert drop_slot_command("s1", wait=True) == b'DROP_REPLICATION_SLOT "s1" WAIT'
    assert drop_slot_command("s1", wait=False) == b'DROP_REPLICATION_SLOT "s1"'


def test_start_replication_command() -> None:
    command = start_replication_command(
        "s1", 0x16_B374D848, publication_names=["pub1", "pub2"], proto_version=1
    )
    assert command == (
        b'START_REPLICATION SLOT "s1" LOGICAL 16/B374D848 '
        b"(proto_version '1', publication_names '\"pub1\",\"pub2\"')"
    )
    with_messages = start_replication_command("s1", 0, publication_names=["p"], messages=True)
    assert with_messages.endswith(b"publication_names '\"p\"', messages 'true')")
    assert b"LOGICAL 0/0 " in with_messages


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"publication_names": []}, "at least one"),
        ({"publication_names": "pub"}, "at least one"),
        ({"publication_names": ["p"], "proto_version": 0}, "proto_version"),
        ({"publication_names": ["p"], "proto_version": 5}, "proto_version"),
    ],
)
def test_start_replication_refuses_bad_options(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        start_replication_command("s1", 0, **kwargs)  # type: ignore[arg-type]


def test_start_replication_refuses_an_impossible_lsn() -> None:
    with pytest.raises(UsageError, match="not an LSN"):
        start_replication_command("s1", -1, publication_names=["p"])
    with pytest.raises(UsageError, match="not an LSN"):
        start_replication_command("s1", 1 << 64, publication_names=["p"])


# Error classification.


def _fail(sqlstate: str | None, primary: str, detail: str | None = None) -> ReplicationError:
    return server_failure(sqlstate, primary, detail, doing="starting replication", slot="s1")


def test_slot_errors_name_the_slot_and_say_what_to_do() -> None:
    exists = _fail("42710", 'replication slot "s1" already exists')
    missing = _fail("42704", 'replication slot "s1" does not exist')
    invalid_15 = _fail(
        "55000",
        'can no longer get changes from replication slot "s1"',
        "This slot has been invalidated because it exceeded the maximum reserved size.",
    )
    invalid_17 = _fail("55000", 'can no longer access replication slot "s1"')
    in_use = _fail("55006", 'replication slot "s1" is active for PID 4242')
    assert type(exists) is SlotExistsError
    assert type(missing) is SlotMissingError
    assert type(invalid_15) is SlotInvalidatedError
    assert type(invalid_17) is SlotInvalidatedError
    assert type(in_use) is SlotInUseError
    for error in (exists, missing, invalid_15, invalid_17, in_use):
        assert '"s1"' in error.message
        assert isinstance(error, OperationError)
    assert "resync required" in missing.message
    assert "resync required" in invalid_15.message
    assert [e.retriable for e in (exists, missing, invalid_15, in_use)] == [
        False,
        False,
        False,
        True,
    ]


@pytest.mark.parametrize("sqlstate", [None, "57P01", "57P02", "57P03", "08006", "53300"])
def test_lost_connections_are_retriable(sqlstate: str | None) -> None:
    error = _fail(sqlstate, "terminating connection due to administrator command")
    assert type(error) is ReplicationConnectionLost
    assert error.retriable
    assert "terminating connection" in error.message


def test_other_refusals_are_permanent_and_keep_the_sqlstate() -> None:
    publication = _fail("42704", 'publication "nope" does not exist')
    assert type(publication) is ReplicationError  # not the slot: no "resync required" here
    assert "nope" in publication.message
    error = _fail("42501", "permission denied to start WAL sender")
    assert type(error) is ReplicationError
    assert not error.retriable
    assert "42501" in error.message


def test_connect_failures_split_into_permanent_and_retriable() -> None:
    auth = connect_failure("db:5432/src", 'password authentication failed for user "cdc"')
    down = connect_failure("db:5432/src", "Connection refused")
    assert type(auth) is ReplicationError
    assert type(down) is ReplicationConnectionLost
    assert "db:5432/src" in down.message


def test_lost_snapshot_is_recognised_by_sqlstate() -> None:
    lost = psycopg.errors.InvalidParameterValue('invalid snapshot identifier: "0000-1"')
    assert is_lost_snapshot_error(lost)
    assert not is_lost_snapshot_error(psycopg.errors.InvalidParameterValue("other value"))
    assert not is_lost_snapshot_error(psycopg.OperationalError("snapshot"))
    assert not is_lost_snapshot_error(ValueError("invalid snapshot identifier"))
