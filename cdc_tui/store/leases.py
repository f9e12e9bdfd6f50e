"""Runner leases: at most one live runner per pipeline, kept alive by heartbeats."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import ScalarSelect, delete, select, update

from cdc_tui.store.db import Clock, Store
from cdc_tui.store.models import Pipeline, RunnerLease
from cdc_tui.store.queries import execute_dml, lock_pipeline, now_from
from cdc_tui.store.records import LeaseRecord

log = logging.getLogger(__name__)


class LeaseRepository:
    """Acquire, renew and release the runner lease of a pipeline."""

    def __init__(self, store: Store, *, clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock or store.clock

    def acquire(
        self,
        pipeline_name: str,
        *,
        owner: str,
        pid: int,
        host: str,
        ttl_s: float,
        steal_from: str | None = None,
    ) -> LeaseRecord | None:
        """Take the lease if it is free, expired or already ours; None if a live owner holds it.

        Atomic: the pipeline row is locked (SQLite: the database write lock) while deciding.
        """
        with self._store.begin() as session:
            pipeline = lock_pipeline(session, pipeline_name)
            now = now_from(self._clock)
            expires = now + timedelta(seconds=ttl_s)
            lease = session.get(RunnerLease, pipeline.id)
            if lease is None:
                lease = RunnerLease(pipeline_id=pipeline.id, acquired_at=now)
                session.add(lease)
            elif lease.owner != owner:
                # steal_from names an owner the caller proved dead (its pid is gone on this host).
                if lease.expires_at > now and lease.owner != steal_from:
                    return None
                log.info(
                    "Taking over the expired lease of %s from %s (pid %s on %s)",
                    pipeline_name,
                    lease.owner,
                    lease.pid,
                    lease.host,
                )
                lease.acquired_at = now
            lease.owner, lease.pid, lease.host = owner, pid, host
            lease.heartbeat_at, lease.expires_at = now, expires
            session.flush()
            return _lease_record(pipeline_name, lease)

    def heartbeat(self, pipeline_name: str, owner: str, ttl_s: float) -> bool:
        """Extend our lease; False when it is no longer ours (taken over or released)."""
        now = now_from(self._clock)
        statement = (
            update(RunnerLease)
            .where(RunnerLease.pipeline_id == _pipeline_id_subquery(pipeline_name))
            .where(RunnerLease.owner == owner)
            .values(heartbeat_at=now, expires_at=now + timedelta(seconds=ttl_s))
        )
        with self._store.begin() as session:
            return execute_dml(session, statement) == 1

    def release(self, pipeline_name: str, owner: str) -> bool:
        """Give the lease up if it is ours; True when a lease was released."""
        statement = (
            delete(RunnerLease)
            .where(RunnerLease.pipeline_id == _pipeline_id_subquery(pipeline_name))
            .where(RunnerLease.owner == owner)
        )
        with self._store.begin() as session:
            return execute_dml(session, statement) == 1

    def get(self, pipeline_name: str) -> LeaseRecord | None:
        """The current lease, live or expired, or None when no runner holds one."""
        statement = (
            select(RunnerLease)
            .join(Pipeline, Pipeline.id == RunnerLease.pipeline_id)
            .where(Pipeline.name == pipeline_name)
        )
        with self._store.session() as session:
            lease = session.scalars(statement).one_or_none()
            return None if lease is None else _lease_record(pipeline_name, lease)

    def all(self) -> dict[str, LeaseRecord]:
        """Every current lease, live or expired, in one query.

        Returns:
            LeaseRecord by pipeline name; a pipeline no runner holds is absent.
        """
        statement = select(Pipeline.name, RunnerLease).join(
            Pipeline, Pipeline.id == RunnerLease.pipeline_id
        )
        with self._store.session() as session:
            return {name: _lease_record(name, lease) for name, lease in session.execute(statement)}


def _pipeline_id_subquery(name: str) -> ScalarSelect[int]:
    return select(Pipeline.id).where(Pipeline.name == name).scalar_subquery()


def _lease_record(pipeline_name: str, lease: RunnerLease) -> LeaseRecord:
    return LeaseRecord(
        pipeline_name=pipeline_name,
        owner=lease.owner,
        pid=lease.pid,
        host=lease.host,
        acquired_at=lease.acquired_at,
        heartbeat_at=lease.heartbeat_at,
        expires_at=lease.expires_at,
    )
