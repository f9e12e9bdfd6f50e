"""The applier's pure parts: SQL composition, batch planning, drift checks, error classes."""

from __future__ import annotations

import re

import psycopg
import pytest
from psycopg import errors

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.apply_errors import (
    PermanentApplyError,
    RetriableApplyError,
    SchemaDriftError,
    classify,
    is_retriable,
)
from cdc_tui.engines.embedded.apply_ops import Op, OpKind, Pending
from cdc_tui.engines.embedded.apply_plan import plan
from cdc_tui.engines.embedded.apply_sql import (
    TableShape,
    add_column_sql,
    delete_sql,
    patch_sql,
    row_delete_sql,
    row_update_sql,
    truncate_sql,
    upsert_sql,
)
from cdc_tui.engines.embedded.messages import (
    UNCHANGED,
    Delete,
    Insert,
    Relation,
    RelationColumn,
    Truncate,
    Update,
)
from cdc_tui.engines.embedded.target_table import TargetTable, check_relation

T = TableRef("public", "t")
KV = TableShape(T, ("id", "v", "big"), ("integer", "text", "text"), (0,))
WEIRD = TableShape(
    TableRef("Mixed Case", 'x"; DROP TABLE y; --'),
    ("select", 'weird"quote', "bits"),
    ("integer", "jsonb", '"bit"'),
    (0,),
)
KEYLESS = TableShape(TableRef("public", "f"), ("a", "j"), ("integer", "json"), ())


def text(statement: psycopg.sql.Composable) -> str:
    return statement.as_string(None)


# -- SQL ------------------------------------------------------------------------------------


def test_upsert_casts_each_json_string_to_the_column_type_and_updates_on_conflict() -> None:
    assert text(upsert_sql(KV)) == (
        'INSERT INTO "public"."t" ("id", "v", "big") SELECT "_cdc_v"."c0"::integer, '
        '"_cdc_v"."c1"::text, "_cdc_v"."c2"::text FROM (SELECT "_cdc_r" '
        'OPERATOR(pg_catalog.->>) 0 AS "c0", "_cdc_r" OPERATOR(pg_catalog.->>) 1 AS "c1", '
        '"_cdc_r" OPERATOR(pg_catalog.->>) 2 AS "c2" FROM '
        'pg_catalog.jsonb_array_elements(%b::pg_catalog.jsonb) AS "_cdc_r") AS "_cdc_v" '
        'ON CONFLICT ("id") DO UPDATE SET "v" = EXCLUDED."v", "big" = EXCLUDED."big"'
    )


def test_identifiers_are_quoted_never_interpolated() -> None:
    rendered = text(upsert_sql(WEIRD))
    assert '"Mixed Case"."x""; DROP TABLE y; --"' in rendered
    assert '"weird""quote" = EXCLUDED."weird""quote"' in rendered
    assert '"_cdc_v"."c2"::"bit"' in rendered
    assert text(add_column_sql(WEIRD.target, "new col", "numeric(12,2)")) == (
        'ALTER TABLE "Mixed Case"."x""; DROP TABLE y; --" ADD COLUMN "new col" numeric(12,2)'
    )


def test_keyless_and_all_key_tables_insert_without_updating() -> None:
    assert "ON CONFLICT" not in text(upsert_sql(KEYLESS))
    all_key = TableShape(T, ("a", "b"), ("integer", "integer"), (0, 1))
    assert text(upsert_sql(all_key)).endswith('ON CONFLICT ("a", "b") DO NOTHING')


