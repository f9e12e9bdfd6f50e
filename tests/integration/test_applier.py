"""The applier against a real PostgreSQL 16 target, fed with constructed pgoutput messages.

Checks exactness (types, unchanged TOAST, key updates, keyless FULL tables, TRUNCATE), atomicity
and bounded memory of big transactions, grouping, and exactly-once replay after a crash
(RELIABILITY rows 9-11, 13-19, 26-27). The last test feeds a real PostgreSQL 15 slot through the
pgoutput decoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
import pytest
from psycopg.types.string import TextLoader

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.applier import PgApplier
from cdc_tui.engines.embedded.apply_errors import (
    PermanentApplyError,
    RetriableApplyError,
    SchemaDriftError,
)
from cdc_tui.engines.embedded.messages import (
    UNCHANGED,
    Begin,
    Change,
    Commit,
    Delete,
    Insert,
    Message,
    Relation,
    RelationColumn,
    Truncate,
    Update,
    Value,
)
from cdc_tui.engines.embedded.replication_protocol import datetime_to_pg_time
from cdc_tui.engines.embedded.target_table import TargetTable, read_target_table
from cdc_tui.lsn import lsn_to_int
from cdc_tui.pgconn import PgParams, connect
from tests.pg import Database

pytestmark = pytest.mark.integration

INT4, TEXT, NUMERIC, JSONB = 23, 25, 1700, 3802
T = TableRef("public", "t")
NOW = datetime(2026, 11, 23, 18, 30, tzinfo=UTC)


def col(name: str, oid: int = TEXT, *, key: bool = False, typmod: int = -1) -> RelationColumn:
    return RelationColumn(1 if key else 0, name, oid, typmod)


def rel(rid: int, name: str, columns: Iterable[RelationColumn], identity: str = "d") -> Relation:
    return Relation(rid, "public", name, identity, tuple(columns))


class Stream:
    """Builds source transactions with increasing LSNs, as the slot would send them."""

    def __init__(self, start: int = 0x1000000) -> None:
        self.next_lsn = start

    def txn(self, *body: Message) -> list[Message]:
        commit_lsn = self.next_lsn + 0x100
        end_lsn = commit_lsn + 0x38
        self.next_lsn = end_lsn
        micros = datetime_to_pg_time(NOW)
        return [Begin(commit_lsn, micros, 700), *body, Commit(0, commit_lsn, end_lsn, micros)]


def feed(applier: PgApplier, messages: Iterable[Message]) -> None:
    for msg in messages:
        applier.apply(msg)


def target_conn(db: Database) -> psycopg.Connection[Any]:
    return connect(PgParams(db.url(), password=db.superuser_password), autocommit=False)


@pytest.fixture
def conns(target_db: Database) -> Iterator[list[psycopg.Connection[Any]]]:
    """Target connections opened by a test, closed at its end."""
    opened: list[psycopg.Connection[Any]] = []
    yield opened
    for conn in opened:
        conn.close()


def make_applier(
    db: Database,
    conns: list[psycopg.Connection[Any]],
    tables: Iterable[tuple[TableRef, TableRef]] = ((T, T),),
    **kwargs: Any,
) -> PgApplier:
    conn = target_conn(db)
    conns.append(conn)
    mapping = {source: read_target_table(conn, source, target) for source, target in tables}
    conn.commit()
    applier = PgApplier(conn, kwargs.pop("pipeline", "p"), mapping, **kwargs)
    applier.ensure_position_table()
    return applier


def rows(db: Database, sql: str) -> list[tuple[object, ...]]:
    with db.admin() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return list(conn.execute(sql.encode()).fetchall())


def checksum(db: Database, table: str, key: str = "id") -> tuple[object, ...]:
    sql = f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY {key})) FROM {table} AS t"
    return rows(db, sql)[0]


def xmins(db: Database) -> dict[int, str]:
    """Each row's id and the target transaction that last wrote it."""
    return {cast(int, r[0]): str(r[1]) for r in rows(db, "SELECT id, xmin::text FROM t")}


def stored_position(db: Database, pipeline: str = "p") -> int | None:
    value = db.scalar(
        "SELECT end_lsn::text FROM cdc_tui.applied_position WHERE pipeline = %s", (pipeline,)
    )
    return None if value is None else lsn_to_int(str(value))


