"""The SQL Server applier's T-SQL, standing in for a live SQL Server (none runs on this machine).

Each statement shape is compared with the exact expected T-SQL; where SQLAlchemy can express the
statement (DELETE and UPDATE with a WHERE, INSERT), the equivalent construct compiled by
SQLAlchemy's mssql dialect must give the same text; and parameters are rendered through
pymssql's own client-side substitution, as pymssql sends them to the server.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from pymssql import _mssql
from sqlalchemy.dialects import mssql
from sqlalchemy.sql import quoted_name

from cdc_tui.domain.spec import TableRef
from cdc_tui.errors import UsageError
from cdc_tui.targets.mssql.ddl import CREATE_POSITION_TABLE
from cdc_tui.targets.mssql.dml import (
    POSITION_READ,
    POSITION_UPSERT,
    MssqlColumn,
    MssqlTable,
    TableSql,
)
from cdc_tui.targets.mssql.errors import ValueRejected


def _reject(text: str) -> object:
    raise ValueRejected(f"{text} is out of range")


ORDERS = MssqlTable(
    TableRef("public", "orders"),
    TableRef("dbo", "orders"),
    (
        MssqlColumn("id", "bigint", int, 20),
        MssqlColumn("customer", "nvarchar(100)", str, 1043),
        MssqlColumn("total", "decimal(12,2)", Decimal, 1700),
        MssqlColumn("placed_at", "datetimeoffset(6)", str, 1184),
    ),
    ("id",),
)
# A character key (DATALENGTH guard), a padded one (none: PostgreSQL's character(n) compares
# padded too) and names that need brackets.
ODD = MssqlTable(
    TableRef("public", "odd]name x"),
    TableRef("sales data", "odd]name x"),
    (
        MssqlColumn("code", "nvarchar(450)", str),
        MssqlColumn("kind", "nchar(2)", str),
        MssqlColumn("note]s x", "nvarchar(max)", str),
        MssqlColumn("blob", "varbinary(max)", bytes.fromhex),
    ),
    ("code", "kind"),
)
KEYLESS = MssqlTable(
    TableRef("public", "log"),
    TableRef("dbo", "log"),
    (
        MssqlColumn("at", "datetime2(6)", str),
        MssqlColumn("msg", "nvarchar(200)", str),
        MssqlColumn("qty", "int", int),
    ),
    (),
)
ONLY_KEY = MssqlTable(
    TableRef("public", "tags"), TableRef("dbo", "tags"), (MssqlColumn("tag", "int", int),), ("tag",)
)


# -- exact text -----------------------------------------------------------------------------------


def test_upsert_merges_with_holdlock_on_the_key() -> None:
    assert TableSql(ORDERS).upsert() == (
        "MERGE [dbo].[orders] WITH (HOLDLOCK) AS t USING (VALUES (CAST(%s AS bigint), "
        "CAST(%s AS nvarchar(max)), CAST(%s AS decimal(12,2)), CAST(%s AS datetimeoffset(6)))) "
        "AS s ([id], [customer], [total], [placed_at]) ON t.[id] = s.[id] "
        "WHEN MATCHED THEN UPDATE SET [customer] = s.[customer], [total] = s.[total], "
        "[placed_at] = s.[placed_at] "
        "WHEN NOT MATCHED THEN INSERT ([id], [customer], [total], [placed_at]) "
        "VALUES (s.[id], s.[customer], s.[total], s.[placed_at]);"
    )


def test_upsert_guards_character_keys_with_datalength_and_quotes_odd_names() -> None:
    assert TableSql(ODD).upsert() == (
        "MERGE [sales data].[odd]]name x] WITH (HOLDLOCK) AS t USING (VALUES ("
        "CAST(%s AS nvarchar(max)), CAST(%s AS nvarchar(max)), CAST(%s AS nvarchar(max)), "
        "CAST(%s AS varbinary(max)))) AS s ([code], [kind], [note]]s x], [blob]) "
        "ON t.[code] = s.[code] AND DATALENGTH(t.[code]) = DATALENGTH(s.[code]) "
        "AND t.[kind] = s.[kind] "
        "WHEN MATCHED THEN UPDATE SET [note]]s x] = s.[note]]s x], [blob] = s.[blob] "
        "WHEN NOT MATCHED THEN INSERT ([code], [kind], [note]]s x], [blob]) "
        "VALUES (s.[code], s.[kind], s.[note]]s x], s.[blob]);"
    )


def test_upsert_of_a_table_holding_only_its_key_has_no_update_branch() -> None:
    assert TableSql(ONLY_KEY).upsert() == (
        "MERGE [dbo].[tags] WITH (HOLDLOCK) AS t USING (VALUES (CAST(%s AS int))) AS s ([tag]) "
        "ON t.[tag] = s.[tag] WHEN NOT MATCHED THEN INSERT ([tag]) VALUES (s.[tag]);"
    )


def test_partial_update_sets_only_the_columns_sent() -> None:
    assert TableSql(ORDERS).update((1, 3)) == (
        "UPDATE [dbo].[orders] SET [customer] = CAST(%s AS nvarchar(max)), "
        "[placed_at] = CAST(%s AS datetimeoffset(6)) WHERE [id] = CAST(%s AS bigint);"
    )


def test_key_change_sets_the_key_where_the_old_key_is() -> None:
    assert TableSql(ODD).update((0, 1, 2)) == (
        "UPDATE [sales data].[odd]]name x] SET [code] = CAST(%s AS nvarchar(max)), "
        "[kind] = CAST(%s AS nvarchar(max)), [note]]s x] = CAST(%s AS nvarchar(max)) "
        "WHERE [code] = CAST(%s AS nvarchar(max)) "
        "AND DATALENGTH([code]) = DATALENGTH(CAST(%s AS nvarchar(max))) "
        "AND [kind] = CAST(%s AS nvarchar(max));"
    )
    # The guarded key column is bound twice: once for =, once for DATALENGTH.
    assert TableSql(ODD).key_params == (0, 0, 1)


def test_delete_by_key() -> None:
    assert (
        TableSql(ORDERS).delete() == "DELETE FROM [dbo].[orders] WHERE [id] = CAST(%s AS bigint);"
    )
    assert TableSql(ORDERS).key_params == (0,)


def test_truncate() -> None:
    assert TableSql(ODD).truncate() == "TRUNCATE TABLE [sales data].[odd]]name x];"


def test_keyless_insert_is_a_plain_insert() -> None:
    assert TableSql(KEYLESS).insert() == (
        "INSERT INTO [dbo].[log] ([at], [msg], [qty]) VALUES (CAST(%s AS datetime2(6)), "
        "CAST(%s AS nvarchar(max)), CAST(%s AS int));"
    )


_KEYLESS_MATCH = (
    "FROM [dbo].[log] AS t JOIN (VALUES (CAST(%s AS datetime2(6)), CAST(%s AS nvarchar(max)), "
    "CAST(%s AS int))) AS s ([at], [msg], [qty]) "
    "ON (t.[at] = s.[at] OR (t.[at] IS NULL AND s.[at] IS NULL)) "
    "AND ((t.[msg] = s.[msg] AND DATALENGTH(t.[msg]) = DATALENGTH(s.[msg])) "
    "OR (t.[msg] IS NULL AND s.[msg] IS NULL)) "
    "AND (t.[qty] = s.[qty] OR (t.[qty] IS NULL AND s.[qty] IS NULL));"
)


def test_keyless_delete_removes_one_row_matching_every_old_value_null_safely() -> None:
    assert TableSql(KEYLESS).row_delete((0, 1, 2)) == "DELETE TOP (1) t " + _KEYLESS_MATCH


def test_keyless_update_changes_one_matching_row() -> None:
    assert TableSql(KEYLESS).row_update((2,), (0, 1, 2)) == (
        "UPDATE TOP (1) t SET [qty] = CAST(%s AS int) " + _KEYLESS_MATCH
    )


def test_keyless_match_leaves_out_columns_not_sent() -> None:
    assert TableSql(KEYLESS).row_delete((0, 2)) == (
        "DELETE TOP (1) t FROM [dbo].[log] AS t JOIN (VALUES (CAST(%s AS datetime2(6)), "
        "CAST(%s AS int))) AS s ([at], [qty]) "
        "ON (t.[at] = s.[at] OR (t.[at] IS NULL AND s.[at] IS NULL)) "
        "AND (t.[qty] = s.[qty] OR (t.[qty] IS NULL AND s.[qty] IS NULL));"
    )


def test_position_upsert_and_read() -> None:
    assert POSITION_UPSERT == (
        "MERGE [cdc_tui].[applied_position] WITH (HOLDLOCK) AS t USING (VALUES ("
        "CAST(%s AS nvarchar(max)), CAST(%s AS decimal(20,0)), CAST(%s AS decimal(20,0)), "
        "CAST(%s AS datetimeoffset(6)))) AS s ([pipeline], [commit_lsn], [end_lsn], "
        "[commit_time]) ON t.[pipeline] = s.[pipeline] WHEN MATCHED THEN UPDATE SET "
        "[commit_lsn] = s.[commit_lsn], [end_lsn] = s.[end_lsn], "
        "[commit_time] = s.[commit_time], [applied_at] = SYSUTCDATETIME() "
        "WHEN NOT MATCHED THEN INSERT ([pipeline], [commit_lsn], [end_lsn], [commit_time], "
        "[applied_at]) VALUES (s.[pipeline], s.[commit_lsn], s.[end_lsn], s.[commit_time], "
        "SYSUTCDATETIME());"
    )
    assert POSITION_READ == (
        "SELECT [commit_lsn], [end_lsn] FROM [cdc_tui].[applied_position] "
        "WHERE [pipeline] = CAST(%s AS nvarchar(max));"
    )
    # The columns written are the ones Step 0 creates.
    for column in ("pipeline", "commit_lsn", "end_lsn", "commit_time", "applied_at"):
        assert f"[{column}]" in CREATE_POSITION_TABLE


def test_statements_are_rendered_once_per_shape() -> None:
    sql = TableSql(ORDERS)
    assert sql.upsert() is sql.upsert()
    assert sql.update((1,)) is sql.update((1,))
    assert sql.update((1,)) != sql.update((2,))
    assert sql.row_delete((0,)) is sql.row_delete((0,))


# -- casts and names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target_type", "placeholder"),
    [
        ("datetimeoffset(6)", "CAST(%s AS datetimeoffset(6))"),
        ("decimal(38,10)", "CAST(%s AS decimal(38,10))"),
        ("uniqueidentifier", "CAST(%s AS uniqueidentifier)"),
        ("bit", "CAST(%s AS bit)"),
        ("float(53)", "CAST(%s AS float(53))"),
        # CAST to a shorter string or binary type truncates silently; assignment refuses.
        ("nvarchar(10)", "CAST(%s AS nvarchar(max))"),
        ("nchar(3)", "CAST(%s AS nvarchar(max))"),
        ("NVARCHAR(MAX)", "CAST(%s AS nvarchar(max))"),
        ("varchar(10)", "CAST(%s AS varchar(max))"),
        ("varbinary(16)", "CAST(%s AS varbinary(max))"),
    ],
)
def test_placeholders_cast_to_the_column_type(target_type: str, placeholder: str) -> None:
    assert MssqlColumn("c", target_type, str).placeholder == placeholder


@pytest.mark.parametrize("bad", ["int; DROP TABLE x", "nvarchar(10) COLLATE x", "", "int)"])
def test_type_names_that_could_inject_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a SQL Server type name"):
        MssqlTable(TableRef("p", "t"), TableRef("dbo", "t"), (MssqlColumn("c", bad, str),), ())


@pytest.mark.parametrize("name", ["a%s", "x%db", "%s"])
def test_names_pymssql_would_read_as_placeholders_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="placeholder"):
        MssqlTable(TableRef("p", "t"), TableRef("dbo", "t"), (MssqlColumn(name, "int", int),), ())


def test_a_percent_sign_alone_in_a_name_is_fine() -> None:
    table = MssqlTable(
        TableRef("p", "t"), TableRef("dbo", "50%"), (MssqlColumn("100%", "int", int),), ("100%",)
    )
    rendered = _mssql.substitute_params(TableSql(table).delete(), (7,)).decode()
    assert rendered == "DELETE FROM [dbo].[50%] WHERE [100%] = CAST(7 AS int);"


def test_bad_tables_are_refused() -> None:
    col = MssqlColumn("a", "int", int)
    with pytest.raises(ValueError, match="key column 'b'"):
        MssqlTable(TableRef("p", "t"), TableRef("dbo", "t"), (col,), ("b",))
    with pytest.raises(ValueError, match="distinct"):
        MssqlTable(TableRef("p", "t"), TableRef("dbo", "t"), (col, col), ())


# -- parameters as pymssql renders them -----------------------------------------------------------


def test_parameters_render_as_typed_literals() -> None:
    params = (7, "O'Brien", Decimal("12.50"), "2024-05-01 12:30:00.123456+00:00")
    rendered = _mssql.substitute_params(TableSql(ORDERS).upsert(), params).decode()
    assert "VALUES (CAST(7 AS bigint), CAST(N'O''Brien' AS nvarchar(max)), " in rendered
    assert "CAST(12.50 AS decimal(12,2)), " in rendered
    assert "CAST(N'2024-05-01 12:30:00.123456+00:00' AS datetimeoffset(6)))) AS s" in rendered


def test_null_unicode_and_binary_parameters() -> None:
    params = ("new", None, b"\x00\xff", "k1", "k1", "A ")
    rendered = _mssql.substitute_params(TableSql(ODD).update((0, 2, 3)), params).decode()
    assert rendered == (
        "UPDATE [sales data].[odd]]name x] SET [code] = CAST(N'new' AS nvarchar(max)), "
        "[note]]s x] = CAST(NULL AS nvarchar(max)), [blob] = CAST(0x00ff AS varbinary(max)) "
        "WHERE [code] = CAST(N'k1' AS nvarchar(max)) "
        "AND DATALENGTH([code]) = DATALENGTH(CAST(N'k1' AS nvarchar(max))) "
        "AND [kind] = CAST(N'A ' AS nvarchar(max));"
    )
    assert "N'é'" in _mssql.substitute_params(TableSql(ODD).delete(), ("é", "é", "x")).decode()


def test_position_parameters_render_as_decimal_lsns_and_an_offset_time() -> None:
    params = ("orders", 2**64 - 1, 2**64 - 1, "2024-05-01T12:30:00.5+00:00")
    rendered = _mssql.substitute_params(POSITION_UPSERT, params).decode()
    assert "VALUES (CAST(N'orders' AS nvarchar(max)), " in rendered
    assert "CAST(18446744073709551615 AS decimal(20,0)), " in rendered
    assert "CAST(N'2024-05-01T12:30:00.5+00:00' AS datetimeoffset(6)))) AS s" in rendered


# -- SQLAlchemy's mssql dialect agrees ------------------------------------------------------------


class _Type(sa.types.UserDefinedType[Any]):
    """A column type compiled as its exact SQL Server name."""

    cache_ok = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get_col_spec(self, **kw: Any) -> str:
        return self.name


def _sa_table(table: MssqlTable) -> sa.Table:
    columns = [sa.Column(quoted_name(c.name, True), _Type(c.target_type)) for c in table.columns]
    return sa.Table(
        quoted_name(table.target.name, True),
        sa.MetaData(),
        *columns,
        schema=quoted_name(table.target.schema, True),
    )


def _param(table: MssqlTable, name: str) -> sa.ColumnElement[Any]:
    placeholder = next(c.placeholder for c in table.columns if c.name == name)
    cast_type = placeholder.removeprefix("CAST(%s AS ").removesuffix(")")
    return sa.cast(sa.bindparam(None), _Type(cast_type))


def _compile(stmt: sa.ClauseElement, table: sa.Table) -> str:
    text = str(stmt.compile(dialect=mssql.dialect(paramstyle="format")))
    qualified = mssql.dialect().identifier_preparer.format_table(table)
    return text.replace(qualified + ".", "")


def _normal(text: str) -> str:
    text = re.sub(r"\s+", " ", text.strip().rstrip(";"))
    return re.sub(r"\s*([=(),])\s*", r"\1", text).casefold()


def _key_where(table: MssqlTable, t: sa.Table) -> sa.ColumnElement[bool]:
    parts: list[sa.ColumnElement[bool]] = []
    for name in table.key:
        column = next(c for c in table.columns if c.name == name)
        parts.append(t.c[name] == _param(table, name))
        if column.is_character and not column.is_padded:
            parts.append(sa.func.DATALENGTH(t.c[name]) == sa.func.DATALENGTH(_param(table, name)))
    return sa.and_(*parts)


@pytest.mark.parametrize("table", [ORDERS, ODD], ids=["orders", "odd-names"])
def test_delete_matches_sqlalchemy(table: MssqlTable) -> None:
    t = _sa_table(table)
    expected = _compile(sa.delete(t).where(_key_where(table, t)), t)
    assert _normal(TableSql(table).delete()) == _normal(expected)


@pytest.mark.parametrize(
    ("table", "set_columns"),
    [(ORDERS, (1, 3)), (ORDERS, (0, 1, 2, 3)), (ODD, (2,)), (ODD, (0, 1, 2, 3))],
    ids=["partial", "key-change", "odd-partial", "odd-key-change"],
)
def test_update_matches_sqlalchemy(table: MssqlTable, set_columns: tuple[int, ...]) -> None:
    t = _sa_table(table)
    names = [table.columns[i].name for i in set_columns]
    values = {t.c[n]: _param(table, n) for n in names}
    expected = _compile(sa.update(t).values(values).where(_key_where(table, t)), t)
    assert _normal(TableSql(table).update(set_columns)) == _normal(expected)


@pytest.mark.parametrize("table", [KEYLESS, ODD], ids=["keyless", "odd-names"])
def test_insert_matches_sqlalchemy(table: MssqlTable) -> None:
    t = _sa_table(table)
    values = {t.c[c.name]: _param(table, c.name) for c in table.columns}
    expected = _compile(sa.insert(t).values(values), t)
    assert _normal(TableSql(table).insert()) == _normal(expected)
