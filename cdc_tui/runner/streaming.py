"""Step 2 set-up: check the slot against the target's position, then stream (see cdc.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import CdcStatus
from cdc_tui.engines.embedded.applier import PgApplier
from cdc_tui.engines.embedded.replication import ReplicationConnection
from cdc_tui.engines.embedded.source_transactions import SourceTransactions
from cdc_tui.engines.embedded.target_table import TargetTable, read_target_table
from cdc_tui.errors import OperationError
from cdc_tui.lsn import lsn_to_int, lsn_to_str
from cdc_tui.pgconn import PgParams, connect
from cdc_tui.runner.cdc import CdcStream, StreamMetrics
from cdc_tui.runner.steps import StepContext
from cdc_tui.sources.postgres.catalog import TableDef
from cdc_tui.sources.postgres.objects import slot_row
from cdc_tui.targets.postgres.ddl import TablePlan

if TYPE_CHECKING:
    from cdc_tui.runner.runner import Runner

log = logging.getLogger(__name__)

# Statements carry up to 2,000 changes each, and a target commit waits for up to 10 of them, so
# the target applies one batch while the runner decodes the next (5,000 per commit left the
# runner waiting 40% of the time); memory is bounded by the batch, not the group.
APPLY_BATCH_CHANGES = 2000
APPLY_GROUP_CHANGES = 20_000

# A column added mid-stream gets the type Step 0 would give it: enums and composites as text.
TYPE_FOR_NEW_COLUMN = """
SELECT CASE WHEN t.typtype IN ('e', 'c') THEN 'text'
            WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod)
            ELSE pg_catalog.format_type(%s::oid, %s::int) END
  FROM pg_catalog.pg_type AS t
 WHERE t.oid = %s::oid
"""


class SourceTypeNamer:
    """Names source types for ADD COLUMN on the target, through one lazily opened connection."""

    def __init__(self, params: PgParams) -> None:
        self.params = params

    def __call__(self, type_oid: int, type_modifier: int) -> str:
        with connect(self.params) as conn:
            row: Any = conn.execute(TYPE_FOR_NEW_COLUMN, (type_oid, type_modifier, type_oid))
            found = row.fetchone()
        if found is None:
            raise OperationError(f"Source type oid {type_oid} no longer exists.")
        return str(found[0])


def target_tables(
    conn: psycopg.Connection[Any], plans: Sequence[tuple[TableDef, TablePlan]]
) -> dict[TableRef, TargetTable]:
    """The applier's map, read from the target as it is now: it holds exactly the columns
    applied so far, so a column the source added while we were stopped arrives as an ADD."""
    tables = {d.ref: read_target_table(conn, d.ref, p.target) for d, p in plans}
    conn.commit()
    return tables


def check_slot(sc: StepContext, position: int) -> None:
    """The slot must exist, hold its WAL, and not be ahead of what the target has applied."""
    with connect(sc.source) as conn:
        row = slot_row(conn, sc.slot_name)
    if row is None:
        raise OperationError(
            f"Replication slot {sc.slot_name} of pipeline {sc.pipeline!r} is missing on the "
            f"source (dropped outside cdc-tui); changes since were lost: resync required "
            f"(`cdc-tui resync {sc.pipeline}`)."
        )
    if row.get("wal_status") == "lost":
        raise OperationError(
            f"Replication slot {sc.slot_name} was invalidated (wal_status lost: the source "
            f"removed WAL it still needed); resync required (`cdc-tui resync {sc.pipeline}`)."
        )
    confirmed = row.get("confirmed_flush_lsn")
    if confirmed and lsn_to_int(confirmed) > position:
        raise OperationError(
            f"Replication slot {sc.slot_name} was advanced to {confirmed}, past the target's "
            f"applied position {lsn_to_str(position)}: the changes between are lost (data "
            f"gap); resync required (`cdc-tui resync {sc.pipeline}`)."
        )


def run_step2(runner: Runner, sc: StepContext, plans: Sequence[tuple[TableDef, TablePlan]]) -> None:
    """Stream the slot into the PostgreSQL target until the runner is asked to stop."""
    announce_step2(runner, sc)
    with connect(sc.pg_target, autocommit=False) as target:
        applier = PgApplier(
            target,
            sc.pipeline,
            target_tables(target, plans),
            type_namer=SourceTypeNamer(sc.source),
            batch_changes=APPLY_BATCH_CHANGES,
            group_changes=APPLY_GROUP_CHANGES,
        )
        stream_into(runner, sc, applier)


def announce_step2(runner: Runner, sc: StepContext) -> None:
    """CDC goes STARTING before the target is reached (a retry stays RECONNECTING)."""
    if runner.repo.get(sc.pipeline).cdc_status != CdcStatus.RECONNECTING:
        runner.cdc(CdcStatus.STARTING, "Step 2 starting")


def stream_into(runner: Runner, sc: StepContext, applier: SourceTransactions) -> None:
    """Check the slot against the applier's stored position, then stream until stopped."""
    base_changes = runner.repo.get(sc.pipeline).changes_applied
    position = applier.read_position()
    if position is None:
        raise OperationError(
            f"The target has no applied position for pipeline {sc.pipeline!r} "
            f"(cdc_tui.applied_position was emptied); resync required."
        )
    check_slot(sc, position)
    with ReplicationConnection.open(sc.source, application_name=f"cdc-tui {sc.pipeline}") as repl:
        repl.start(sc.slot_name, position, publication_names=[sc.publication_name])
        runner.cdc(CdcStatus.RUNNING, f"streaming from {lsn_to_str(position)}")
        runner.repo.update(sc.pipeline, last_error=None)  # recovered: the events keep it
        runner.backoff.reset()
        runner.steplog.step2(f"streaming slot {sc.slot_name} from {lsn_to_str(position)}")

        def persist(m: StreamMetrics) -> None:
            runner.repo.update(
                sc.pipeline,
                applied_lsn=lsn_to_str(m.applied_lsn),
                changes_applied=base_changes + m.changes_applied,
                last_applied_at=m.last_applied_at,
                lag_seconds=m.lag_seconds,
            )

        stream = CdcStream(
            repl, applier, should_stop=runner.should_stop, on_metrics=persist, start_lsn=position
        )
        stream.run()
    runner.steplog.step2(f"stopped at {lsn_to_str(stream.metrics.applied_lsn)}")
