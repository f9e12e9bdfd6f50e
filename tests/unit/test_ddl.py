"""Step 0 DDL without any database: identifier quoting and the type mapping rules."""

from __future__ import annotations

import pytest

from cdc_tui.domain.spec import TableRef
from cdc_tui.errors import UsageError
from cdc_tui.sources.postgres.catalog import ColumnDef, TableDef, TypeKind
from cdc_tui.targets.postgres.ddl import map_column, plan_tables, plan_to_json, render_plan

WEIRD = [
    "Mixed Case",
    'weird"quote',
    "brack]et",
    "semi;colon",
    "order",
    "l" * 63,
    "é" * 31 + "x",
    "日本語",
    'x"; DROP TABLE y; --',
]


def col(
    name: str, type_sql: str = "integer", kind: TypeKind = TypeKind.BASE, **kw: object
) -> ColumnDef:
    fields: dict[str, object] = {
        "name": name, "type_sql": type_sql, "type_oid": 0, "type_kind": kind,
        "not_null": False, "default_sql": None, "identity": "", "generated": False,
        "scalar_kind": kind,
    }  # fmt: skip
    fields.update(kw)
    return ColumnDef(**fields)  # type: ignore[arg-type]


def table(ref: TableRef, *columns: ColumnDef, pk: tuple[str, ...] = (), **kw: object) -> TableDef:
    fields: dict[str, object] = {
        "ref": ref, "columns": columns, "primary_key": pk, "replica_identity": "d",
        "replica_identity_index_columns": (), "relkind": "r", "estimated_rows": None,
    }  # fmt: skip
    fields.update(kw)
    return TableDef(**fields)  # type: ignore[arg-type]


def quoted(name: str) -> str:
    """PostgreSQL's quoting of a delimited identifier: wrap in quotes, double inner quotes."""
    return '"' + name.replace('"', '""') + '"'


@pytest.mark.parametrize("name", WEIRD)
def test_weird_identifiers_are_quoted_exactly(name: str) -> None:
    [plan] = plan_tables(
        [table(TableRef(name, name), col(name, not_null=True), pk=(name,))], target_schema=None
    )
    script = render_plan([plan])
    q = quoted(name)
    assert script == (
        f"CREATE SCHEMA IF NOT EXISTS {q};\n\n"
        f"CREATE TABLE IF NOT EXISTS {q}.{q} (\n"
        f"    {q} integer NOT NULL,\n"
        f"    PRIMARY KEY ({q})\n"
        ");\n"
    )
    # The quoted form parses back to the very same catalog names.
    assert TableRef.parse(f"{q}.{q}") == TableRef(name, name)


def test_injection_attempt_stays_inside_one_identifier() -> None:
    [plan] = plan_tables(
        [table(TableRef("public", 'x"; DROP TABLE y; --'), col("a"))], target_schema=None
    )
    assert plan.create_table.as_string(None) == (
        'CREATE TABLE IF NOT EXISTS "public"."x""; DROP TABLE y; --" (\n    "a" integer\n)'
    )


def test_target_schema_overrides_and_is_checked() -> None:
    td = table(TableRef("src", "t"), col("a"))
    [plan] = plan_tables([td], target_schema="Replica")
    assert plan.target == TableRef("Replica", "t")
    assert plan.create_schema.as_string(None) == 'CREATE SCHEMA IF NOT EXISTS "Replica"'
    with pytest.raises(UsageError):
        plan_tables([td], target_schema="s" * 64)
    with pytest.raises(UsageError):
        plan_tables([td], target_schema="")


def test_schema_is_created_once_in_the_script() -> None:
    plans = plan_tables(
        [table(TableRef("s", "a"), col("x")), table(TableRef("s", "b"), col("x"))],
        target_schema=None,
    )
    script = render_plan(plans)
    assert script.count("CREATE SCHEMA") == 1
    assert script.index("CREATE SCHEMA") < script.index('"s"."a"') < script.index('"s"."b"')


