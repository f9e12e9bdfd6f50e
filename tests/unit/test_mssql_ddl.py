"""Step 0 T-SQL for a SQL Server target, checked as text and through SQLAlchemy's mssql dialect.

These stand in for a live SQL Server (none can run here): the scripts are compared with exact
expected T-SQL, and the column types are compiled by SQLAlchemy's mssql dialect to check they
are spelled the way that dialect spells them.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Column, MetaData, Table
from sqlalchemy.dialects import mssql
from sqlalchemy.dialects.mssql.base import MSDialect
from sqlalchemy.schema import CreateTable
from sqlalchemy.types import TypeEngine

from cdc_tui.domain.spec import TableRef
from cdc_tui.errors import UsageError
from cdc_tui.sources.postgres.catalog import ColumnDef, TableDef, TypeKind
from cdc_tui.targets.mssql.ddl import (
    create_schema_batch,
    plan_tables,
    plan_to_json,
    render_script,
    script_batches,
)
from cdc_tui.targets.mssql.identifiers import quote_ident, quote_literal
from cdc_tui.targets.mssql.types import KEY_COLLATION, NumericPolicy


def col(
    name: str, type_sql: str = "integer", kind: TypeKind = TypeKind.BASE, **kw: object
) -> ColumnDef:
    fields: dict[str, object] = {
        "name": name, "type_sql": type_sql, "type_oid": 0, "type_kind": kind,
        "not_null": False, "default_sql": None, "identity": "", "generated": False,
        "scalar_kind": TypeKind.BASE if kind == TypeKind.ARRAY else kind,
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


ORDERS = table(
    TableRef("public", "orders"),
    col("id", "bigint", not_null=True, identity="a"),
    col("code", "text", not_null=True),
    col("status", "order_status", TypeKind.ENUM, type_schema="public"),
    col("doc", "jsonb"),
    col("amount", "numeric(12,2)"),
    col("placed_at", "timestamp with time zone", not_null=True),
    col("tags", "text[]", TypeKind.ARRAY),
    pk=("id", "code"),
)
LABELS = {"order_status": ["new", "shipped", "it's"]}

POSITION_SCRIPT = """IF SCHEMA_ID(N'cdc_tui') IS NULL EXEC(N'CREATE SCHEMA [cdc_tui]');
GO

