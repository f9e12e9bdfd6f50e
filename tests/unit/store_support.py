"""Helpers shared by the metadata DB tests: a controllable clock and a sample pipeline."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import Engine, Mode
from cdc_tui.store.records import PipelineRecord
from cdc_tui.store.repositories import PipelineRepository

T = TypeVar("T")

START = datetime(2026, 11, 23, 18, 30, tzinfo=UTC)
TABLES = (TableRef("public", "orders"), TableRef("sales", "Order Items"), TableRef("public", "a"))
SOURCE = ConnectionRef(
    url="postgresql://cdc@src.example:5432/shop", kind="postgresql", name="shop",
    password_env="SHOP_PASSWORD",
)  # fmt: skip
TARGET = ConnectionRef(
    url="mssql://loader@dw.example:1433/dw", kind="mssql", password_file="/run/secrets/dw"
)


class FakeClock:
    """A clock that only moves when told to, so tests can assert exact timestamps."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float = 1.0) -> datetime:
        with self._lock:
            self.now += timedelta(seconds=seconds)
            return self.now


def create_pipeline(
    repo: PipelineRepository,
    name: str = "orders",
    *,
    mode: Mode = Mode.FULL_LOAD_AND_CDC,
    tables: tuple[TableRef, ...] = TABLES,
) -> PipelineRecord:
    return repo.create(
        name=name,
        engine=Engine.EMBEDDED,
        mode=mode,
        source=SOURCE,
        target=TARGET,
        tables=tables,
        target_schema="replica",
        connect_url=None,
        actor="test",
    )


def run_together(work: Callable[[str], T], names: list[str]) -> dict[str, T]:
    """Run `work(name)` in one thread per name, released at once; re-raise the first failure."""
    barrier = threading.Barrier(len(names))
    results: dict[str, T] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        barrier.wait()
        try:
            results[name] = work(name)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
