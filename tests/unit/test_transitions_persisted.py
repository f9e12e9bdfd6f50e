"""Every status transition is checked against TRANSITIONS, persisted and recorded as an event."""

from __future__ import annotations

from typing import cast

import pytest
from sqlalchemy import func, select, update

from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import (
    ENUM_OF,
    CdcStatus,
    FullLoadStatus,
    PipelineStatus,
    StatusField,
    TableState,
    is_legal,
)
from cdc_tui.errors import IllegalTransitionError, NotFoundError
from cdc_tui.store.db import Store
from cdc_tui.store.models import Event, Pipeline, PipelineTable
from cdc_tui.store.records import EventKind, PipelineRecord, TableStateRecord
from cdc_tui.store.repositories import PipelineRepository
from tests.unit.store_support import TABLES, FakeClock, create_pipeline, run_together

PIPELINE_FIELDS = [StatusField.STATUS, StatusField.FULL_LOAD_STATUS, StatusField.CDC_STATUS]
TABLE = TABLES[1]


@pytest.fixture
def repo(store: Store) -> PipelineRepository:
    repo = PipelineRepository(store)
    create_pipeline(repo)
    return repo


def _force(store: Store, field: StatusField, value: str) -> None:
    """Put a status column in `value` directly, bypassing the transition table (setup only)."""
    with store.begin() as session:
        if field == StatusField.TABLE_STATE:
            session.execute(
                update(PipelineTable)
                .where(PipelineTable.table_name == TABLE.name)
                .values(state=value)
            )
        else:
            session.execute(update(Pipeline).values({field.value: value}))


def _event_count(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(Event)) or 0


def _value(record: PipelineRecord, field: StatusField) -> str:
    if field == StatusField.TABLE_STATE:
        return next(t.state for t in record.tables if t.table == TABLE)
    return str(getattr(record, field.value))


def _transition(repo: PipelineRepository, field: StatusField, new: str) -> PipelineRecord:
    if field == StatusField.TABLE_STATE:
        return repo.transition_table(
            # cast, not TableState(new): unknown names must reach the repository and be refused.
            "orders",
            TABLE,
            cast(TableState, new),
            reason=f"to {new}",
            actor="runner",
        )
    return repo.transition("orders", field, new, reason=f"to {new}", actor="runner")


def _pairs(field: StatusField) -> list[tuple[str, str]]:
    values = list(ENUM_OF[field])
    return [(a.value, b.value) for a in values for b in values if a != b]


@pytest.mark.parametrize("field", list(StatusField))
def test_every_legal_transition_persists_with_an_event(
    repo: PipelineRepository, store: Store, clock: FakeClock, field: StatusField
) -> None:
    legal = [(a, b) for a, b in _pairs(field) if is_legal(field, a, b)]
    assert legal, "the transition table lists moves for every field"
    for current, new in legal:
        _force(store, field, current)
        now = clock.advance()
        record = _transition(repo, field, new)
        assert _value(record, field) == new, (current, new)
        assert _value(repo.get("orders"), field) == new, (current, new)
        assert record.updated_at == now
        latest = repo.events("orders", limit=1)[0]
        assert latest.kind is EventKind.TRANSITION
        assert (latest.field, latest.from_value, latest.to_value) == (field.value, current, new)
        assert (latest.reason, latest.actor, latest.at) == (f"to {new}", "runner", now)
        assert latest.table == (str(TABLE) if field == StatusField.TABLE_STATE else None)


@pytest.mark.parametrize("field", list(StatusField))
def test_every_illegal_transition_raises_and_writes_nothing(
    repo: PipelineRepository, store: Store, clock: FakeClock, field: StatusField
) -> None:
    illegal = [(a, b) for a, b in _pairs(field) if not is_legal(field, a, b)]
    assert illegal
    for current, new in [*illegal, (_pairs(field)[0][0], "NO_SUCH_STATE")]:
        _force(store, field, current)
        before, events = repo.get("orders"), _event_count(store)
        clock.advance()
        with pytest.raises(IllegalTransitionError):
            _transition(repo, field, new)
        assert repo.get("orders") == before, (current, new)
        assert _event_count(store) == events, (current, new)