def test_delete_and_patch_find_rows_by_the_key_columns_first() -> None:
    assert text(delete_sql(KV)) == (
        'DELETE FROM "public"."t" AS "_cdc_t" USING (SELECT "_cdc_r" '
        'OPERATOR(pg_catalog.->>) 0 AS "c0" FROM '
        'pg_catalog.jsonb_array_elements(%b::pg_catalog.jsonb) AS "_cdc_r") AS "_cdc_v" '
        'WHERE "_cdc_t"."id" = "_cdc_v"."c0"::integer'
    )
    assert text(patch_sql(KV, (0, 2))) == (
        'UPDATE "public"."t" AS "_cdc_t" SET "id" = "_cdc_v"."c1"::integer, '
        '"big" = "_cdc_v"."c2"::text FROM (SELECT "_cdc_r" OPERATOR(pg_catalog.->>) 0 AS "c0", '
        '"_cdc_r" OPERATOR(pg_catalog.->>) 1 AS "c1", "_cdc_r" OPERATOR(pg_catalog.->>) 2 AS '
        '"c2" FROM pg_catalog.jsonb_array_elements(%b::pg_catalog.jsonb) AS "_cdc_r") AS '
        '"_cdc_v" WHERE "_cdc_t"."id" = "_cdc_v"."c0"::integer'
    )


def test_keyless_rows_change_one_row_matched_on_value_null_or_text() -> None:
    assert text(row_delete_sql(KEYLESS, ((0, False), (1, True)))) == (
        'DELETE FROM "public"."f" WHERE ctid = (SELECT ctid FROM "public"."f" '
        'WHERE "a" = %b::integer AND "j" IS NULL LIMIT 1)'
    )
    # json has no equality operator: its text form is compared instead.
    assert text(row_update_sql(KEYLESS, (0,), ((1, False),))).endswith(
        'SET "a" = %b::integer WHERE ctid = (SELECT ctid FROM "public"."f" '
        'WHERE "j"::pg_catalog.text = %b LIMIT 1)'
    )


def test_truncate_lists_tables_with_the_options_sent() -> None:
    u = TableRef("public", "u")
    assert text(truncate_sql([T, u], cascade=True, restart_identity=True)) == (
        'TRUNCATE "public"."t", "public"."u" RESTART IDENTITY CASCADE'
    )
    assert text(truncate_sql([T], cascade=False, restart_identity=False)) == 'TRUNCATE "public"."t"'


def test_key_text_names_the_columns() -> None:
    assert KV.key_text(["42"]) == "id=42"
    two = TableShape(T, ("a", "B"), ("integer", "text"), (0, 1))
    assert two.key_text(["1", None]) == '(a, "B")=(1, NULL)'


# -- planning -------------------------------------------------------------------------------


def pending(shape: TableShape, *changes: Insert | Update | Delete, lsn: int = 100) -> list[Pending]:
    return [Pending(c, shape, lsn) for c in changes]


def summary(ops: list[Op]) -> list[tuple[str, str, list[tuple[str | None, ...]]]]:
    return [(op.kind.value, str(op.table), op.rows) for op in ops]


def test_insert_then_delete_of_a_key_leaves_only_the_delete() -> None:
    ops = plan(pending(KV, Insert(1, ("1", "a", "b")), Delete(1, ("1", None, None), "K")))
    assert summary(ops) == [("delete", "public.t", [("1",)])]


def test_key_chain_deletes_the_old_keys_and_upserts_the_last() -> None:
    ops = plan(
        pending(
            KV,
            Insert(1, ("1", "a", "big")),
            Update(1, ("1", None, None), "K", ("2", "b", UNCHANGED)),
            Update(1, ("2", None, None), "K", ("3", "c", UNCHANGED)),
        )
    )
    assert summary(ops) == [
        ("delete", "public.t", [("1",), ("2",)]),
        ("upsert", "public.t", [("3", "c", "big")]),
    ]


def test_updates_fold_into_one_patch_per_column_set_without_unchanged_columns() -> None:
    ops = plan(
        pending(
            KV,
            Update(1, None, None, ("1", "a", UNCHANGED)),
            Update(1, None, None, ("2", "b", UNCHANGED)),
            Update(1, None, None, ("1", "a2", UNCHANGED)),
            Update(1, None, None, ("3", None, "big")),
        )
    )
    assert [(op.kind, op.set_columns, op.rows) for op in ops] == [
        (OpKind.PATCH, (1,), [("1", "a2"), ("2", "b")]),
        (OpKind.PATCH, (1, 2), [("3", None, "big")]),
    ]