KV = rel(1, "t", [col("id", INT4, key=True), col("v"), col("big")])


def kv_table(db: Database) -> None:
    db.execute("CREATE TABLE t (id integer PRIMARY KEY, v text, big text)")


# -- exactness ------------------------------------------------------------------------------

TYPES = [
    ("n", "numeric", ["NaN", "-0.000000000000000000001", "9" * 120 + "." + "1" * 40, "0.10"]),
    ("f", "double precision", ["1.0000000000000002", "-Infinity", "NaN", "5e-324"]),
    (
        "ts",
        "timestamp with time zone",
        ["4713-01-01 00:00:00+00 BC", "294276-12-31 23:59:59.999999+00", "infinity", "-infinity"],
    ),
    ("d", "date", ["infinity", "-infinity", "0001-01-01 BC", "2024-02-29"]),
    ("j", "jsonb", ['{"a": [1, 2.50, null], "b": "😀"}', "[]", '"x"', "null"]),
    ("ia", "integer[]", ["{1,NULL,3}", "{}", "{{1,2},{3,NULL}}", "{NULL}"]),
    ("ta", "text[]", ['{"a b",NULL,"",NULL}', '{"\\"q\\"","x,y"}', "{}", '{NULL,"NULL"}']),
    ("u", "uuid", ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000000"]),
    ("b", "bytea", ["\\x00ff10", "\\x", "\\x5c78"]),
    ("e", "mood", ["happy", "so so"]),
    ("et", "text", ["happy"]),
    ("bo", "boolean", ["t", "f"]),
    (
        "s",
        "text",
        [
            "😀 𝄞 \U0001f9ec",
            "",
            "tab\there\nnewline \\ backslash",
            "NULL",
            'ctl \x01\x1f " \u2028 \\u0041',
        ],
    ),
    ("iv", "interval", ["1 year 2 mons -3 days +04:05:06.789", "00:00:00"]),
    ("vc", "character varying(5)", ["abcde", ""]),
]


def test_every_type_round_trips_byte_exactly(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    target_db.execute("CREATE TYPE mood AS ENUM ('happy', 'so so')")
    columns = ", ".join(f"{name} {type_sql}" for name, type_sql, _ in TYPES)
    target_db.execute(f"CREATE TABLE t (id integer PRIMARY KEY, {columns})")
    width = max(len(values) for _n, _t, values in TYPES)
    sent: list[tuple[Value, ...]] = []
    for i in range(width):
        row = tuple(values[i] if i < len(values) else None for _n, _t, values in TYPES)
        sent.append((str(i), *row))
    sent.append((str(width), *([None] * len(TYPES))))
    relation = rel(5, "t", [col("id", INT4, key=True), *(col(n) for n, _t, _v in TYPES)])
    applier = make_applier(target_db, conns)
    feed(applier, Stream().txn(relation, *(Insert(5, r) for r in sent)))
    applier.flush_commit()
    with target_db.admin() as conn:
        # Read every column with its type's output function, as pgoutput printed the source.
        for (oid,) in conn.execute("SELECT DISTINCT atttypid FROM pg_attribute").fetchall():
            conn.adapters.register_loader(cast(int, oid), TextLoader)
        got = conn.execute("SELECT * FROM t ORDER BY id").fetchall()
    assert got == sent


def test_unchanged_toast_keeps_its_value_keyed_and_full(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    kv_table(target_db)
    target_db.execute("CREATE TABLE f (a integer, v text, big text)")
    target_db.execute("ALTER TABLE f REPLICA IDENTITY FULL")
    full = rel(2, "f", [col("a", INT4, key=True), col("v", key=True), col("big", key=True)], "f")
    big = "x" * 100_000
    stream = Stream()
    applier = make_applier(target_db, conns, [(T, T), (TableRef("public", "f"),) * 2])
    first = stream.txn(
        KV, full, Insert(1, ("1", "a", big)), Insert(1, ("2", "a", big)), Insert(2, ("1", "a", big))
    )
    feed(applier, first)
    applier.flush_commit()
    second = stream.txn(
        Update(1, None, None, ("1", "b", UNCHANGED)),
        # A key update whose old row is only on the target: it must run in place.
        Update(1, ("2", None, None), "K", ("3", "c", UNCHANGED)),
        Update(2, ("1", "a", UNCHANGED), "O", ("1", "b", UNCHANGED)),
    )
    feed(applier, second)
    applier.flush_commit()
    assert rows(target_db, "SELECT id, v, big = repeat('x', 100000) FROM t ORDER BY id") == [
        (1, "b", True),
        (3, "c", True),
    ]
    assert rows(target_db, "SELECT a, v, big = repeat('x', 100000) FROM f") == [(1, "b", True)]


def test_key_updates_chains_and_insert_then_delete(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    kv_table(target_db)
    stream = Stream()
    applier = make_applier(target_db, conns)
    feed(applier, stream.txn(KV, *(Insert(1, (str(i), f"v{i}", "")) for i in (1, 2, 3))))
    feed(
        applier,
        stream.txn(
            Update(1, ("1", None, None), "K", ("10", "moved", "")),  # A -> B
            Update(1, ("10", None, None), "K", ("11", "moved again", UNCHANGED)),  # B -> C
            # Swap 2 and 3 through a temporary key.
            Update(1, ("2", None, None), "K", ("99", "v2", "")),
            Update(1, ("3", None, None), "K", ("2", "v3", "")),
            Update(1, ("99", None, None), "K", ("3", "v2", "")),
            Insert(1, ("50", "short-lived", "")),
            Delete(1, ("50", None, None), "K"),
            Insert(1, ("60", "first", "")),
            Delete(1, ("60", None, None), "K"),
            Insert(1, ("60", "second", "")),
        ),
    )
    applier.flush_commit()
    assert rows(target_db, "SELECT id, v FROM t ORDER BY id") == [
        (2, "v3"),
        (3, "v2"),
        (11, "moved again"),
        (60, "second"),
    ]


def test_full_table_without_key_changes_exactly_one_row(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    target_db.execute("CREATE TABLE f (a integer, v text, j json)")
    f = TableRef("public", "f")
    full = rel(2, "f", [col("a", INT4, key=True), col("v", key=True), col("j", key=True)], "f")
    stream = Stream()
    applier = make_applier(target_db, conns, [(f, f)])
    same = ("1", "x", '{"k":  1}')
    feed(applier, stream.txn(full, Insert(2, same), Insert(2, same), Insert(2, ("1", None, None))))
    feed(
        applier,
        stream.txn(
            Delete(2, same, "O"),
            Update(2, ("1", None, None), "O", ("2", None, "[]")),
        ),
    )
    applier.flush_commit()
    got = rows(target_db, "SELECT a, v, j::text FROM f ORDER BY a")
    assert got == [(1, "x", '{"k":  1}'), (2, None, "[]")]


def test_truncate_of_two_tables_runs_at_its_place(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    kv_table(target_db)
    target_db.execute("CREATE TABLE u (id integer PRIMARY KEY, v text, big text)")
    u = TableRef("public", "u")
    u_rel = rel(3, "u", [col("id", INT4, key=True), col("v"), col("big")])
    stream = Stream()
    applier = make_applier(target_db, conns, [(T, T), (u, u)])
    feed(applier, stream.txn(KV, u_rel, Insert(1, ("1", "a", "")), Insert(3, ("1", "a", ""))))
    applier.flush_commit()
    feed(
        applier,
        stream.txn(
            Insert(1, ("2", "before", "")),
            Truncate((1, 3), cascade=True, restart_identity=True),
            Insert(3, ("3", "after", "")),
        ),
    )
    applier.flush_commit()
    assert rows(target_db, "SELECT id, v FROM t") == []
    assert rows(target_db, "SELECT id, v FROM u") == [(3, "after")]


def test_tables_with_more_than_a_key_keep_the_exact_source_order(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    """A unique email and a foreign key: folding per key or across tables would break them."""
    target_db.execute("CREATE TABLE p (id integer PRIMARY KEY, v text UNIQUE, big text)")
    target_db.execute(
        "CREATE TABLE t (id integer PRIMARY KEY, v text UNIQUE, big text REFERENCES p (v))"
    )
    p = TableRef("public", "p")
    p_rel = rel(2, "p", [col("id", INT4, key=True), col("v"), col("big")])
    stream = Stream()
    applier = make_applier(target_db, conns, [(T, T), (p, p)])
    first = stream.txn(
        KV,
        p_rel,
        Insert(2, ("1", "parent", None)),
        Insert(2, ("2", "parent 2", None)),
        Insert(1, ("1", "x", "parent")),
        Insert(1, ("3", "z", "parent 2")),
    )
    second = stream.txn(
        Update(2, None, None, ("2", "parent 2", "touched")),
        Update(1, None, None, ("1", "y", "parent")),  # frees "x" ...
        Insert(1, ("2", "x", "parent")),  # ... for this row
        Delete(1, ("3", None, None), "K"),
        Delete(2, ("2", None, None), "K"),  # the parent goes after its child
    )
    feed(applier, first)
    applier.flush_commit()
    feed(applier, second)
    applier.flush_commit()
    assert rows(target_db, "SELECT id, v, big FROM t ORDER BY id") == [
        (1, "y", "parent"),
        (2, "x", "parent"),
    ]
    assert rows(target_db, "SELECT id, v FROM p") == [(1, "parent")]


# -- atomicity, grouping, position ----------------------------------------------------------


def test_large_transaction_commits_only_at_its_commit(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    kv_table(target_db)
    stream = Stream()
    applier = make_applier(target_db, conns, batch_changes=1000)
    messages = stream.txn(KV, *(Insert(1, (str(i), "v", None)) for i in range(20_000)))
    begin, body, end = messages[0], messages[1:-1], messages[-1]
    assert isinstance(end, Commit)
    feed(applier, [begin, *body[:5001]])  # the Relation, then 5,000 inserts
    assert target_db.scalar("SELECT count(*) FROM t") == 0
    # Flushed but uncommitted: the batches already sit in the open target transaction.
    in_txn = conns[-1].execute("SELECT count(*) FROM t").fetchone()
    assert in_txn == (5000,)
    feed(applier, [*body[5001:], end])
    assert target_db.scalar("SELECT count(*) FROM t") == 20_000
    assert stored_position(target_db) == end.end_lsn == applier.committed_lsn


def test_small_transactions_group_into_one_target_commit(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    kv_table(target_db)
    stream = Stream()
    applier = make_applier(target_db, conns, batch_interval_s=3600)
    applier.write_initial_position(stream.next_lsn)
    txns = [stream.txn(KV, Insert(1, (str(i), "v", None))) for i in range(3)]
    for txn in txns:
        feed(applier, txn)
    assert target_db.scalar("SELECT count(*) FROM t") == 0
    assert applier.pending_commit
    third = txns[-1][-1]
    assert isinstance(third, Commit)
    assert applier.flush_commit() == third.end_lsn
    assert target_db.scalar("SELECT count(*) FROM t") == 3
    xmins = rows(
        target_db,
        "SELECT xmin::text FROM t UNION SELECT xmin::text FROM cdc_tui.applied_position",
    )
    assert len(xmins) == 1  # rows and position written by one target transaction
    assert stored_position(target_db) == third.end_lsn


def test_a_group_of_batches_commits_once_it_holds_group_changes(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    kv_table(target_db)
    stream = Stream()
    with pytest.raises(ValueError, match="group_changes"):
        make_applier(target_db, conns, batch_changes=4, group_changes=2)
    applier = make_applier(
        target_db, conns, batch_changes=2, group_changes=6, batch_interval_s=3600
    )
    applier.write_initial_position(stream.next_lsn)
    txns = [
        stream.txn(KV, Insert(1, (str(2 * i), "v", None)), Insert(1, (str(2 * i + 1), "v", None)))
        for i in range(3)
    ]
    feed(applier, txns[0] + txns[1])  # 4 changes: two batches sent, the group not full
    assert target_db.scalar("SELECT count(*) FROM t") == 0
    assert applier.pending_commit
    feed(applier, txns[2])
    assert target_db.scalar("SELECT count(*) FROM t") == 6
    assert not applier.pending_commit
    assert stored_position(target_db) == applier.committed_lsn


def _mixed_history(stream: Stream) -> list[list[Message]]:
    """Transactions with inserts, updates, key updates and deletes over ids 0..199."""
    txns = [stream.txn(KV, *(Insert(1, (str(i), f"v{i}", "b")) for i in range(200)))]
    for round_ in range(6):
        body: list[Change] = []
        for i in range(round_, 200, 7):
            body.append(Update(1, None, None, (str(i), f"r{round_}", UNCHANGED)))
        for i in range(round_ + 3, 200, 29):
            body.append(Delete(1, (str(i), None, None), "K"))
            body.append(Insert(1, (str(i), f"back{round_}", "b")))
        body.append(Update(1, (str(1000 + round_ - 1) if round_ else "1", None, None), "K",
                           (str(1000 + round_), "key moved", "b")))  # fmt: skip
        txns.append(stream.txn(*body))
    return txns


def test_replay_after_crash_is_exactly_once(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    kv_table(target_db)
    target_db.execute("CREATE TABLE t_ref (id integer PRIMARY KEY, v text, big text)")
    txns = _mixed_history(Stream())
    everything = [m for txn in txns for m in txn]
    reference = make_applier(target_db, conns, [(T, TableRef("public", "t_ref"))], pipeline="ref")
    feed(reference, everything)
    reference.flush_commit()

    first = make_applier(target_db, conns, batch_changes=50)
    for txn in txns[:4]:
        feed(first, txn)
    first.flush_commit()
    feed(first, txns[4][:-1])  # crash in the middle of the fifth transaction
    conns[-1].close()
    committed_xmins = xmins(target_db)

    again = make_applier(target_db, conns, batch_changes=50)
    assert again.read_position() == first.committed_lsn
    feed(again, everything)
    again.flush_commit()
    assert checksum(target_db, "t") == checksum(target_db, "t_ref")
    # Rows only the skipped transactions wrote keep the transaction id of the first run.
    untouched = [i for i in committed_xmins if i % 7 == 6 and i % 29 not in (6, 7, 8)]
    kept = xmins(target_db)
    assert untouched and all(kept[i] == committed_xmins[i] for i in untouched)
    final_commit = txns[-1][-1]
    assert isinstance(final_commit, Commit)
    assert stored_position(target_db) == final_commit.end_lsn


def test_interleaved_long_and_short_transactions_survive_a_crash(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    """RELIABILITY 10: a long transaction that began before two short ones commits after them."""
    kv_table(target_db)
    stream = Stream()
    # The slot sends whole transactions in commit order: the long one after the short ones.
    short1 = stream.txn(KV, Insert(1, ("1", "s1", None)))
    short2 = stream.txn(Insert(1, ("2", "s2", None)))
    long_txn = stream.txn(*(Insert(1, (str(i), "long", None)) for i in range(100, 400)))
    short3 = stream.txn(Insert(1, ("3", "s3", None)))
    history = [*short1, *short2, *long_txn, *short3]

    first = make_applier(target_db, conns, batch_changes=100)
    feed(first, [*short1, *short2])
    first.flush_commit()
    feed(first, long_txn[:250])  # mid-way through the long one, some batches already flushed
    conns[-1].close()

    again = make_applier(target_db, conns, batch_changes=100)
    feed(again, history)
    again.flush_commit()
    assert target_db.scalar("SELECT count(*) FROM t") == 303
    assert rows(target_db, "SELECT v, count(*) FROM t GROUP BY v ORDER BY v") == [
        ("long", 300),
        ("s1", 1),
        ("s2", 1),
        ("s3", 1),
    ]


# -- errors and drift -----------------------------------------------------------------------


def test_rejected_change_names_table_key_and_lsn_and_commits_nothing(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    kv_table(target_db)
    target_db.execute("ALTER TABLE t ADD CONSTRAINT no_bad CHECK (v <> 'bad')")
    stream = Stream()
    applier = make_applier(target_db, conns, batch_interval_s=3600)
    good = stream.txn(KV, Insert(1, ("1", "ok", None)))
    feed(applier, good)
    bad = stream.txn(*(Insert(1, (str(i), "bad" if i == 7 else "ok", None)) for i in range(2, 12)))
    with pytest.raises(PermanentApplyError) as caught:
        feed(applier, bad)
        applier.flush_commit()
    err = caught.value
    begin = bad[0]
    assert isinstance(begin, Begin)
    assert (err.table, err.key, err.lsn) == (T, "id=7", begin.final_lsn)
    assert "no_bad" in err.message and "id=7" in err.message
    assert "public.t" in err.message
    # The batch, and the grouped transaction before it, were rolled back together.
    assert target_db.scalar("SELECT count(*) FROM t") == 0
    assert stored_position(target_db) is None
    # Replayed from the slot after the operator fixed the target, everything lands once.
    target_db.execute("ALTER TABLE t DROP CONSTRAINT no_bad")
    again = make_applier(target_db, conns)
    feed(again, [*good, *bad])
    again.flush_commit()
    assert target_db.scalar("SELECT count(*) FROM t") == 11


def test_an_over_long_value_is_rejected_never_truncated(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    target_db.execute("CREATE TABLE t (id integer PRIMARY KEY, v varchar(3), big text)")
    conn = target_conn(target_db)
    conns.append(conn)
    # Types with modifiers, as Step 0's plan gives them: the applier must not cast to them.
    types = {"id": "integer", "v": "character varying(3)", "big": "text"}
    mapping = {T: TargetTable(T, T, ("id", "v", "big"), ("id",), types)}
    applier = PgApplier(conn, "p", mapping)
    applier.ensure_position_table()
    with pytest.raises(PermanentApplyError, match="value too long") as caught:
        feed(
            applier, Stream().txn(KV, Insert(1, ("1", "abc", None)), Insert(1, ("2", "abcd", None)))
        )
        applier.flush_commit()
    assert caught.value.key == "id=2"
    assert target_db.scalar("SELECT count(*) FROM t") == 0


def test_lost_connection_is_retriable_and_replay_converges(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    kv_table(target_db)
    stream = Stream()
    txns = [stream.txn(KV, *(Insert(1, (str(i * 10 + j), "v", None)) for j in range(10)))
            for i in range(4)]  # fmt: skip
    applier = make_applier(target_db, conns, batch_changes=5)
    feed(applier, txns[0])
    applier.flush_commit()
    pid = conns[-1].info.backend_pid
    target_db.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(RetriableApplyError):
        feed(applier, txns[1])
    again = make_applier(target_db, conns, batch_changes=5)
    feed(again, [m for txn in txns for m in txn])
    again.flush_commit()
    assert target_db.scalar("SELECT count(*) FROM t") == 40


def test_added_column_is_added_on_the_target(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    kv_table(target_db)
    names = {(INT4, -1): "integer", (NUMERIC, (12 << 16 | 2) + 4): "numeric(12,2)"}
    stream = Stream()
    applier = make_applier(target_db, conns, type_namer=lambda oid, mod: names[(oid, mod)])
    wider = rel(1, "t", [*KV.columns, col("total", NUMERIC, typmod=(12 << 16 | 2) + 4)])
    txns = [
        stream.txn(KV, Insert(1, ("1", "a", None))),
        stream.txn(Insert(1, ("2", "b", None)), wider, Insert(1, ("3", "c", None, "1.50"))),
        stream.txn(Update(1, None, None, ("1", "a", UNCHANGED, "2.25"))),
    ]
    for txn in txns:
        feed(applier, txn)
    applier.flush_commit()
    assert rows(target_db, "SELECT id, total::text FROM t ORDER BY id") == [
        (1, "2.25"),
        (2, None),
        (3, "1.50"),
    ]
    assert (
        target_db.scalar(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'public.t'::regclass AND attname = 'total'"
        )
        == "numeric(12,2)"
    )
    assert applier.tables[T].columns == ("id", "v", "big", "total")
    # After a restart the slot re-sends the old Relation inside skipped transactions: no drift.
    history = [*txns, stream.txn(Insert(1, ("4", "d", None, "9.99")))]
    again = make_applier(target_db, conns, type_namer=lambda oid, mod: names[(oid, mod)])
    feed(again, [m for txn in history for m in txn])
    again.flush_commit()
    assert rows(target_db, "SELECT id, total::text FROM t WHERE id = 4") == [(4, "9.99")]


@pytest.mark.parametrize(
    ("changed", "detail"),
    [
        (rel(1, "t", [col("id", INT4, key=True), col("big")]), "column v dropped"),
        (rel(1, "t", [col("id", INT4, key=True), col("w"), col("big")]), "column v renamed to w"),
        (
            rel(1, "t", [col("id", INT4, key=True), col("v", INT4), col("big")]),
            "column v changed type from text to integer",
        ),
        (
            rel(1, "t", [col("id", INT4), col("v", key=True), col("big")]),
            "the source identifies rows by (v), the target key is (id)",
        ),
    ],
)
def test_other_schema_drift_stops_at_its_transaction(
    target_db: Database, conns: list[psycopg.Connection[Any]], changed: Relation, detail: str
) -> None:
    kv_table(target_db)
    names = {INT4: "integer", TEXT: "text"}
    stream = Stream()
    applier = make_applier(
        target_db, conns, batch_interval_s=3600, type_namer=lambda oid, _mod: names[oid]
    )
    feed(applier, stream.txn(KV, Insert(1, ("1", "a", None))))
    drifted = stream.txn(Insert(1, ("2", "b", None)), changed, Insert(1, ("3", "c", None)))
    with pytest.raises(SchemaDriftError) as caught:
        feed(applier, drifted)
    assert caught.value.message.startswith(f"schema drift on public.t: {detail}")
    begin = drifted[0]
    assert isinstance(begin, Begin)
    assert caught.value.lsn == begin.final_lsn
    assert target_db.scalar("SELECT count(*) FROM t") == 0  # the open group was rolled back


def test_unknown_table_is_ignored(
    target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    kv_table(target_db)
    other = rel(9, "not_replicated", [col("id", INT4, key=True)])
    applier = make_applier(target_db, conns)
    feed(applier, Stream().txn(other, Insert(9, ("1",)), KV, Insert(1, ("1", "a", None))))
    applier.flush_commit()
    assert target_db.scalar("SELECT count(*) FROM t") == 1


# -- a real source --------------------------------------------------------------------------


def test_real_pgoutput_stream_reproduces_the_source(
    source_db: Database, target_db: Database, conns: list[psycopg.Connection[Any]]
) -> None:
    from cdc_tui.engines.embedded.pgoutput import decode

    ddl = (
        "CREATE TABLE t (id integer PRIMARY KEY, n numeric, ts timestamptz, j jsonb, "
        "a integer[], b bytea, big text)"
    )
    source_db.execute(ddl)
    source_db.execute("ALTER TABLE t ALTER big SET STORAGE EXTERNAL")  # TOASTed, uncompressed
    target_db.execute(ddl)
    source_db.execute("CREATE PUBLICATION pub FOR TABLE t")
    source_db.execute("SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
    source_db.execute(
        "INSERT INTO t SELECT i, i / 7.0, '2024-01-01'::timestamptz + i * interval '1 hour', "
        "jsonb_build_object('i', i), ARRAY[i, NULL], decode(md5(i::text), 'hex'), "
        "repeat(md5(i::text), 500) FROM generate_series(1, 300) AS i"
    )
    source_db.execute("UPDATE t SET n = 'NaN' WHERE id % 10 = 0")  # big stays TOASTed: 'u'
    source_db.execute("UPDATE t SET id = id + 1000 WHERE id % 25 = 0")
    source_db.execute("DELETE FROM t WHERE id % 3 = 0")
    source_db.execute("BEGIN; INSERT INTO t (id) VALUES (5000); UPDATE t SET j = NULL; COMMIT")
    with source_db.admin() as src:
        src.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3")
        payloads = src.execute(
            "SELECT data FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, "
            "'proto_version', '1', 'publication_names', 'pub')"
        ).fetchall()
    messages = [decode(cast(bytes, row[0])) for row in payloads]
    assert any(isinstance(m, Update) and UNCHANGED in m.new for m in messages)
    applier = make_applier(target_db, conns, batch_changes=100)
    feed(applier, messages)
    applier.flush_commit()
    assert checksum(target_db, "t") == checksum(source_db, "t")
