"""pgoutput decoder on a real PostgreSQL slot: the exact message sequence PostgreSQL sends.

Each test creates tables and the publication `pub`, a pgoutput slot, runs statements, reads the
slot with `pg_logical_slot_get_binary_changes` and decodes every row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

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
    Truncate,
    TypeInfo,
    Update,
)
from cdc_tui.engines.embedded.pgoutput import decode
from cdc_tui.lsn import lsn_to_int
from tests.pg import Database

pytestmark = pytest.mark.integration

GET_CHANGES = (
    "SELECT lsn, xid, data FROM pg_logical_slot_get_binary_changes(%s, NULL, NULL, "
    "'proto_version', '1', 'publication_names', 'pub', 'messages', 'true')"
)
# 128 kB of md5 hex: too big for inline storage even after compression, so it is TOASTed.
BIG_TEXT = "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 4000))"

Shape = tuple[object, ...]


@dataclass(frozen=True)
class Row:
    lsn: int
    xid: int | None
    message: Message


@dataclass
class Slot:
    conn: psycopg.Connection[tuple[object, ...]]
    name: str

    def run(self, statement: str) -> None:
        self.conn.execute(statement.encode())  # test statements are trusted SQL

    def text_row(self, query: str) -> tuple[object, ...]:
        row = self.conn.execute(query.encode()).fetchone()
        assert row is not None
        return row

    def relation_ids(self) -> dict[int, str]:
        rows = self.conn.execute(
            "SELECT oid::int8, relname::text FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace"
        ).fetchall()
        return {int(str(oid)): str(name) for oid, name in rows}

    def read(self) -> list[Row]:
        """Consume the slot and decode every message."""
        rows = self.conn.execute(GET_CHANGES, (self.name,)).fetchall()
        decoded = []
        for lsn, xid, data in rows:
            assert isinstance(data, bytes)
            xid_int = None if xid is None else int(str(xid))
            decoded.append(Row(lsn_to_int(str(lsn)), xid_int, decode(data)))
        return decoded


@contextmanager
def logical_slot(db: Database, setup: str) -> Iterator[Slot]:
    """Run `setup` (tables and publication `pub`), create a pgoutput slot; always drop it."""
    name = f"s_{db.name}"
    try:
        with db.admin() as conn:
            # The test clusters run with it off, and SQL decoding reads only flushed WAL.
            conn.execute("SET synchronous_commit = on")
            conn.execute(setup.encode())
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))
            yield Slot(conn, name)
    finally:
        # A fresh connection, so a broken test connection cannot leave the slot behind.
        with db.admin() as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s",
                (name,),
            )


def shapes(rows: list[Row], names: dict[int, str]) -> list[Shape]:
    """A comparable form of each message; relation ids become table names, LSNs are left out."""
    return [_shape(row.message, names) for row in rows]


def _shape(m: Message, names: dict[int, str]) -> Shape:
    match m:
        case Begin():
            return ("B",)
        case Commit():
            return ("C",)
        case Origin():
            return ("O", m.name, m.lsn)
        case Relation():
            cols = tuple((c.name, c.is_key) for c in m.columns)
            assert names[m.relation_id] == m.name
            return ("R", m.namespace, m.name, m.replica_identity, cols)
        case TypeInfo():
            return ("Y", m.namespace, m.name)
        case Insert():
            return ("I", names[m.relation_id], m.new)
        case Update():
            return ("U", names[m.relation_id], m.old_kind, m.old, m.new)
        case Delete():
            return ("D", names[m.relation_id], m.old_kind, m.old)
        case Truncate():
            return ("T", tuple(names[r] for r in m.relation_ids), m.cascade, m.restart_identity)
        case LogicalMessage():
            return ("M", m.transactional, m.prefix, m.content)


def check_transactions(rows: list[Row]) -> None:
    """Every change sits between a Begin and a Commit of its xid, whose LSNs and times agree."""
    now = datetime.now(UTC)
    begin: Begin | None = None
    for row in rows:
        m = row.message
        if isinstance(m, Begin):
            assert begin is None and row.xid == m.xid
            assert abs(now - m.commit_time) < timedelta(minutes=10)
            begin = m
        elif isinstance(m, Commit):
            assert begin is not None and row.xid == begin.xid
            assert (m.flags, m.commit_lsn, m.commit_time) == (0, begin.final_lsn, begin.commit_time)
            assert m.end_lsn == row.lsn and m.end_lsn > m.commit_lsn
            begin = None
        elif isinstance(m, LogicalMessage) and not m.transactional:
            assert begin is None and m.lsn == row.lsn
        else:
            assert begin is not None and row.xid == begin.xid
    assert begin is None


ITEMS = "CREATE TABLE items (id int PRIMARY KEY, name text, note text);"
ITEMS_REL = ("R", "public", "items", "d", (("id", True), ("name", False), ("note", False)))


def test_insert_update_delete_and_primary_key_update(source_db: Database) -> None:
    with logical_slot(source_db, ITEMS + "CREATE PUBLICATION pub FOR TABLE items") as slot:
        slot.run("INSERT INTO items VALUES (1, 'a', ''), (2, NULL, 'x')")
        slot.run("UPDATE items SET name = 'b' WHERE id = 1")
        slot.run("UPDATE items SET id = 3 WHERE id = 2")
        slot.run("DELETE FROM items WHERE id = 1")
        rows = slot.read()
        names = slot.relation_ids()
    check_transactions(rows)
    assert shapes(rows, names) == [
        ("B",), ITEMS_REL, ("I", "items", ("1", "a", "")), ("I", "items", ("2", None, "x")), ("C",),
        ("B",), ("U", "items", None, None, ("1", "b", "")), ("C",),
        ("B",), ("U", "items", "K", ("2", None, None), ("3", None, "x")), ("C",),
        ("B",), ("D", "items", "K", ("1", None, None)), ("C",),
    ]  # fmt: skip


KINDS = """
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE kinds (
    id int PRIMARY KEY, m mood, ms mood[], nan numeric, huge numeric, ts_inf timestamptz,
    ts timestamptz, d date, j jsonb, a int[], b bytea, u uuid, t text, e text, z text,
    ok bool, f float8);
