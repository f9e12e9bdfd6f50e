"""Store fixtures shared by the metadata DB tests: a fixed clock and a store on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cdc_tui.store.db import Store, open_store
from tests.unit.store_support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(metadata_url: str, clock: FakeClock) -> Iterator[Store]:
    store = open_store(metadata_url, clock=clock)
    yield store
    store.dispose()