IF OBJECT_ID(N'[cdc_tui].[applied_position]', N'U') IS NULL
CREATE TABLE [cdc_tui].[applied_position] (
    [pipeline] nvarchar(128) NOT NULL PRIMARY KEY,
    [commit_lsn] decimal(20,0) NOT NULL,
    [end_lsn] decimal(20,0) NOT NULL,
    [commit_time] datetimeoffset(6) NULL,
    [applied_at] datetimeoffset(6) NOT NULL DEFAULT SYSUTCDATETIME()
);
GO
"""

ORDERS_TABLE = """IF OBJECT_ID(N'[dbo].[orders]', N'U') IS NULL
CREATE TABLE [dbo].[orders] (
    [id] bigint NOT NULL,
    [code] nvarchar(450) COLLATE Latin1_General_100_BIN2 NOT NULL,
    [status] nvarchar(7) NULL CHECK ([status] IN (N'new', N'shipped', N'it''s')),
    [doc] nvarchar(max) NULL CHECK (ISJSON([doc]) = 1),
    [amount] decimal(12,2) NULL,
    [placed_at] datetimeoffset(6) NOT NULL,
    [tags] nvarchar(max) NULL,
    PRIMARY KEY ([id], [code])
);"""


def test_full_script_in_dbo() -> None:
    plans = plan_tables([ORDERS], enum_labels=LABELS)
    assert render_script(plans) == POSITION_SCRIPT + "\n" + ORDERS_TABLE + "\nGO\n"
    assert render_script(plans, position_table=False) == ORDERS_TABLE + "\nGO\n"
    assert "IDENTITY" not in render_script(plans) and "DEFAULT" not in ORDERS_TABLE


def test_target_schema_is_created_once_before_its_tables() -> None:
    plans = plan_tables(
        [table(TableRef("public", "a"), col("x")), table(TableRef("other", "b"), col("x"))],
        target_schema="sales",
    )
    assert script_batches(plans, position_table=False) == [
        "IF SCHEMA_ID(N'sales') IS NULL EXEC(N'CREATE SCHEMA [sales]');",
        "IF OBJECT_ID(N'[sales].[a]', N'U') IS NULL\n"
        "CREATE TABLE [sales].[a] (\n    [x] int NULL\n);",
        "IF OBJECT_ID(N'[sales].[b]', N'U') IS NULL\n"
        "CREATE TABLE [sales].[b] (\n    [x] int NULL\n);",
    ]
    assert plans[0].create_schema == plans[1].create_schema


def test_dbo_is_never_created() -> None:
    [plan] = plan_tables([table(TableRef("public", "a"), col("x"))], target_schema="dbo")
    assert plan.create_schema is None and plan.batches == [plan.create_table]


def test_odd_names_are_quoted_in_identifiers_and_literals() -> None:
    name, schema = "O'Brien]s Orders", "it's]x"
    [plan] = plan_tables(
        [table(TableRef("public", name), col("a b]c", not_null=True), pk=("a b]c",))],
        target_schema=schema,
    )
    assert plan.create_schema == (
        "IF SCHEMA_ID(N'it''s]x') IS NULL EXEC(N'CREATE SCHEMA [it''s]]x]');"
    )
    assert plan.create_table == (
        "IF OBJECT_ID(N'[it''s]]x].[O''Brien]]s Orders]', N'U') IS NULL\n"
        "CREATE TABLE [it's]]x].[O'Brien]]s Orders] (\n"
        "    [a b]]c] int NOT NULL,\n"
        "    PRIMARY KEY ([a b]]c])\n"
        ");"
    )


def test_injection_attempt_stays_inside_one_identifier() -> None:
    [plan] = plan_tables([table(TableRef("public", "x]; DROP TABLE y; --"), col("a"))])
    assert "CREATE TABLE [dbo].[x]]; DROP TABLE y; --] (" in plan.create_table
    assert create_schema_batch("x'); DROP TABLE y; --") == (
        "IF SCHEMA_ID(N'x''); DROP TABLE y; --') IS NULL "
        "EXEC(N'CREATE SCHEMA [x''); DROP TABLE y; --]');"
    )


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("plain", "[plain]"),
        ("brack]et", "[brack]]et]"),
        ("]]", "[]]]]]"),
        ("[x]", "[[x]]]"),
        ("with space", "[with space]"),
        ("it's", "[it's]"),
        ('dou"ble', '[dou"ble]'),
        ("order", "[order]"),
        ("日本語", "[日本語]"),
        ("é" * 128, "[" + "é" * 128 + "]"),
        ("x" * 128, "[" + "x" * 128 + "]"),
        ("😀" * 64, "[" + "😀" * 64 + "]"),  # 128 UTF-16 units
    ],
)
def test_quote_ident_brackets_and_doubles(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted
    assert quote_ident(name) == MSDialect().identifier_preparer.quote_identifier(name)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("name", ["x" * 129, "é" * 129, "😀" * 65, ""])
def test_quote_ident_refuses_names_sql_server_cannot_hold(name: str) -> None:
    with pytest.raises(UsageError) as info:
        quote_ident(name, "Table")
    assert info.value.message.startswith("Table ")
    assert "rename" in info.value.message


def test_long_target_schema_is_refused_with_a_sentence() -> None:
    with pytest.raises(UsageError) as info:
        plan_tables([ORDERS], target_schema="s" * 129)
    assert info.value.message == (
        f"Target schema {'s' * 129!r} is 129 characters long and SQL Server allows at most 128; "
        "rename it or choose a shorter target name."
    )


def test_quote_literal_doubles_single_quotes() -> None:
    assert quote_literal("it's") == "N'it''s'"
    assert quote_literal("") == "N''"
    assert quote_literal("日本") == "N'日本'"


def test_tables_meeting_in_one_target_are_refused() -> None:
    a, b = table(TableRef("public", "t"), col("x")), table(TableRef("sales", "T"), col("x"))
    with pytest.raises(UsageError) as info:
        plan_tables([a, b])
    assert info.value.message == (
        'Table sales."T" and table public.t would both be [dbo].[T] on SQL Server, which '
        "compares names without case or trailing spaces; replicate them in separate pipelines "
        "with different target schemas."
    )


def test_position_table_name_is_reserved() -> None:
    with pytest.raises(UsageError, match="position table"):
        plan_tables([table(TableRef("s", "Applied_Position"), col("x"))], target_schema="cdc_tui")


def test_columns_differing_only_in_case_or_trailing_spaces_are_refused() -> None:
    for other in ("ID", "id "):
        with pytest.raises(UsageError) as info:
            plan_tables([table(TableRef("public", "t"), col("id"), col(other))])
        assert info.value.message.startswith(f"Columns 'id' and {other!r} of table public.t")


@pytest.mark.parametrize("columns", [0, 1025])
def test_column_count_outside_sql_server_limits_is_refused(columns: int) -> None:
    td = table(TableRef("public", "wide"), *(col(f"c{i}") for i in range(columns)))
    with pytest.raises(UsageError, match=f"has {columns} columns"):
        plan_tables([td])


def test_temporary_table_names_are_refused() -> None:
    with pytest.raises(UsageError, match="temporary table"):
        plan_tables([table(TableRef("public", "#t"), col("x"))])


def test_replica_identity_index_becomes_the_key() -> None:
    td = table(
        TableRef("public", "t"),
        col("a", "character varying(40)", not_null=True),
        col("b"),
        replica_identity="i",
        replica_identity_index_columns=("a",),
    )
    [plan] = plan_tables([td])
    assert plan.primary_key == ("a",)
    assert plan.key_note is not None and "replica identity index" in plan.key_note
    assert "    [a] nvarchar(40) COLLATE Latin1_General_100_BIN2 NOT NULL,\n" in plan.create_table
    assert plan.create_table.endswith("    PRIMARY KEY ([a])\n);")


def test_table_without_key_has_no_primary_key() -> None:
    [plan] = plan_tables([table(TableRef("public", "t"), col("a", "text"))])
    assert "PRIMARY KEY" not in plan.create_table
    assert plan.key_note == "no primary key on the source and none on the target"
    assert "COLLATE" not in plan.create_table


def test_key_notes_name_what_sql_server_does_differently() -> None:
    td = table(
        TableRef("public", "t"),
        col("a", "text", not_null=True),
        col("b", "text", not_null=True),
        pk=("a", "b"),
    )
    [plan] = plan_tables([td])
    assert plan.key_note is not None
    assert "trailing spaces" in plan.key_note
    assert "the key can reach 1800 bytes" in plan.key_note
    [narrow] = plan_tables([table(TableRef("p", "t"), col("a", "uuid"), pk=("a",))])
    assert narrow.key_note is None


def test_numeric_policy_reaches_the_columns() -> None:
    td = table(TableRef("public", "t"), col("n", "numeric"))
    with pytest.raises(UsageError, match="numeric without a declared precision"):
        plan_tables([td])
    [plan] = plan_tables([td], numeric_policy=NumericPolicy.TEXT)
    assert "    [n] nvarchar(100) NULL\n" in plan.create_table


def test_enum_labels_follow_a_domain_to_its_base_type() -> None:
    td = table(
        TableRef("public", "t"),
        col("m", "moody", TypeKind.DOMAIN, base_type_sql="mood", base_kind=TypeKind.ENUM),
    )
    [plan] = plan_tables([td], enum_labels={"mood": ["a", "bcd"]})
    assert "    [m] nvarchar(3) NULL CHECK ([m] IN (N'a', N'bcd'))\n" in plan.create_table


def test_plan_to_json_shape() -> None:
    td = table(TableRef("public", "Order Items"), col("id", not_null=True), pk=("id",))
    data = plan_to_json(plan_tables([td]))
    assert data == {
        "target_kind": "mssql",
        "tables": [
            {
                "source": 'public."Order Items"',
                "target": "[dbo].[Order Items]",
                "primary_key": ["id"],
                "key_note": None,
                "columns": [
                    {"name": "id", "source_type": "integer", "target_type": "int",
                     "nullable": False, "collation": None, "check": None, "note": None},
                ],
                "ddl": "IF OBJECT_ID(N'[dbo].[Order Items]', N'U') IS NULL\n"
                "CREATE TABLE [dbo].[Order Items] (\n"
                "    [id] int NOT NULL,\n    PRIMARY KEY ([id])\n);\nGO\n",
            }
        ],
    }  # fmt: skip


# Every mapped type next to the SQLAlchemy mssql type that should compile to the same text.
SA_CASES: list[tuple[ColumnDef, TypeEngine[object]]] = [
    (col("c_smallint", "smallint"), mssql.SMALLINT()),
    (col("c_int", "integer"), mssql.INTEGER()),
    (col("c_bigint", "bigint"), mssql.BIGINT()),
    (col("c_real", "real"), mssql.REAL()),
    (col("c_double", "double precision"), mssql.FLOAT(53)),
    (col("c_numeric", "numeric(12,2)"), mssql.DECIMAL(12, 2)),
    (col("c_numeric38", "numeric(38,38)"), mssql.DECIMAL(38, 38)),
    (col("c_tstz", "timestamp with time zone"), mssql.DATETIMEOFFSET(6)),
    (col("c_ts", "timestamp without time zone"), mssql.DATETIME2(6)),
    (col("c_date", "date"), mssql.DATE()),
    (col("c_time", "time without time zone"), mssql.TIME(6)),
    (col("c_timetz", "time with time zone"), mssql.NVARCHAR(32)),
    (col("c_interval", "interval"), mssql.NVARCHAR(64)),
    (col("c_bool", "boolean"), mssql.BIT()),
    (col("c_uuid", "uuid"), mssql.UNIQUEIDENTIFIER()),
    (col("c_bytea", "bytea"), mssql.VARBINARY("max")),
    (col("c_text", "text"), mssql.NVARCHAR("max")),
    (col("c_varchar", "character varying(4000)"), mssql.NVARCHAR(4000)),
    (col("c_varchar_big", "character varying(4001)"), mssql.NVARCHAR("max")),
    (col("c_char", "character(3)"), mssql.NCHAR(3)),
    (col("c_json", "json"), mssql.NVARCHAR("max")),
    (col("c_array", "integer[]", TypeKind.ARRAY), mssql.NVARCHAR("max")),
    (col("c_range", "int4range", TypeKind.RANGE), mssql.NVARCHAR("max")),
    (col("c_enum", "mood", TypeKind.ENUM), mssql.NVARCHAR(63)),
    (col("c_key", "text", not_null=True), mssql.NVARCHAR(450, collation=KEY_COLLATION)),
    (col("c_key2", "character(5)", not_null=True), mssql.NCHAR(5, collation=KEY_COLLATION)),
]


def _normalized(type_text: str) -> str:
    """Spelling differences T-SQL ignores: case, spaces after commas, INTEGER for int."""
    text = re.sub(r",\s+", ",", type_text.strip().lower())
    return "int" if text == "integer" else text


def test_column_types_match_sqlalchemy_mssql_compilation() -> None:
    td = table(
        TableRef("public", "Order]s"),
        *(c for c, _ in SA_CASES),
        pk=("c_key", "c_key2"),
    )
    [plan] = plan_tables([td], target_schema="sales dept", numeric_policy=NumericPolicy.ERROR)
    sa_table = Table(
        "Order]s",
        MetaData(),
        *(Column(c.name, t, primary_key=c.name in td.primary_key) for c, t in SA_CASES),
        schema="sales dept",
    )
    compiled = str(CreateTable(sa_table).compile(dialect=mssql.dialect()))
    assert "CREATE TABLE [sales dept].[Order]]s] (" in compiled
    assert "CREATE TABLE [sales dept].[Order]]s] (" in plan.create_table
    sa_types = {}
    for line in compiled.splitlines():
        match = re.fullmatch(r"\s+(\w+) (.+?) (?:NOT )?NULL,?\s*", line)
        if match:
            sa_types[match[1]] = _normalized(match[2])
    ours = {
        c.name: _normalized(c.target_type + (f" COLLATE {c.collation}" if c.collation else ""))
        for c in plan.columns
    }
    assert sa_types == ours
    assert len(ours) == len(SA_CASES)


@pytest.mark.parametrize(
    ("ref", "column", "schema"),
    [
        (TableRef("shop", "t%s"), "id", None),
        (TableRef("shop", "t"), "rate%d", None),
        (TableRef("shop", "t"), "id", "s%s"),
    ],
)
def test_names_pymssql_would_take_for_placeholders_are_refused(
    ref: TableRef, column: str, schema: str | None
) -> None:
    with pytest.raises(UsageError, match="parameter placeholder"):
        plan_tables([table(ref, col(column, not_null=True), pk=(column,))], target_schema=schema)
