"""Validation without a server: key-range chunks, collation names and the SQL both sides run."""

from __future__ import annotations

import pytest

from cdc_tui.domain.spec import TableRef
from cdc_tui.sources.postgres.catalog import ColumnDef, TableDef, TypeKind
from cdc_tui.targets.postgres.ddl import TablePlan, plan_tables
from cdc_tui.validation.checksum import build_table_sql, chunk_where, effective_collation
from cdc_tui.validation.chunks import Chunk, KeyBound, chunks_from_boundaries, whole_table
from cdc_tui.validation.report import DifferingRange, TableValidation, ValidationReport

A = KeyBound("(1,a)", ("1", "a"))
B = KeyBound("(2,b)", ("2", "b"))


def _column(name: str, type_sql: str, kind: TypeKind = TypeKind.BASE) -> ColumnDef:
    schema = "public" if kind == TypeKind.ENUM else "pg_catalog"
    return ColumnDef(
        name, type_sql, 0, kind, True, None, "", False, scalar_kind=kind, type_schema=schema
    )


def _plan() -> TablePlan:
    table = TableDef(
        ref=TableRef("public", "Order Items"),
        columns=(
            _column("Id", "integer"),
            _column("mood", "mood", TypeKind.ENUM),
            _column("price", "numeric(10,2)"),
        ),
        primary_key=("Id", "mood"),
        replica_identity="d",
        replica_identity_index_columns=(),
        relkind="r",
        estimated_rows=None,
    )
    return plan_tables([table], target_schema=None)[0]


def test_boundaries_split_the_key_space_into_open_ended_chunks() -> None:
    chunks = chunks_from_boundaries([A, B])
    assert chunks == [Chunk(0, None, A), Chunk(1, A, B), Chunk(2, B, None)]
    assert [(c.from_text, c.to_text) for c in chunks] == [
        (None, "(1,a)"),
        ("(1,a)", "(2,b)"),
        ("(2,b)", None),
    ]
    assert chunks_from_boundaries([]) == [whole_table()] == [Chunk(0, None, None)]


def test_a_repeated_boundary_is_refused() -> None:
    with pytest.raises(ValueError, match="repeated"):
        chunks_from_boundaries([A, A])


@pytest.mark.parametrize(
    ("collname", "provider", "locale", "datcollate", "expected"),
    [
        ("default", "c", None, "en_US.UTF-8", "en_US.UTF-8"),
        ("default", "c", None, "POSIX", "C"),
        ("default", "i", "und", "C", "i:und"),
        ("C", "i", "und", "en_US.UTF-8", "C"),
        ("de-x-icu", "c", None, "C", "de-x-icu"),
    ],
)
def test_collations_get_comparable_names(
    collname: str, provider: str, locale: str | None, datcollate: str, expected: str
) -> None:
    assert effective_collation(collname, provider, locale, datcollate) == expected


def test_both_sides_hash_the_target_types_and_bound_chunks_by_the_full_key() -> None:
    tsql = build_table_sql(_plan(), collate_c={"mood"})
    assert tsql.row_hash.as_string() == 'md5(ROW("Id", "mood"::text, "price")::text)'
    utf8 = build_table_sql(_plan(), hash_utf8=True)
    assert utf8.row_hash.as_string() == (
        """md5(convert_to(ROW("Id", "mood"::text, "price")::text, 'UTF8'))"""
    )
    assert [k.as_string() for k in utf8.keys] == ['"Id"', '"mood"::text']
    assert [k.as_string() for k in tsql.keys] == ['"Id"', '("mood"::text) COLLATE "C"']
    where, params = chunk_where(tsql, Chunk(1, A, B))
    assert where.as_string() == (
        'ROW("Id", ("mood"::text) COLLATE "C") > ROW(%s::integer, %s::text) AND '
        'ROW("Id", ("mood"::text) COLLATE "C") <= ROW(%s::integer, %s::text)'
    )
    assert params == ["1", "a", "2", "b"]
    assert chunk_where(tsql, whole_table())[0].as_string() == "TRUE"


def test_the_report_is_ok_only_when_every_table_is_equal() -> None:
    equal = TableValidation("public.a", "public.a", 3, 3, True, 1)
    differs = TableValidation(
        "public.b", "x.b", 3, 2, False, 2, [DifferingRange("5", None, 2, 1)], None
    )
    assert ValidationReport([equal]).ok
    report = ValidationReport([equal, differs])
    assert not report.ok
    assert report.to_json()["tables"][1] == {
        "table": "public.b",
        "target_table": "x.b",
        "source_rows": 3,
        "target_rows": 2,
        "equal": False,
        "chunks_compared": 2,
        "differing_ranges": [{"from": "5", "to": None, "source_rows": 2, "target_rows": 1}],
        "note": None,
    }
