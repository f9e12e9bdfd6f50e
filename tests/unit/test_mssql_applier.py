"""The SQL Server applier against a recording DB-API connection, standing in for a live server.

No SQL Server can run on this machine: `RecordingConnection` records what pymssql would send
(statements rendered by pymssql's own substitution), every commit and rollback, and raises real
pymssql exceptions where a test scripts a server error. The tests prove statement shapes and
parameters, transaction boundaries (data and position together, commits only at source
boundaries), skipping and idempotent replay, error classification and naming.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pymssql
import pytest
from pymssql import _mssql

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.apply_errors import (
    PermanentApplyError,
    RetriableApplyError,
    SchemaDriftError,
)
from cdc_tui.engines.embedded.messages import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    Message,
    Relation,
    RelationColumn,
    Truncate,
    Update,
)
from cdc_tui.runner.cdc import CdcStream
from cdc_tui.targets.mssql.applier import MssqlApplier
from cdc_tui.targets.mssql.ddl import position_table_batches
from cdc_tui.targets.mssql.dml import (
    POSITION_READ,
    POSITION_UPSERT,
    MssqlColumn,
    MssqlTable,
    TableSql,
    key_text,
)
from cdc_tui.targets.mssql.errors import ValueRejected
from cdc_tui.targets.mssql.server_errors import (
    RETRIABLE_ERROR_NUMBERS,
    error_reason,
    is_retriable,
)
from tests.unit import test_pgoutput as wire
from tests.unit.mssql_recording import RecordingConnection, server_error

PIPE = "orders-pipe"
T = TableRef("public", "t")
LOG = TableRef("public", "log")
TEXT, VARCHAR, INT4 = 25, 1043, 23
COMMIT_TIME = "2000-01-01T00:00:00+00:00"  # commit_micros 0


def _note(text: str) -> object:
    if text == "reject":
        raise ValueRejected("the text 'reject' is refused by this test's converter")
    return text


TABLE = MssqlTable(
    T,
    TableRef("dbo", "t"),
    (
        MssqlColumn("id", "int", int, INT4),
        MssqlColumn("name", "nvarchar(50)", str, VARCHAR),
        MssqlColumn("note", "nvarchar(max)", _note, TEXT),
    ),
    ("id",),
)
KEYLESS = MssqlTable(
    LOG,
    TableRef("dbo", "log"),
    (
        MssqlColumn("at", "datetime2(6)", str),
        MssqlColumn("msg", "nvarchar(200)", str),
        MssqlColumn("qty", "int", int),
    ),
    (),
)
CODES = MssqlTable(
    TableRef("public", "codes"),
    TableRef("dbo", "codes"),
    (MssqlColumn("code", "nvarchar(450)", str), MssqlColumn("v", "int", int)),
    ("code",),
)
TABLES = {T: TABLE, LOG: KEYLESS, CODES.source: CODES}


def rel_t(
    columns: tuple[tuple[str, int, int, bool], ...] = (
        ("id", INT4, -1, True),
        ("name", VARCHAR, 54, False),
        ("note", TEXT, -1, False),
    ),
    identity: str = "d",
    rid: int = 1,
) -> Relation:
    cols = tuple(RelationColumn(int(k), n, oid, mod) for n, oid, mod, k in columns)
    return Relation(rid, "public", "t", identity, cols)


REL_T = rel_t()
REL_LOG = Relation(
    2,
    "public",
    "log",
    "f",
    tuple(RelationColumn(0, n, oid, -1) for n, oid in (("at", 1114), ("msg", TEXT), ("qty", INT4))),
)
REL_CODES = Relation(
    3,
    "public",
    "codes",
    "d",
    (RelationColumn(1, "code", TEXT, -1), RelationColumn(0, "v", INT4, -1)),
)
REL_OTHER = Relation(9, "public", "other", "d", (RelationColumn(1, "id", INT4, -1),))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def conn() -> RecordingConnection:
    return RecordingConnection()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(conn: RecordingConnection, clock: Clock | None = None, **kw: Any) -> MssqlApplier:
    kw.setdefault("group_changes", 1)
    applier = MssqlApplier(conn, PIPE, TABLES, clock=clock or Clock(), **kw)
    conn.clear()  # the session settings batch has its own test
    return applier


def txn(applier: MssqlApplier, lsn: int, *messages: Message) -> None:
    """One source transaction: commit LSN `lsn`, end LSN `lsn + 8`."""
    applier.begin(Begin(lsn, 0, 1))
    for msg in messages:
        applier.apply(msg)
    applier.commit(Commit(0, lsn, lsn + 8, 0))


def ins(*values: str | None, rid: int = 1) -> Insert:
    return Insert(rid, values)


def position(lsn: int) -> str:
    """The rendered position upsert of a source transaction at `lsn`."""
    return (
        POSITION_UPSERT.replace("%s", f"N'{PIPE}'", 1)
        .replace("%s", str(lsn), 1)
        .replace("%s", str(lsn + 8), 1)
        .replace("%s", f"N'{COMMIT_TIME}'", 1)
    )


def data(conn: RecordingConnection) -> list[list[str]]:
    """Rendered data statements of each committed transaction that has any (position reads and
    upserts left out)."""
    out = []
    for stmts in conn.committed_rendered():
        mine = [s for s in stmts if "[cdc_tui].[applied_position]" not in s]
        if mine:
            out.append(mine)
    return out


UPSERT_1 = (
    "MERGE [dbo].[t] WITH (HOLDLOCK) AS t USING (VALUES (CAST(1 AS int), "
    "CAST(N'a' AS nvarchar(max)), CAST(NULL AS nvarchar(max)))) AS s ([id], [name], [note]) "
    "ON t.[id] = s.[id] WHEN MATCHED THEN UPDATE SET [name] = s.[name], [note] = s.[note] "
    "WHEN NOT MATCHED THEN INSERT ([id], [name], [note]) VALUES (s.[id], s.[name], s.[note]);"
)


# -- session and position ------------------------------------------------------------------------


def test_session_options_are_set_and_committed_first(conn: RecordingConnection) -> None:
    MssqlApplier(conn, PIPE, TABLES)
    assert conn.kinds() == ["execute", "commit"]
    settings = conn.log[0].sql
    assert "SET XACT_ABORT ON;" in settings and "SET ANSI_WARNINGS ON;" in settings


def test_read_position_when_none_is_stored(conn: RecordingConnection) -> None:
    applier = make(conn)
    assert applier.read_position() is None
    assert applier.committed_lsn is None
    assert conn.kinds() == ["execute", "commit"]
    (stmt,) = conn.log[0].statements
    assert stmt.sql == POSITION_READ and stmt.params == (PIPE,)
    assert stmt.rendered.endswith(f"WHERE [pipeline] = CAST(N'{PIPE}' AS nvarchar(max));")


def test_read_position_returns_the_stored_end_lsn(conn: RecordingConnection) -> None:
    conn.positions[PIPE] = (90, 100)
    applier = make(conn)
    assert applier.read_position() == 100
    assert applier.committed_lsn == 100


def test_write_initial_position_commits_alone(conn: RecordingConnection) -> None:
    applier = make(conn)
    applier.write_initial_position(0x1000)
    assert conn.committed_rendered() == [
        [
            POSITION_UPSERT.replace("%s", f"N'{PIPE}'", 1)
            .replace("%s", "4096", 2)
            .replace("%s", "NULL", 1)
        ]
    ]
    assert applier.committed_lsn == 0x1000
    assert conn.positions[PIPE] == (0x1000, 0x1000)


def test_advance_position_moves_forward_only_and_never_mid_group(
    conn: RecordingConnection, clock: Clock
) -> None:
    applier = make(conn)
    applier.advance_position(500)
    assert applier.committed_lsn == 500 and conn.positions[PIPE] == (500, 500)
    applier.advance_position(400)
    applier.advance_position(500)
    assert len(conn.committed()) == 1
    applier.advance_position(600)
    assert conn.positions[PIPE] == (600, 600)
    grouped = make(conn, clock, group_changes=100)
    txn(grouped, 700, REL_T, ins("1", "a", None))
    assert grouped.pending_commit
    with pytest.raises(RuntimeError, match="while source transactions are being applied"):
        grouped.advance_position(900)


def test_ensure_position_table_runs_step_0_batches(conn: RecordingConnection) -> None:
    make(conn).ensure_position_table()
    assert conn.committed() == [position_table_batches()]


# -- transaction boundaries ----------------------------------------------------------------------


def test_data_and_position_commit_in_one_transaction(conn: RecordingConnection) -> None:
    applier = make(conn)
    txn(applier, 100, REL_T, ins("1", "a", None))
    assert conn.kinds() == ["execute", "commit", "execute", "commit"]  # position read, then data
    assert conn.committed_rendered()[1] == [UPSERT_1, position(100)]
    # One round trip: the change and the position go as one batch.
    assert len(conn.log[2].statements) == 2
    assert applier.committed_lsn == 108 and not applier.pending_commit
    assert applier.changes_applied == 1
    assert applier.last_commit_time == datetime(2000, 1, 1, tzinfo=UTC)


def test_commit_happens_only_at_a_source_boundary(conn: RecordingConnection) -> None:
    applier = make(conn, group_changes=2, batch_statements=2)
    applier.begin(Begin(100, 0, 1))
    applier.apply(REL_T)
    for i in range(1, 6):
        applier.change(ins(str(i), f"n{i}", None))
        assert applier.committed_lsn is None
    # Batches went out mid-transaction, but nothing committed before the source COMMIT.
    assert conn.kinds() == ["execute", "commit", "execute", "execute"]
    applier.commit(Commit(0, 100, 108, 0))
    assert conn.kinds()[-2:] == ["execute", "commit"]
    (committed,) = conn.committed_rendered()[1:]
    assert len(committed) == 6 and committed[-1] == position(100)
    assert applier.committed_lsn == 108


def test_several_source_transactions_share_one_target_transaction(
    conn: RecordingConnection, clock: Clock
) -> None:
    applier = make(conn, clock, group_changes=3)
    txn(applier, 100, REL_T, ins("1", "a", None))
    assert applier.pending_commit and applier.committed_lsn is None
    assert "commit" not in conn.kinds()[2:]
    txn(applier, 200, ins("2", "b", None), ins("3", "c", None))
    (group,) = conn.committed_rendered()[1:]
    # Three changes, then the position of the last source transaction only.
    assert len(group) == 4 and group[-1] == position(200)
    assert applier.committed_lsn == 208 and applier.changes_applied == 3


def test_the_batch_interval_commits_a_group_that_is_not_full(
    conn: RecordingConnection, clock: Clock
) -> None:
    applier = make(conn, clock, group_changes=1000, batch_interval_s=0.5)
    txn(applier, 100, REL_T, ins("1", "a", None))
    clock.now = 0.4
    txn(applier, 200, ins("2", "b", None))
    assert applier.committed_lsn is None
    clock.now = 0.6
    txn(applier, 300, ins("3", "c", None))
    assert applier.committed_lsn == 308
    assert len(conn.committed()[1]) == 4


def test_flush_commit_commits_pending_work_but_never_mid_transaction(
    conn: RecordingConnection, clock: Clock
) -> None:
    applier = make(conn, clock, group_changes=100)
    txn(applier, 100, REL_T, ins("1", "a", None))
    applier.begin(Begin(200, 0, 2))
    applier.change(ins("2", "b", None))
    assert applier.flush_commit() is None
    assert conn.kinds().count("commit") == 1  # only the position read's
    applier.commit(Commit(0, 200, 208, 0))
    assert applier.flush_commit() == 208
    assert conn.committed_rendered()[1][-1] == position(200)
    assert applier.flush_commit() == 208  # nothing pending: no empty commit
    assert conn.kinds().count("commit") == 2


# -- skipping and replay -------------------------------------------------------------------------


def test_transactions_below_the_stored_position_are_skipped(conn: RecordingConnection) -> None:
    conn.positions[PIPE] = (90, 100)
    applier = make(conn)
    txn(applier, 50, REL_T, ins("1", "a", None))
    txn(applier, 92, ins("2", "b", None))
    assert conn.kinds() == ["execute", "commit"]  # only the position read
    txn(applier, 100, REL_T, ins("3", "c", None))
    assert data(conn) == [[UPSERT_1.replace("CAST(1 AS", "CAST(3 AS").replace("N'a'", "N'c'")]]
    assert applier.committed_lsn == 108


def test_a_failed_commit_is_replayed_and_applied_once(conn: RecordingConnection) -> None:
    applier = make(conn, group_changes=2)
    txn(applier, 100, REL_T, ins("1", "a", None))
    conn.fail_commit(pymssql.OperationalError("Cannot commit transaction: 20047"))
    with pytest.raises(RetriableApplyError) as caught:
        txn(applier, 200, ins("2", "b", None))
    assert caught.value.lsn == 200
    assert applier.committed_lsn is None and not applier.pending_commit
    # The runner reconnects and the slot re-sends both; the position is read again first.
    txn(applier, 100, REL_T, ins("1", "a", None))
    txn(applier, 200, ins("2", "b", None))
    reads = [e for e in conn.log if e.sql == POSITION_READ]
    assert len(reads) == 2
    assert len(data(conn)) == 1 and len(data(conn)[0]) == 2
    # A crash after that commit: a new applier skips what the target holds.
    again = make(conn)  # (clears the log)
    txn(again, 100, REL_T, ins("1", "a", None))
    txn(again, 200, ins("2", "b", None))
    txn(again, 300, ins("3", "c", None))
    assert data(conn) == [[UPSERT_1.replace("CAST(1 AS", "CAST(3 AS").replace("N'a'", "N'c'")]]


def test_a_commit_that_went_through_before_failing_is_not_applied_twice(
    conn: RecordingConnection,
) -> None:
    applier = make(conn)
    applier.read_position()
    conn.fail_commit(pymssql.OperationalError("Cannot begin transaction: 20006"), committed=True)
    with pytest.raises(RetriableApplyError):
        txn(applier, 100, REL_T, ins("1", "a", None))
    assert applier.committed_lsn is None  # COMMIT did not return: nothing acknowledged
    txn(applier, 100, REL_T, ins("1", "a", None))
    assert applier.committed_lsn == 108  # the stored position, re-read
    assert len(data(conn)) == 1


# -- change shapes -------------------------------------------------------------------------------


def test_unchanged_toast_columns_are_left_out(conn: RecordingConnection) -> None:
    applier = make(conn)
    txn(applier, 100, REL_T, Update(1, None, None, ("1", "renamed", UNCHANGED)))
    txn(applier, 200, Update(1, None, None, ("1", UNCHANGED, UNCHANGED)))
    assert data(conn) == [
        [
            "UPDATE [dbo].[t] SET [name] = CAST(N'renamed' AS nvarchar(max)) "
            "WHERE [id] = CAST(1 AS int);"
        ],
    ]
    # The second update sent nothing to change: only its position was written.
    assert conn.committed_rendered()[-1] == [position(200)]


def test_an_update_of_a_whole_row_is_an_upsert(conn: RecordingConnection) -> None:
    applier = make(conn)
    txn(applier, 100, REL_T, Update(1, None, None, ("1", "a", None)))
    txn(applier, 200, Update(1, ("1", "x", "y"), "O", ("1", "a", None)))
    assert data(conn) == [[UPSERT_1], [UPSERT_1]]


def test_a_key_change_updates_the_key_where_the_old_key_is(conn: RecordingConnection) -> None:
    applier = make(conn)
    txn(applier, 100, REL_T, Update(1, ("1", None, None), "K", ("2", "b", UNCHANGED)))
    txn(applier, 200, Update(1, ("2", "b", "n"), "O", ("3", "b", "n")))
    assert data(conn) == [
        [
            "UPDATE [dbo].[t] SET [id] = CAST(2 AS int), [name] = CAST(N'b' AS nvarchar(max)) "
            "WHERE [id] = CAST(1 AS int);"
        ],
        [
            "UPDATE [dbo].[t] SET [id] = CAST(3 AS int), [name] = CAST(N'b' AS nvarchar(max)), "
            "[note] = CAST(N'n' AS nvarchar(max)) WHERE [id] = CAST(2 AS int);"
        ],
    ]


def test_deletes_use_the_key_of_the_old_row(conn: RecordingConnection) -> None:
    applier = make(conn)
    txn(applier, 100, REL_T, Delete(1, ("7", None, None), "K"))
    txn(applier, 200, Delete(1, ("8", "whole", "row"), "O"))
    assert data(conn) == [
        ["DELETE FROM [dbo].[t] WHERE [id] = CAST(7 AS int);"],
        ["DELETE FROM [dbo].[t] WHERE [id] = CAST(8 AS int);"],
    ]
    (stmt,) = conn.log[-2].statements[:1]
    assert "whole" not in stmt.rendered  # the old row's other values are not sent


def test_a_change_without_its_key_is_refused(conn: RecordingConnection) -> None:
    applier = make(conn)
    with pytest.raises(PermanentApplyError, match="without the value of its key") as caught:
        txn(applier, 100, REL_T, Delete(1, (None, None, None), "K"))
    assert caught.value.table == TableRef("dbo", "t") and caught.value.lsn == 100


def test_keyless_tables_insert_plainly_and_match_one_row_on_old_values(
    conn: RecordingConnection,
) -> None:
    applier = make(conn)
    at = "2024-01-01 00:00:00"
    txn(applier, 100, REL_LOG, ins(at, None, "4", rid=2))
    txn(applier, 200, Update(2, (at, None, "4"), "O", (at, None, "5")))
    txn(applier, 300, Delete(2, (at, None, "5"), "O"))
    inserted, updated, deleted = (d[0] for d in data(conn))
    assert inserted == (
        "INSERT INTO [dbo].[log] ([at], [msg], [qty]) VALUES (CAST(N'2024-01-01 00:00:00' AS "
        "datetime2(6)), CAST(NULL AS nvarchar(max)), CAST(4 AS int));"
    )
    match = (
        "FROM [dbo].[log] AS t JOIN (VALUES (CAST(N'2024-01-01 00:00:00' AS datetime2(6)), "
        "CAST(NULL AS nvarchar(max)), CAST({qty} AS int))) AS s ([at], [msg], [qty]) "
        "ON (t.[at] = s.[at] OR (t.[at] IS NULL AND s.[at] IS NULL)) "
        "AND ((t.[msg] = s.[msg] AND DATALENGTH(t.[msg]) = DATALENGTH(s.[msg])) "
        "OR (t.[msg] IS NULL AND s.[msg] IS NULL)) "
        "AND (t.[qty] = s.[qty] OR (t.[qty] IS NULL AND s.[qty] IS NULL));"
    )
    assert updated == (
        "UPDATE TOP (1) t SET [at] = CAST(N'2024-01-01 00:00:00' AS datetime2(6)), "
        "[msg] = CAST(NULL AS nvarchar(max)), [qty] = CAST(5 AS int) " + match.format(qty=4)
    )
    assert deleted == "DELETE TOP (1) t " + match.format(qty=5)


def test_a_keyless_change_without_its_old_values_is_refused(conn: RecordingConnection) -> None:
    applier = make(conn)
    with pytest.raises(PermanentApplyError, match="without its old row"):
        txn(applier, 100, REL_LOG, Update(2, None, None, ("x", None, "1")))
    with pytest.raises(PermanentApplyError, match="without its old values"):
        txn(applier, 200, REL_LOG, Delete(2, (UNCHANGED, UNCHANGED, UNCHANGED), "O"))


def test_truncate_of_replicated_tables_joins_the_transaction(conn: RecordingConnection) -> None:
    applier = make(conn)
    txn(
        applier,
        100,
        REL_T,
        REL_OTHER,
        ins("1", "a", None),
        Truncate((1, 9), cascade=False, restart_identity=False),
    )
    assert conn.committed_rendered()[1] == [UPSERT_1, "TRUNCATE TABLE [dbo].[t];", position(100)]


def test_changes_of_tables_outside_the_pipeline_are_ignored(conn: RecordingConnection) -> None:
    applier = make(conn)
    txn(applier, 100, REL_OTHER, ins("1", rid=9), Truncate((9,), False, False))
    assert applier.pending_commit  # no change counted toward the group
    assert applier.flush_commit() == 108
    assert conn.committed_rendered()[1] == [position(100)]
    assert applier.changes_applied == 0


def test_relation_columns_map_by_name_whatever_their_order(conn: RecordingConnection) -> None:
    applier = make(conn)
    shuffled = rel_t(
        (("note", TEXT, -1, False), ("id", INT4, -1, True), ("name", VARCHAR, 54, False))
    )
    txn(applier, 100, shuffled, ins(None, "1", "a"))
    assert data(conn)[0] == [UPSERT_1]


# -- failures ------------------------------------------------------------------------------------


def test_a_refused_change_names_table_key_and_lsn_but_not_the_row(
    conn: RecordingConnection,
) -> None:
    applier = make(conn)
    conn.fail(
        server_error(
            2627,
            "Violation of PRIMARY KEY constraint 'PK_t'. Cannot insert duplicate key in object "
            "'dbo.t'. The duplicate key value is (7).",
            pymssql.IntegrityError,
        ),
        when="CAST(7 AS int)",
        once=False,
    )
    with pytest.raises(PermanentApplyError) as caught:
        txn(applier, 0x2000, REL_T, ins("7", "secret-name", "secret-note"))
    err = caught.value
    assert (err.table, err.key, err.lsn) == (TableRef("dbo", "t"), "id=7", 0x2000)
    assert err.reason.startswith("SQL Server error 2627: Violation of PRIMARY KEY constraint")
    assert "DB-Lib" not in err.message
    assert "to dbo.t (key id=7) from the source transaction at LSN 0/2000" in err.message
    assert "secret" not in err.message
    assert conn.kinds()[-1] == "rollback" and "commit" not in conn.kinds()[2:]


def test_the_failing_change_inside_a_batch_is_found_by_replaying_one_at_a_time(
    conn: RecordingConnection, clock: Clock
) -> None:
    applier = make(conn, clock, group_changes=100, batch_statements=100)
    conn.fail(server_error(547, "The INSERT statement conflicted with the FOREIGN KEY "
                           "constraint \"fk_t\"."), when="N'bad'", once=False)  # fmt: skip
    txn(applier, 100, REL_T, ins("1", "a", None), ins("2", "b", None))
    with pytest.raises(PermanentApplyError) as caught:
        txn(applier, 200, ins("3", "c", None), ins("4", "bad", None), ins("5", "e", None))
        applier.flush_commit()
    assert (caught.value.key, caught.value.lsn) == ("id=4", 200)
    assert caught.value.table == TableRef("dbo", "t")
    # The batch of five changes and the position failed; the group was rolled back, replayed
    # one statement at a time up to the failing one, and rolled back again.
    sizes = [(e.kind, len(e.statements)) for e in conn.log[2:]]
    assert sizes == [("failed", 6), ("rollback", 0)] + [("execute", 1)] * 3 + [
        ("failed", 1),
        ("rollback", 0),
    ]
    assert "commit" not in conn.kinds()[2:]


def test_diagnosis_replays_earlier_batches_of_the_group_before_the_refused_one(
    conn: RecordingConnection, clock: Clock
) -> None:
    applier = make(conn, clock, group_changes=100, batch_statements=2)
    conn.fail(server_error(2628, "String or binary data would be truncated in table 'dbo.t', "
                           "column 'name'."), when="N'bad'", once=False)  # fmt: skip
    txn(applier, 100, REL_T, ins("1", "a", None), ins("2", "b", None))
    with pytest.raises(PermanentApplyError) as caught:
        txn(applier, 200, ins("3", "c", None), ins("4", "bad", None))
    assert (caught.value.key, caught.value.lsn) == ("id=4", 200)
    sizes = [(e.kind, len(e.statements)) for e in conn.log[2:]]
    assert sizes == [
        ("execute", 2),  # ids 1 and 2
        ("failed", 2),  # ids 3 and 4
        ("rollback", 0),
        ("execute", 2),  # ids 1 and 2 again: the state the refused batch ran against
        ("execute", 1),
        ("failed", 1),
        ("rollback", 0),
    ]


def test_past_the_replay_limit_only_the_refused_batch_is_replayed(
    conn: RecordingConnection, clock: Clock
) -> None:
    applier = make(conn, clock, group_changes=100, batch_statements=2, replay_limit=1)
    conn.fail(server_error(8152, "String or binary data would be truncated."), when="N'bad'",
              once=False)  # fmt: skip
    txn(applier, 100, REL_T, ins("1", "a", None), ins("2", "b", None))
    with pytest.raises(PermanentApplyError) as caught:
        txn(applier, 200, ins("3", "c", None), ins("4", "bad", None))
    assert caught.value.key == "id=4"
    assert [(e.kind, len(e.statements)) for e in conn.log[4:]] == [
        ("rollback", 0),
        ("execute", 1),
        ("failed", 1),
        ("rollback", 0),
    ]


def test_a_retriable_error_is_not_diagnosed_and_resets_the_applier(
    conn: RecordingConnection, clock: Clock
) -> None:
    applier = make(conn, clock, group_changes=100, batch_statements=2)
    conn.fail(server_error(1205, "Transaction (Process ID 61) was deadlocked on lock resources "
                           "with another process and has been chosen as the deadlock victim."),
              nth=2)  # fmt: skip
    applier.begin(Begin(100, 0, 1))
    applier.apply(REL_T)
    applier.change(ins("1", "a", None))
    with pytest.raises(RetriableApplyError) as caught:
        applier.change(ins("2", "b", None))
    assert caught.value.lsn == 100 and "1205" in caught.value.reason
    assert conn.kinds()[-2:] == ["failed", "rollback"]
    # Reset: the next begin reads the position again and starts a fresh group.
    txn(applier, 100, REL_T, ins("1", "a", None), ins("2", "b", None))
    applier.flush_commit()
    assert conn.kinds().count("execute") == 4  # two reads, one batch of 2, one with the position
    assert applier.committed_lsn == 108


def test_a_connection_that_cannot_roll_back_is_retriable(
    conn: RecordingConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    applier = make(conn)
    conn.fail(server_error(2627, "Violation of PRIMARY KEY constraint"), once=False,
              when="MERGE [dbo]")  # fmt: skip

    def broken() -> None:
        # pymssql's rollback re-raises _mssql's own exception, not a DB-API one.
        raise _mssql.MSSQLDatabaseException((20047, b"DBPROCESS is dead or not enabled"))

    monkeypatch.setattr(conn, "rollback", broken)
    with pytest.raises(RetriableApplyError):
        txn(applier, 100, REL_T, ins("1", "a", None))


def test_a_rejected_value_names_table_key_lsn_and_column(conn: RecordingConnection) -> None:
    applier = make(conn, group_changes=100)
    txn(applier, 100, REL_T, ins("1", "a", None))
    with pytest.raises(PermanentApplyError) as caught:
        txn(applier, 200, ins("5", "secret-name", "reject"))
    err = caught.value
    assert (err.table, err.key, err.lsn) == (TableRef("public", "t"), "id=5", 200)
    assert "cannot be written to [dbo].[t]" in err.message and "resync" in err.message
    assert err.reason == "column note: the text 'reject' is refused by this test's converter"
    assert "secret" not in err.message
    assert conn.kinds()[-1] == "rollback"
    assert not applier.pending_commit  # the first transaction's group was rolled back too
    txn(applier, 100, REL_T, ins("1", "a", None))
    assert [e.sql for e in conn.log].count(POSITION_READ) == 2


def test_trailing_space_keys_collide_with_a_duplicate_key_error(conn: RecordingConnection) -> None:
    applier = make(conn)
    txn(applier, 100, REL_CODES, ins("a", "1", rid=3))
    assert "DATALENGTH(t.[code]) = DATALENGTH(s.[code])" in data(conn)[0][0]
    conn.fail(server_error(2627, "Violation of PRIMARY KEY constraint 'PK_codes'. Cannot insert "
                           "duplicate key in object 'dbo.codes'. The duplicate key value is (a )."),
              when="N'a '", once=False)  # fmt: skip
    with pytest.raises(PermanentApplyError) as caught:
        txn(applier, 200, REL_CODES, ins("a ", "2", rid=3))
    assert caught.value.key == "code=a "


@pytest.mark.parametrize(
    "number", [1205, 1222, -2, 233, 10053, 10054, 40501, 40613, 49918, 20003, 20047]
)
def test_transient_error_numbers_are_retriable(number: int) -> None:
    assert is_retriable(server_error(number, "busy"))
    assert number in RETRIABLE_ERROR_NUMBERS


@pytest.mark.parametrize(
    ("number", "cls"),
    [
        (2627, pymssql.IntegrityError),
        (2601, pymssql.IntegrityError),
        (547, pymssql.IntegrityError),
        (515, pymssql.IntegrityError),
        (8152, pymssql.OperationalError),
        (2628, pymssql.OperationalError),
        (245, pymssql.OperationalError),
        (8115, pymssql.OperationalError),
        (208, pymssql.ProgrammingError),
        (207, pymssql.ProgrammingError),
        (18456, pymssql.OperationalError),  # login failed: configuration, not weather
        (4060, pymssql.OperationalError),
    ],
)
def test_refusals_are_permanent(number: int, cls: type[pymssql.Error]) -> None:
    assert not is_retriable(server_error(number, "refused", cls))


def test_errors_without_a_number_go_by_class() -> None:
    assert is_retriable(pymssql.OperationalError("Cannot commit transaction: x"))
    assert is_retriable(pymssql.InterfaceError("Connection is closed."))
    assert not is_retriable(pymssql.ProgrammingError("bad"))
    assert not is_retriable(pymssql.DataError("bad"))
    assert error_reason(pymssql.InterfaceError("Connection is closed.")) == "Connection is closed"


def test_a_deadlock_through_the_applier_is_retriable(conn: RecordingConnection) -> None:
    applier = make(conn)
    conn.fail(server_error(1205, "deadlocked"), when="MERGE [dbo]")
    with pytest.raises(RetriableApplyError, match="LSN 0/64"):
        txn(applier, 100, REL_T, ins("1", "a", None))


def test_key_text_is_shown_as_postgresql_does() -> None:
    two = MssqlTable(T, T, (MssqlColumn("a", "int", int), MssqlColumn("b c", "int", int)),
                     ("a", "b c"))  # fmt: skip
    assert key_text(two, ("1", None)) == '(a, "b c")=(1, NULL)'
    assert key_text(KEYLESS, ()) is None


# -- schema drift --------------------------------------------------------------------------------

DRIFTS = {
    "added": (
        rel_t((("id", INT4, -1, True), ("name", VARCHAR, 54, False), ("note", TEXT, -1, False),
               ("extra", TEXT, -1, False))),
        'column "extra" added on the source; the SQL Server target does not follow source DDL: '
        "add it to [dbo].[t] or resync the table",
    ),
    "dropped": (
        rel_t((("id", INT4, -1, True), ("name", VARCHAR, 54, False))),
        'column "note" dropped on the source; the SQL Server target does not follow source DDL: '
        "drop it from [dbo].[t] or resync the table",
    ),
    "renamed": (
        rel_t((("id", INT4, -1, True), ("name", VARCHAR, 54, False), ("memo", TEXT, -1, False))),
        'column "note" renamed to "memo" on the source; the SQL Server target does not follow '
        "source DDL: rename it on [dbo].[t] or resync the table",
    ),
    "retyped": (
        rel_t((("id", 20, -1, True), ("name", VARCHAR, 54, False), ("note", TEXT, -1, False))),
        'column "id" changed type on the source (from type oid 23 to type oid 20); the SQL '
        "Server target does not follow source DDL: change the column on [dbo].[t] or resync "
        "the table",
    ),
    "rekeyed": (
        rel_t((("id", INT4, -1, False), ("name", VARCHAR, 54, True), ("note", TEXT, -1, False))),
        'the source identifies rows by ("name") and the SQL Server target has ("id"); the SQL '
        "Server target does not follow source DDL: change the target key or resync the table",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", DRIFTS)
def test_schema_drift_stops_at_the_relation(conn: RecordingConnection, case: str) -> None:
    relation, detail = DRIFTS[case]
    applier = make(conn)
    applier.begin(Begin(0x300, 0, 1))
    with pytest.raises(SchemaDriftError) as caught:
        applier.relation(relation)
    err = caught.value
    assert (err.table, err.lsn, err.detail) == (T, 0x300, detail)
    assert err.message.startswith(f"schema drift on public.t: {detail} (source transaction")
    assert conn.kinds()[-1] == "rollback"


def test_a_type_modifier_change_between_relations_is_drift(conn: RecordingConnection) -> None:
    applier = make(conn)
    txn(applier, 100, REL_T, ins("1", "a", None))
    txn(applier, 200, REL_T)  # the same Relation again (as before a TRUNCATE) is no drift
    widened = rel_t(
        (("id", INT4, -1, True), ("name", VARCHAR, 104, False), ("note", TEXT, -1, False))
    )
    with pytest.raises(SchemaDriftError, match="from type oid 1043 with modifier 54 to type oid "
                       "1043 with modifier 104"):  # fmt: skip
        txn(applier, 300, widened)


def test_a_relation_in_a_skipped_transaction_is_checked_at_first_use(
    conn: RecordingConnection,
) -> None:
    conn.positions[PIPE] = (400, 500)
    applier = make(conn)
    dropped, _ = DRIFTS["dropped"]
    txn(applier, 100, dropped, ins("1", "a"))  # skipped: neither checked nor applied
    with pytest.raises(SchemaDriftError, match='column "note" dropped'):
        txn(applier, 600, ins("2", "b"))


# -- driven by the Step 2 stream ----------------------------------------------------------------


class FakeReplication:
    """The slot side of CdcStream: hands out pgoutput payloads and records acknowledgements."""

    def __init__(self, batches: list[list[bytes]], conn: RecordingConnection) -> None:
        self.batches = batches
        self.conn = conn
        self.acknowledged_lsn = 0
        self.server_wal_end = 0
        self.acks: list[int] = []

    def read_payloads(self, timeout: float) -> list[bytes]:
        return self.batches.pop(0) if self.batches else []

    def acknowledge(self, lsn: int) -> None:
        # Acknowledged only once the target holds it.
        assert self.conn.positions[PIPE][1] >= lsn
        self.acknowledged_lsn = lsn
        self.acks.append(lsn)


def _stream_payloads() -> Iterator[list[bytes]]:
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    rel = wire.relation(
        1, "public", "t", "d",
        wire.column(1, "id", INT4, -1), wire.column(0, "name", VARCHAR, 54),
        wire.column(0, "note", TEXT, -1),
    )  # fmt: skip
    yield [wire.begin(0x100, moment, 1), rel, wire.insert(1, "1", "a", None)]
    yield [wire.commit(0, 0x100, 0x108, moment)]
    yield [wire.begin(0x200, moment, 2), wire.insert(1, "2", "b", "n")]
    yield [wire.commit(0, 0x200, 0x208, moment)]


def test_cdc_stream_drives_the_applier_and_acknowledges_after_commit(
    conn: RecordingConnection,
) -> None:
    applier = make(conn, group_changes=1000)
    repl = FakeReplication(list(_stream_payloads()), conn)
    stream = CdcStream(
        repl,  # type: ignore[arg-type]
        applier,  # type: ignore[arg-type]
        should_stop=lambda: not repl.batches,
        on_metrics=lambda metrics: None,
        start_lsn=0,
    )
    stream.run()
    assert repl.acks[-1] == 0x208
    assert stream.metrics.changes_applied == 2
    assert sum(len(d) for d in data(conn)) == 2


def test_a_batch_is_rendered_by_pymssql_one_statement_at_a_time(
    conn: RecordingConnection,
) -> None:
    applier = make(conn, group_changes=100)
    tricky = "50%s off, it's %d%% 'quoted'"
    txn(applier, 100, REL_T, ins("1", tricky, None), ins("2", "plain", None))
    applier.flush_commit()
    (batch,) = [b for b in conn.batches() if len(b) > 1]
    # Sent without parameters, so nothing in the values is taken for a placeholder.
    assert [s.params for s in batch] == [(), (), ()]
    expected = _mssql.substitute_params(TableSql(TABLES[T]).upsert(), (1, tricky, None)).decode()
    assert batch[0].rendered == expected
    assert "N'50%s off, it''s %d%% ''quoted'''" in batch[0].rendered