def test_key_update_with_unchanged_values_not_in_the_batch_runs_in_place_in_order() -> None:
    ops = plan(
        pending(
            KV,
            Insert(1, ("5", "x", "y")),
            Update(1, ("1", None, None), "K", ("9", "moved", UNCHANGED)),
            Delete(1, ("5", None, None), "K"),
        )
    )
    assert [(op.kind, op.set_columns, op.rows) for op in ops] == [
        (OpKind.UPSERT, (), [("5", "x", "y")]),
        (OpKind.PATCH, (0, 1), [("1", "9", "moved")]),
        (OpKind.DELETE, (), [("5",)]),
    ]


def test_order_across_tables_and_truncates_is_kept() -> None:
    u = TableShape(TableRef("public", "u"), ("id",), ("integer",), (0,))
    items = [
        *pending(KV, Insert(1, ("1", "a", None))),
        *pending(u, Insert(2, ("1",))),
        Pending(Truncate((1,), cascade=False, restart_identity=False), None, 100, (T,)),
        *pending(KV, Insert(1, ("2", "a", None))),
    ]
    assert [(op.kind.value, str(op.table)) for op in plan(items)] == [
        ("upsert", "public.t"),
        ("upsert", "public.u"),
        ("truncate", "public.t"),
        ("upsert", "public.t"),
    ]


def test_plain_tables_group_across_the_buffer_and_strict_tables_keep_exact_order() -> None:
    u = TableShape(TableRef("public", "u"), ("id",), ("integer",), (0,))
    strict = TableShape(TableRef("public", "s"), ("id", "v"), ("integer", "text"), (0,), True)
    items = [
        *pending(KV, Insert(1, ("1", "a", None))),
        *pending(u, Insert(2, ("1",))),
        *pending(KV, Insert(1, ("2", "a", None))),
        *pending(strict, Insert(3, ("1", "x")), Insert(3, ("2", "y"))),
        *pending(strict, Update(3, None, None, ("1", "y2")), Update(3, None, None, ("2", "x"))),
        *pending(strict, Delete(3, ("1", None), "K"), Insert(3, ("1", "z"))),
        *pending(KV, Insert(1, ("3", "a", None))),
    ]
    assert summary(plan(items)) == [
        ("upsert", "public.t", [("1", "a", None), ("2", "a", None)]),
        ("upsert", "public.u", [("1",)]),
        ("upsert", "public.s", [("1", "x"), ("2", "y")]),
        ("patch", "public.s", [("1", "y2")]),
        ("patch", "public.s", [("2", "x")]),
        ("delete", "public.s", [("1",)]),
        ("upsert", "public.s", [("1", "z")]),
        ("upsert", "public.t", [("3", "a", None)]),
    ]


def test_keyless_tables_batch_inserts_and_apply_other_changes_row_by_row() -> None:
    ops = plan(
        pending(
            KEYLESS,
            Insert(3, ("1", "{}")),
            Insert(3, ("1", "{}")),
            Delete(3, ("1", None), "O"),
            Update(3, ("1", UNCHANGED), "O", ("2", UNCHANGED)),
            Insert(3, ("3", "[]")),
        )
    )
    assert [(op.kind, op.rows, op.match) for op in ops] == [
        (OpKind.UPSERT, [("1", "{}"), ("1", "{}")], ()),
        (OpKind.ROW_DELETE, [("1",)], ((0, False), (1, True))),
        (OpKind.ROW_UPDATE, [("2", "1")], ((0, False),)),
        (OpKind.UPSERT, [("3", "[]")], ()),
    ]


def test_split_gives_one_op_per_row_with_its_key_and_lsn() -> None:
    ops = plan(
        [
            *pending(KV, Insert(1, ("1", "a", None))),
            *pending(KV, Insert(1, ("2", "b", None)), lsn=200),
        ]
    )
    singles = ops[0].split()
    assert [(s.rows, s.lsns, s.key_text(0)) for s in singles] == [
        ([("1", "a", None)], [100], "id=1"),
        ([("2", "b", None)], [200], "id=2"),
    ]
    assert singles[1].params() == ['[["2", "b", null]]']


