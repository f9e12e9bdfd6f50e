"""The transition table: every listed move is legal, everything else raises."""

from __future__ import annotations

import itertools

import pytest

from cdc_tui.domain.status import (
    ENUM_OF,
    FAILURE_STATE,
    TRANSITIONS,
    CdcStatus,
    FullLoadStatus,
    Mode,
    PipelineStatus,
    StatusField,
    check_transition,
    initial_full_load_status,
    is_legal,
)
from cdc_tui.errors import IllegalTransitionError


def test_every_state_of_every_field_has_a_row() -> None:
    for field, enum in ENUM_OF.items():
        assert set(TRANSITIONS[field]) == set(enum.__members__), field


def test_design_lifecycle_is_legal() -> None:
    path = ["STOPPED", "STARTING", "RUNNING", "STOPPING", "STOPPED"]
    for a, b in itertools.pairwise(path):
        check_transition(StatusField.STATUS, a, b)
    for a, b in itertools.pairwise(["NOT_STARTED", "IN_PROGRESS", "COMPLETED"]):
        check_transition(StatusField.FULL_LOAD_STATUS, a, b)
    for a, b in itertools.pairwise(["NOT_STARTED", "STARTING", "RUNNING", "PAUSED"]):
        check_transition(StatusField.CDC_STATUS, a, b)


@pytest.mark.parametrize("field", list(StatusField))
def test_failure_state_reachable_from_every_other_state(field: StatusField) -> None:
    failure = FAILURE_STATE[field]
    for state in ENUM_OF[field].__members__:
        if state != failure:
            assert is_legal(field, state, failure), (field, state)


@pytest.mark.parametrize(
    ("field", "current", "new"),
    [
        (StatusField.STATUS, PipelineStatus.STOPPED, PipelineStatus.RUNNING),
        (StatusField.STATUS, PipelineStatus.STOPPING, PipelineStatus.RUNNING),
        (StatusField.FULL_LOAD_STATUS, FullLoadStatus.NOT_STARTED, FullLoadStatus.COMPLETED),
        (StatusField.FULL_LOAD_STATUS, FullLoadStatus.COMPLETED, FullLoadStatus.IN_PROGRESS),
        (StatusField.CDC_STATUS, CdcStatus.NOT_STARTED, CdcStatus.RUNNING),
        (StatusField.CDC_STATUS, CdcStatus.FAILED, CdcStatus.FAILED),
        (StatusField.STATUS, "STOPPED", "BOGUS"),
    ],
)
def test_illegal_transitions_raise(field: StatusField, current: str, new: str) -> None:
    assert not is_legal(field, current, new)
    with pytest.raises(IllegalTransitionError, match=f"{field} cannot go from {current}"):
        check_transition(field, current, new)


def test_table_is_exhaustive_over_pairs() -> None:
    """Walk every pair once: legal exactly when listed or when entering the failure state."""
    for field, enum in ENUM_OF.items():
        for a, b in itertools.product(enum.__members__, repeat=2):
            listed = b in TRANSITIONS[field][a]
            entering_failure = b == FAILURE_STATE[field] and a != b
            assert is_legal(field, a, b) == (listed or entering_failure), (field, a, b)


def test_cdc_only_skips_the_full_load() -> None:
    assert initial_full_load_status(Mode.CDC_ONLY) == FullLoadStatus.SKIPPED
    assert initial_full_load_status(Mode.FULL_LOAD_AND_CDC) == FullLoadStatus.NOT_STARTED
    assert initial_full_load_status(Mode.FULL_LOAD_ONLY) == FullLoadStatus.NOT_STARTED