def test_same_state_transition_is_a_no_op(
    repo: PipelineRepository, store: Store, clock: FakeClock
) -> None:
    before, events = repo.get("orders"), _event_count(store)
    clock.advance()
    record = repo.transition(
        "orders", StatusField.STATUS, PipelineStatus.STOPPED, reason="again", actor="dba"
    )
    table_record = repo.transition_table(
        "orders", TABLE, TableState.PENDING, reason="again", actor="dba"
    )
    assert record == before == table_record == repo.get("orders")
    assert _event_count(store) == events


def test_failure_transition_can_record_the_error(repo: PipelineRepository) -> None:
    record = repo.transition(
        "orders", StatusField.CDC_STATUS, CdcStatus.FAILED, reason="slot lost", actor="runner",
        error="replication slot cdc_tui_orders is missing",
    )  # fmt: skip
    assert record.cdc_status is CdcStatus.FAILED
    assert repo.get("orders").last_error == "replication slot cdc_tui_orders is missing"


def test_table_transitions_set_timestamps_and_reset(
    repo: PipelineRepository, clock: FakeClock
) -> None:
    def table_state(record: PipelineRecord) -> TableStateRecord:
        return next(t for t in record.tables if t.table == TABLE)

    started = clock.advance()
    row = table_state(
        repo.transition_table("orders", TABLE, TableState.COPYING, reason="go", actor="r")
    )
    assert (row.started_at, row.completed_at, row.last_error) == (started, None, None)
    repo.update_table_progress("orders", TABLE, rows_copied=10, rows_estimated=10)
    failed = repo.transition_table(
        "orders", TABLE, TableState.FAILED, reason="copy failed", actor="r", error="disk full"
    )
    assert table_state(failed).last_error == "disk full"
    repo.transition_table("orders", TABLE, TableState.COPYING, reason="retry", actor="r")
    done_at = clock.advance()
    row = table_state(
        repo.transition_table("orders", TABLE, TableState.COMPLETED, reason="ok", actor="r")
    )
    assert (row.completed_at, row.last_error, row.rows_copied) == (done_at, None, 10)
    row = table_state(
        repo.transition_table("orders", TABLE, TableState.PENDING, reason="resync", actor="r")
    )
    assert (row.started_at, row.completed_at, row.rows_copied) == (None, None, 0)
    others = [t for t in repo.get("orders").tables if t.table != TABLE]
    assert all(t.state is TableState.PENDING and t.started_at is None for t in others)


def test_transition_rejects_the_table_field_and_unknown_tables(repo: PipelineRepository) -> None:
    with pytest.raises(ValueError, match="transition_table"):
        repo.transition(
            "orders", StatusField.TABLE_STATE, TableState.COPYING, reason="x", actor="y"
        )
    with pytest.raises(NotFoundError, match="not part of pipeline"):
        repo.transition_table(
            "orders", TableRef("public", "ghost"), TableState.COPYING, reason="x", actor="y"
        )


def test_concurrent_identical_transitions_record_one_event(
    repo: PipelineRepository, store: Store
) -> None:
    # Without the row lock both threads would read STOPPED and both write a transition event.
    for _ in range(5):
        _force(store, StatusField.FULL_LOAD_STATUS, FullLoadStatus.NOT_STARTED)
        events = _event_count(store)
        run_together(
            lambda _: repo.transition(
                "orders", StatusField.FULL_LOAD_STATUS, FullLoadStatus.IN_PROGRESS,
                reason="start", actor="runner",
            ),
            ["a", "b", "c", "d"],
        )  # fmt: skip
        assert _event_count(store) == events + 1
        assert repo.get("orders").full_load_status is FullLoadStatus.IN_PROGRESS