def test_a_change_without_its_key_is_rejected() -> None:
    with pytest.raises(PermanentApplyError, match="without the value of its key"):
        plan(pending(KV, Update(1, None, None, (UNCHANGED, "a", "b"))))


# -- drift ----------------------------------------------------------------------------------

TABLE = TargetTable(T, T, ("id", "v"), ("id",))


def relation(*columns: tuple[str, int, bool], identity: str = "d") -> Relation:
    cols = tuple(RelationColumn(1 if key else 0, name, oid, -1) for name, oid, key in columns)
    return Relation(1, "public", "t", identity, cols)


def test_appended_columns_are_returned_for_the_target() -> None:
    rel = relation(("id", 23, True), ("v", 25, False), ("w", 1700, False))
    assert [c.name for c in check_relation(TABLE, rel, None, None)] == ["w"]


@pytest.mark.parametrize(
    ("rel", "detail"),
    [
        (relation(("v", 25, False), ("id", 23, True)), "columns reordered: the target has (id, v)"),
        (relation(("x", 25, False)), "columns id, v dropped"),
        (
            relation(("id", 23, False), ("v", 25, False), identity="n"),
            "the source identifies rows by nothing, the target key is (id)",
        ),
        (relation(("id", 23, False), ("v", 25, True)), "rows by (v), the target key is (id)"),
    ],
)
def test_other_differences_are_drift(rel: Relation, detail: str) -> None:
    with pytest.raises(SchemaDriftError, match=re.escape(detail)):
        check_relation(TABLE, rel, None, None, 0x16B3748)


def test_full_identity_fits_any_target_key() -> None:
    rel = relation(("id", 23, True), ("v", 25, True), identity="f")
    assert check_relation(TABLE, rel, None, None) == ()


def test_drift_message_leads_with_table_and_detail_and_names_the_lsn() -> None:
    rel = relation(("id", 23, True), ("v", 23, False))
    with pytest.raises(SchemaDriftError) as caught:
        names = {23: "integer", 25: "text"}
        check_relation(TABLE, rel, ((23, -1), (25, -1)), lambda oid, _mod: names[oid], 0x16B3748)
    assert caught.value.message.startswith(
        "schema drift on public.t: column v changed type from text to integer "
        "(source transaction at LSN 0/16B3748)"
    )


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        errors.DeadlockDetected,
        errors.SerializationFailure,
        errors.AdminShutdown,
        errors.CannotConnectNow,
        errors.ConnectionFailure,
    ],
)
def test_busy_or_unreachable_target_is_retriable(error: type[psycopg.Error]) -> None:
    assert is_retriable(error("boom"))
    assert isinstance(classify(error("boom"), table=T, key=None, lsn=1), RetriableApplyError)


def test_a_lost_connection_without_sqlstate_is_retriable() -> None:
    assert is_retriable(psycopg.OperationalError("server closed the connection unexpectedly"))


@pytest.mark.parametrize(
    "error",
    [
        errors.UniqueViolation,
        errors.CheckViolation,
        errors.InvalidTextRepresentation,
        errors.NumericValueOutOfRange,
        errors.InsufficientPrivilege,
        errors.UndefinedTable,
        errors.UndefinedColumn,
    ],
)
def test_rejected_changes_are_permanent_and_say_where(error: type[psycopg.Error]) -> None:
    assert not is_retriable(error("rejected"))
    err = classify(error("rejected"), table=T, key="id=7", lsn=0x16B3748)
    assert isinstance(err, PermanentApplyError)
    assert err.message == (
        "Applying a change to public.t (key id=7) from the source transaction at LSN 0/16B3748 "
        "failed: rejected; fix the target table (or resync it) and restart the pipeline."
    )