CREATE PUBLICATION pub FOR TABLE kinds;
"""
KIND_COLUMNS = "id, m, ms, nan, huge, ts_inf, ts, d, j, a, b, u, t, e, z, ok, f"
COLS = KIND_COLUMNS.split(", ")
KIND_VALUES = """(1, 'happy', '{sad,NULL}', 'NaN', '-123456789012345678901234567890.000000000001',
    'infinity', '2026-01-02 03:04:05.678901+00', '-infinity', '{"a": [1, null, "🦄"], "b": 1.50}',
    '{1,NULL,3}', '\\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'x🦄y', '', NULL, true, 0.1),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL)"""


def test_values_decode_to_the_sources_text_output(source_db: Database) -> None:
    with logical_slot(source_db, KINDS) as slot:
        slot.run(f"INSERT INTO kinds ({KIND_COLUMNS}) VALUES {KIND_VALUES}")
        # pgoutput prints with each type's output function, which format('%s') also uses.
        out_cols = ", ".join(f"CASE WHEN {c} IS NOT NULL THEN format('%s', {c}) END" for c in COLS)
        expected = [slot.text_row(f"SELECT {out_cols} FROM kinds WHERE id = {i}") for i in (1, 2)]
        cast_cols = ", ".join(f"{c}::text" for c in COLS)
        cast = slot.text_row(f"SELECT {cast_cols} FROM kinds WHERE id = 1")
        mood_oid = slot.text_row("SELECT 'mood'::regtype::oid::int8")[0]
        rows = slot.read()
        names = slot.relation_ids()
    check_transactions(rows)
    got = shapes(rows, names)
    assert got[:3] == [("B",), ("Y", "public", "mood"), ("Y", "public", "_mood")]
    assert [g[0] for g in got[3:]] == ["R", "I", "I", "C"]
    type_info = rows[1].message
    assert isinstance(type_info, TypeInfo) and type_info.type_oid == mood_oid
    relation = rows[3].message
    assert isinstance(relation, Relation)
    assert [c.name for c in relation.columns] == COLS
    assert relation.columns[1].type_oid == mood_oid
    first, second = rows[4].message, rows[5].message
    assert isinstance(first, Insert) and isinstance(second, Insert)
    assert [first.new, second.new] == expected
    assert first.new[1:6] == ("happy", "{sad,NULL}", "NaN", expected[0][4], "infinity")
    literal = ("-infinity", expected[0][8], "{1,NULL,3}", "\\x00ff", expected[0][11], "x🦄y")
    assert first.new[7:] == (*literal, "", None, "t", "0.1")
    assert second.new == ("2",) + (None,) * 16
    # col::text matches too, except bool: its cast says 'true', its output function 't'.
    assert cast[:15] == first.new[:15] and cast[16:] == first.new[16:]
    assert (cast[15], first.new[15]) == ("true", "t")


TOAST = f"""
CREATE TABLE big (id int PRIMARY KEY, doc text, n int);
CREATE TABLE full_t (id int, doc text, n int);
ALTER TABLE full_t REPLICA IDENTITY FULL;
INSERT INTO big VALUES (1, {BIG_TEXT}, 1);
INSERT INTO full_t VALUES (1, {BIG_TEXT}, 1);
CREATE PUBLICATION pub FOR TABLE big, full_t;
"""


def test_unchanged_toast_and_replica_identity_full(source_db: Database) -> None:
    with logical_slot(source_db, TOAST) as slot:
        big = slot.text_row("SELECT doc FROM big")[0]
        full = slot.text_row("SELECT doc FROM full_t")[0]
        assert isinstance(big, str) and isinstance(full, str) and len(big) == len(full) == 128000
        slot.run("INSERT INTO big VALUES (2, (SELECT doc FROM big), 1)")
        slot.run("UPDATE big SET n = 2 WHERE id = 1")
        slot.run("UPDATE full_t SET n = 2")
        slot.run("DELETE FROM full_t")
        rows = slot.read()
        names = slot.relation_ids()
    check_transactions(rows)
    full_rel = ("R", "public", "full_t", "f", (("id", True), ("doc", True), ("n", True)))
    assert shapes(rows, names) == [
        ("B",), ("R", "public", "big", "d", (("id", True), ("doc", False), ("n", False))),
        ("I", "big", ("2", big, "1")), ("C",),
        ("B",), ("U", "big", None, None, ("1", UNCHANGED, "2")), ("C",),
        ("B",), full_rel, ("U", "full_t", "O", ("1", full, "1"), ("1", UNCHANGED, "2")), ("C",),
        ("B",), ("D", "full_t", "O", ("1", full, "2")), ("C",),
    ]  # fmt: skip


TRUNCATE = """
CREATE TABLE a (id serial PRIMARY KEY);
CREATE TABLE b (id serial PRIMARY KEY);
CREATE TABLE c (id serial PRIMARY KEY, a_id int REFERENCES a);
CREATE PUBLICATION pub FOR TABLE a, b, c;
"""


def test_truncate_cascade_restart_identity_and_plain(source_db: Database) -> None:
    with logical_slot(source_db, TRUNCATE) as slot:
        slot.run("BEGIN; INSERT INTO a DEFAULT VALUES; INSERT INTO c (a_id) VALUES (1); COMMIT")
        slot.run("TRUNCATE a, b RESTART IDENTITY CASCADE")
        slot.run("INSERT INTO b DEFAULT VALUES")
        slot.run("TRUNCATE b")
        rows = slot.read()
        names = slot.relation_ids()
    check_transactions(rows)
    rel_a = ("R", "public", "a", "d", (("id", True),))
    rel_b = ("R", "public", "b", "d", (("id", True),))
    rel_c = ("R", "public", "c", "d", (("id", True), ("a_id", False)))
    # TRUNCATE gives each table a new relfilenode, so pgoutput sends its Relation again.
    assert shapes(rows, names) == [
        ("B",), rel_a, ("I", "a", ("1",)), rel_c, ("I", "c", ("1", "1")), ("C",),
        ("B",), rel_a, rel_b, rel_c, ("T", ("a", "b", "c"), True, True), ("C",),
        ("B",), rel_b, ("I", "b", ("1",)), ("C",),
        ("B",), rel_b, ("T", ("b",), False, False), ("C",),
    ]  # fmt: skip


def test_logical_messages_and_replication_origin(source_db: Database) -> None:
    origin = f"o_{source_db.name}"
    with logical_slot(source_db, ITEMS + "CREATE PUBLICATION pub FOR TABLE items") as slot:
        slot.run("SELECT pg_logical_emit_message(true, 'p', 'hello')")
        slot.run("SELECT pg_logical_emit_message(false, 'np', '\\x00ff'::bytea)")
        slot.conn.execute("SELECT pg_replication_origin_create(%s)", (origin,))
        try:
            slot.conn.execute("SELECT pg_replication_origin_session_setup(%s)", (origin,))
            with slot.conn.transaction():
                slot.run("SELECT pg_replication_origin_xact_setup('1/ABCDEF', now())")
                slot.run("INSERT INTO items VALUES (1, 'from upstream', NULL)")
            slot.run("SELECT pg_replication_origin_session_reset()")
            rows = slot.read()
            names = slot.relation_ids()
        finally:
            slot.conn.execute("SELECT pg_replication_origin_drop(%s)", (origin,))
    check_transactions(rows)
    assert shapes(rows, names) == [
        ("B",), ("M", True, "p", b"hello"), ("C",),
        ("M", False, "np", b"\x00\xff"),
        ("B",), ("O", origin, 0x1_00ABCDEF), ITEMS_REL,
        ("I", "items", ("1", "from upstream", None)), ("C",),
    ]  # fmt: skip
