"""Runner leases: one live owner per pipeline, heartbeats, takeover after expiry."""

from __future__ import annotations

import pytest

from cdc_tui.errors import NotFoundError
from cdc_tui.store.db import Store
from cdc_tui.store.leases import LeaseRepository
from cdc_tui.store.records import LeaseRecord
from cdc_tui.store.repositories import PipelineRepository
from tests.unit.store_support import START, FakeClock, create_pipeline, run_together

TTL = 30.0


@pytest.fixture
def leases(store: Store) -> LeaseRepository:
    create_pipeline(PipelineRepository(store))
    return LeaseRepository(store)


def _take(leases: LeaseRepository, owner: str) -> LeaseRecord | None:
    return leases.acquire("orders", owner=owner, pid=100, host=f"host-{owner}", ttl_s=TTL)


def test_acquire_free_lease_and_refuse_a_second_owner(
    leases: LeaseRepository, clock: FakeClock
) -> None:
    assert leases.get("orders") is None
    mine = _take(leases, "a")
    assert mine is not None
    assert (mine.owner, mine.host, mine.acquired_at) == ("a", "host-a", START)
    assert mine.expires_at == START.replace(second=30)
    assert mine.is_fresh(clock()) and not mine.is_fresh(mine.expires_at)
    assert _take(leases, "b") is None
    assert leases.get("orders") == mine


def test_reacquire_by_owner_refreshes_and_keeps_acquired_at(
    leases: LeaseRepository, clock: FakeClock
) -> None:
    _take(leases, "a")
    now = clock.advance(10)
    again = _take(leases, "a")
    assert again is not None
    assert (again.acquired_at, again.heartbeat_at) == (START, now)


def test_heartbeat_extends_only_our_lease(leases: LeaseRepository, clock: FakeClock) -> None:
    _take(leases, "a")
    now = clock.advance(20)
    assert leases.heartbeat("orders", "a", TTL) is True
    lease = leases.get("orders")
    assert lease is not None
    assert (lease.heartbeat_at, lease.expires_at.timestamp() - now.timestamp()) == (now, TTL)
    assert leases.heartbeat("orders", "b", TTL) is False
    clock.advance(TTL - 1)
    assert _take(leases, "b") is None


def test_takeover_after_expiry_and_the_old_owner_learns_it(
    leases: LeaseRepository, clock: FakeClock
) -> None:
    _take(leases, "a")
    clock.advance(TTL - 0.5)
    assert _take(leases, "b") is None
    taken_at = clock.advance(1)
    theirs = _take(leases, "b")
    assert theirs is not None
    assert (theirs.owner, theirs.acquired_at) == ("b", taken_at)
    assert leases.heartbeat("orders", "a", TTL) is False
    assert leases.release("orders", "a") is False
    assert leases.get("orders") == theirs
    assert leases.release("orders", "b") is True
    assert leases.get("orders") is None


def test_unknown_pipeline(leases: LeaseRepository) -> None:
    with pytest.raises(NotFoundError):
        leases.acquire("nope", owner="a", pid=1, host="h", ttl_s=TTL)
    assert leases.get("nope") is None
    assert leases.heartbeat("nope", "a", TTL) is False


@pytest.mark.parametrize("expired_before", [False, True])
def test_concurrent_acquirers_exactly_one_wins(
    leases: LeaseRepository, clock: FakeClock, expired_before: bool
) -> None:
    for round_ in range(4):
        if expired_before:
            assert _take(leases, f"stale-{round_}") is not None
            clock.advance(TTL + 1)
        owners = [f"r{round_}-{i}" for i in range(6)]
        results = run_together(lambda owner: _take(leases, owner), owners)
        winners = [owner for owner, lease in results.items() if lease is not None]
        assert len(winners) == 1, results
        current = leases.get("orders")
        assert current is not None and current.owner == winners[0]
        assert leases.release("orders", winners[0]) is True