@pytest.mark.parametrize(
    ("column", "target_type", "note_part"),
    [
        (col("a", "numeric(12,2)"), "numeric(12,2)", None),
        (col("a", "integer[]", TypeKind.ARRAY, scalar_kind=TypeKind.BASE), "integer[]", None),
        (col("a", "int4range", TypeKind.RANGE), "int4range", None),
        (col("a", "mood", TypeKind.ENUM, type_schema="public"), "text", "enum"),
        (col("a", "mood[]", TypeKind.ARRAY, scalar_kind=TypeKind.ENUM, type_schema="public"),
         "text[]", "enum"),
        (col("a", "pair", TypeKind.COMPOSITE, type_schema="public"), "text", "composite"),
        (col("a", "floatrange", TypeKind.RANGE, type_schema="public"), "text", "range"),
        (col("a", "price", TypeKind.DOMAIN, type_schema="public",
             base_type_sql="numeric(10,3)"), "numeric(10,3)", "domain"),
        (col("a", "moody", TypeKind.DOMAIN, type_schema="public", base_type_sql="mood",
             base_kind=TypeKind.ENUM), "text", "domain"),
        (col("a", "prices", TypeKind.ARRAY, scalar_kind=TypeKind.DOMAIN, type_schema="public",
             base_type_sql="numeric(10,3)[]"), "numeric(10,3)[]", "domain"),
        (col("a", "citext", type_schema="ext"), "citext", "must exist on the target"),
        (col("a", "integer", not_null=True, default_sql="nextval('s'::regclass)"), "integer",
         "sequence"),
        (col("a", "bigint", not_null=True, identity="a"), "bigint", "identity"),
        (col("a", "integer", generated=True, default_sql="(b * 2)"), "integer", "generated"),
    ],
)  # fmt: skip
def test_type_mapping(column: ColumnDef, target_type: str, note_part: str | None) -> None:
    plan = map_column(column)
    assert plan.target_type == target_type
    assert plan.source_type == column.type_sql
    assert plan.nullable is not column.not_null
    if note_part is None:
        assert plan.note is None
    else:
        assert plan.note is not None and note_part in plan.note


def test_no_defaults_reach_the_target() -> None:
    td = table(
        TableRef("s", "t"),
        col("id", not_null=True, default_sql="nextval('s'::regclass)"),
        col("v", "text", default_sql="'x'::text"),
        pk=("id",),
    )
    script = render_plan(plan_tables([td], target_schema=None))
    assert "DEFAULT" not in script and "nextval" not in script


def test_replica_identity_index_becomes_the_target_key() -> None:
    td = table(
        TableRef("s", "t"),
        col("a", not_null=True),
        col("b"),
        replica_identity="i",
        replica_identity_index_columns=("a",),
    )
    [plan] = plan_tables([td], target_schema=None)
    assert plan.primary_key == ("a",) and plan.key_note is not None
    assert 'PRIMARY KEY ("a")' in render_plan([plan])


def test_plan_to_json_shape() -> None:
    td = table(TableRef("public", "Order Items"), col("id", not_null=True), pk=("id",))
    data = plan_to_json(plan_tables([td], target_schema=None))
    assert data == {
        "target_kind": "postgresql",
        "tables": [
            {
                "source": 'public."Order Items"',
                "target": 'public."Order Items"',
                "primary_key": ["id"],
                "key_note": None,
                "columns": [
                    {"name": "id", "source_type": "integer", "target_type": "integer",
                     "nullable": False, "note": None},
                ],
                "ddl": 'CREATE SCHEMA IF NOT EXISTS "public";\n\n'
                'CREATE TABLE IF NOT EXISTS "public"."Order Items" (\n'
                '    "id" integer NOT NULL,\n    PRIMARY KEY ("id")\n);\n',
            }
        ],
    }  # fmt: skip
