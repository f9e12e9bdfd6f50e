"""Step log lines (Step 0, 1, 2) persisted per pipeline and tailed by the console."""

from __future__ import annotations

from sqlalchemy import select

from cdc_tui.store.db import Clock, Store
from cdc_tui.store.models import StepLog
from cdc_tui.store.queries import lock_pipeline, now_from, pipeline_id_of
from cdc_tui.store.records import LogRecord

STEPS = frozenset({0, 1, 2})
LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})


class StepLogRepository:
    """Appends and tails the step logs of pipelines."""

    def __init__(self, store: Store, *, clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock or store.clock

    def append(self, name: str, step: int, level: str, message: str) -> LogRecord:
        """Persist one log line of `step` (0, 1 or 2) for pipeline `name`."""
        if step not in STEPS:
            raise ValueError(f"step must be 0, 1 or 2, not {step!r}")
        level = level.upper()
        if level not in LEVELS:
            raise ValueError(f"log level must be one of {sorted(LEVELS)}, not {level!r}")
        now = now_from(self._clock)
        with self._store.begin() as session:
            # The row lock makes ids commit in order per pipeline, so tailing by id misses none.
            row = StepLog(
                pipeline_id=lock_pipeline(session, name).id,
                step=step,
                level=level,
                at=now,
                message=message,
            )
            session.add(row)
            session.flush()
            return _log_record(row)

    def tail(
        self, name: str, *, step: int | None = None, after_id: int = 0, limit: int = 500
    ) -> list[LogRecord]:
        """Lines with id > `after_id` in ascending id order: pass the last id seen to follow."""
        with self._store.session() as session:
            statement = (
                select(StepLog)
                .where(StepLog.pipeline_id == pipeline_id_of(session, name))
                .where(StepLog.id > after_id)
                .order_by(StepLog.id)
                .limit(limit)
            )
            if step is not None:
                statement = statement.where(StepLog.step == step)
            return [_log_record(row) for row in session.scalars(statement)]


def _log_record(row: StepLog) -> LogRecord:
    return LogRecord(id=row.id, step=row.step, level=row.level, at=row.at, message=row.message)
