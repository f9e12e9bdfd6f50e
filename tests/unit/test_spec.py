"""Pipeline names and table references, including the hostile identifiers of RELIABILITY 19."""

from __future__ import annotations

import pytest

from cdc_tui.domain.spec import (
    TableRef,
    parse_table_list,
    publication_name_for,
    slot_name_for,
    validate_pipeline_name,
)
from cdc_tui.errors import UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("orders", TableRef("public", "orders")),
        ("Sales.Orders", TableRef("sales", "orders")),
        ('public."Order Items"', TableRef("public", "Order Items")),
        ('"My Schema"."weird""quote"', TableRef("My Schema", 'weird"quote')),
        ('public."x""; DROP TABLE y; --"', TableRef("public", 'x"; DROP TABLE y; --')),
        ('public."brack]et"', TableRef("public", "brack]et")),
        ('"ünïcode"."表"', TableRef("ünïcode", "表")),
        ('public."semi;colon"', TableRef("public", "semi;colon")),
    ],
)
def test_parse_table(text: str, expected: TableRef) -> None:
    assert TableRef.parse(text) == expected


@pytest.mark.parametrize("text", ["", "a.b.c", '"unterminated', 'a."b"c', "a..b", "x" * 64])
def test_parse_table_rejects(text: str) -> None:
    with pytest.raises(UsageError, match=r"schema\.table"):
        TableRef.parse(text)


def test_display_round_trips() -> None:
    for ref in [TableRef("public", "Order Items"), TableRef("a b", 'q"q'), TableRef("s", "t")]:
        assert TableRef.parse(str(ref)) == ref


def test_table_list_keeps_commas_inside_quotes_and_rejects_duplicates() -> None:
    refs = parse_table_list('public.a, "x,y".b ,c')
    assert refs == [TableRef("public", "a"), TableRef("x,y", "b"), TableRef("public", "c")]
    with pytest.raises(UsageError, match="listed twice"):
        parse_table_list("a, public.a")
    with pytest.raises(UsageError, match="No tables"):
        parse_table_list(" , ")


def test_pipeline_names() -> None:
    assert validate_pipeline_name("orders_eu") == "orders_eu"
    assert slot_name_for("orders_eu") == "cdc_tui_orders_eu"
    assert publication_name_for("orders_eu") == "cdc_tui_orders_eu"
    assert len(slot_name_for("a" * 48)) <= 63
    for bad in ["Orders", "1x", "a-b", "", "a" * 49, "x;y"]:
        with pytest.raises(UsageError, match="not valid"):
            validate_pipeline_name(bad)
