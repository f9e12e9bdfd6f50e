"""The board's pure helpers (progress, error cell, source keys) and the one-query lease read."""

from __future__ import annotations

import pytest

from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import TableState
from cdc_tui.services.board import full_load_percent, last_error_short, source_keys
from cdc_tui.store.db import Store
from cdc_tui.store.leases import LeaseRepository
from cdc_tui.store.records import TableStateRecord
from cdc_tui.store.repositories import PipelineRepository
from tests.unit.store_support import START, FakeClock, create_pipeline


def _table(name: str, copied: int, estimated: int | None) -> TableStateRecord:
    return TableStateRecord(
        table=TableRef("public", name), state=TableState.COPYING, rows_copied=copied,
        rows_estimated=estimated, started_at=START, completed_at=None, updated_at=START,
        last_error=None,
    )  # fmt: skip


# -- full_load_percent --------------------------------------------------------------------------


def test_percent_is_copied_over_estimated_across_all_tables() -> None:
    tables = [_table("a", 50, 100), _table("b", 25, 300)]
    assert full_load_percent("IN_PROGRESS", tables) == pytest.approx(18.75)


def test_percent_is_capped_at_100_when_the_estimate_was_low() -> None:
    assert full_load_percent("IN_PROGRESS", [_table("a", 150, 100)]) == 100.0


def test_percent_is_100_once_completed_whatever_the_counts() -> None:
    assert full_load_percent("COMPLETED", [_table("a", 0, None)]) == 100.0
    assert full_load_percent("COMPLETED", []) == 100.0


@pytest.mark.parametrize(
    ("status", "tables"),
    [
        ("NOT_STARTED", [_table("a", 0, None), _table("b", 0, None)]),
        # A table not started yet has no estimate: a partial sum would read 100% here.
        ("IN_PROGRESS", [_table("a", 100, 100), _table("b", 0, None)]),
        ("IN_PROGRESS", []),
        ("IN_PROGRESS", [_table("a", 0, 0), _table("b", 0, 0)]),
        ("SKIPPED", []),
    ],
    ids=["no-estimates", "one-estimate-missing", "no-tables", "zero-estimate", "skipped"],
)
def test_percent_is_none_without_a_full_estimate(
    status: str, tables: list[TableStateRecord]
) -> None:
    assert full_load_percent(status, tables) is None


def test_percent_counts_the_tables_already_done() -> None:
    tables = [_table("a", 100, 100), _table("b", 0, 300)]
    assert full_load_percent("IN_PROGRESS", tables) == 25.0


# -- last_error_short ---------------------------------------------------------------------------


@pytest.mark.parametrize("error", [None, "", "   ", "\n\n \t\n"])
def test_no_error_text_gives_none(error: str | None) -> None:
    assert last_error_short(error) is None


def test_first_line_only_and_stripped() -> None:
    error = "  rejected change on shop.customers [id=42]: value too long  \nDETAIL: more\nCONTEXT"
    assert last_error_short(error) == "rejected change on shop.customers [id=42]: value too long"


def test_leading_blank_lines_are_skipped() -> None:
    assert last_error_short("\n\n  source unreachable\nmore") == "source unreachable"


def test_exactly_80_characters_is_kept_whole() -> None:
    line = "x" * 80
    assert last_error_short(line + "\nsecond") == line


def test_81_characters_are_cut_to_80_with_an_ellipsis() -> None:
    short = last_error_short("y" * 81)
    assert short == "y" * 79 + "…"
    assert short is not None and len(short) == 80


def test_cut_does_not_leave_a_space_before_the_ellipsis() -> None:
    short = last_error_short("a" * 78 + " " + "b" * 10)
    assert short == "a" * 78 + "…"


def test_width_is_a_parameter() -> None:
    assert last_error_short("abcdef", width=4) == "abc…"


# -- source_keys --------------------------------------------------------------------------------

NAMED = ConnectionRef("postgresql://cdc@db1:5432/shop", "postgresql", "shop", "SHOP_PW")
MOVED = ConnectionRef("postgresql://cdc@db2:5432/shop", "postgresql", "shop", "SHOP_PW")
BARE = ConnectionRef("postgresql://cdc@db3:5432/crm", "postgresql")


def test_key_is_the_connection_name_else_its_url() -> None:
    assert source_keys([NAMED, BARE, NAMED]) == {NAMED: "shop", BARE: BARE.url}


def test_one_name_stored_with_two_urls_gives_two_keys() -> None:
    keys = source_keys([NAMED, MOVED])
    assert keys == {
        NAMED: "shop (postgresql://cdc@db1:5432/shop)",
        MOVED: "shop (postgresql://cdc@db2:5432/shop)",
    }


def test_one_url_with_two_password_sources_gives_two_keys() -> None:
    other = ConnectionRef(BARE.url, "postgresql", password_file="/run/secrets/crm")
    keys = source_keys([BARE, other])
    assert sorted(keys.values()) == [BARE.url, BARE.url + " #2"]


# -- LeaseRepository.all ------------------------------------------------------------------------


def test_all_leases_in_one_read(store: Store, clock: FakeClock) -> None:
    repo = PipelineRepository(store)
    for name in ("a", "b", "c"):
        create_pipeline(repo, name)
    leases = LeaseRepository(store)
    assert leases.all() == {}
    leases.acquire("a", owner="r1", pid=11, host="h1", ttl_s=30)
    leases.acquire("c", owner="r3", pid=33, host="h3", ttl_s=30)
    clock.advance(60)  # expired leases are still returned: the caller judges freshness
    everything = leases.all()
    assert everything == {"a": leases.get("a"), "c": leases.get("c")}
    assert (everything["c"].pid, everything["c"].host) == (33, "h3")
    assert leases.release("a", "r1")
    assert set(leases.all()) == {"c"}
