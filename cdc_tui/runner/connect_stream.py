"""Step 2 on the kafka_connect engine: create or resume the connectors, then watch them.

The runner does not carry the changes (Debezium and the JDBC sink do); it keeps the statuses
true: connector and task states, restarts of failed tasks with backoff and a cap, the slot's
position, the end-to-end lag timed by the heartbeat row, and a stalled source.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from cdc_tui.config.settings import KafkaConnectSettings
from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import CdcStatus, TableState
from cdc_tui.engines.kafka_connect.configs import (
    PipelineConnectors,
    mssql_endpoint,
    sink_config,
    source_config,
)
from cdc_tui.engines.kafka_connect.endpoints import endpoint, password_reference
from cdc_tui.engines.kafka_connect.lifecycle import (
    ensure_connectors,
    state_or_none,
    stop_connectors,
)
from cdc_tui.engines.kafka_connect.naming import ConnectNames, heartbeat_table
from cdc_tui.engines.kafka_connect.rest import (
    ConnectClient,
    ConnectError,
    ConnectorMissing,
    ConnectorState,
    ConnectUnreachable,
)
from cdc_tui.errors import OperationError
from cdc_tui.kafka_stack import JDBC_SINK_CONNECTOR_CLASS, POSTGRES_CONNECTOR_CLASS
from cdc_tui.lsn import lsn_to_int
from cdc_tui.pgconn import connect
from cdc_tui.runner.steps import StepContext
from cdc_tui.services.connect_ops import client_for, names_of
from cdc_tui.sources.postgres.debezium_objects import BEAT, heartbeat_query
from cdc_tui.sources.postgres.objects import slot_row
from cdc_tui.sources.postgres.slots import SlotInfo, read_slot
from cdc_tui.store.records import PipelineRecord
from cdc_tui.targets.mssql.admin import read_heartbeat
from cdc_tui.targets.mssql.connection import MssqlParams
from cdc_tui.targets.mssql.connection import connect as mssql_connect
from cdc_tui.targets.mssql.ddl import DEFAULT_SCHEMA
from cdc_tui.targets.mssql.identifiers import quote_qualified
from cdc_tui.targets.mssql.schema import identity_tables

if TYPE_CHECKING:
    from cdc_tui.runner.runner import Runner

log = logging.getLogger(__name__)

RESTART_FIRST_DELAY_S = 5.0
# A task that has run this long since its last automatic restart gets its full budget back.
RESTART_BUDGET_RESET_S = 300.0
TARGET_BEAT = "SELECT beat_at FROM {} WHERE id = 1"
# Debezium's source offset: the commit position of the last transaction it has read (older
# offsets carry only `lsn`).
OFFSET_LSN_KEYS = ("lsn_commit", "lsn")


def pipeline_connectors(
    runner: Runner, sc: StepContext, pipeline: PipelineRecord, *, identity_insert: bool = False
) -> PipelineConnectors:
    settings = runner.ctx.settings
    if isinstance(sc.target, MssqlParams):
        mssql = sc.target
        reference = password_reference(pipeline.target, mssql.password, settings,
                                       role="target", pipeline=sc.pipeline)  # fmt: skip
        trust = mssql.trust_server_certificate
        target = mssql_endpoint(
            mssql, reference, encrypt=mssql.encrypt, trust_server_certificate=trust
        )
    else:
        target = endpoint(
            pipeline.target, sc.pg_target, settings, role="target", pipeline=sc.pipeline
        )
    return PipelineConnectors(
        names=names_of(pipeline),
        slot_name=sc.slot_name,
        publication_name=sc.publication_name,
        tables=sc.tables,
        source=endpoint(pipeline.source, sc.source, settings, role="source", pipeline=sc.pipeline),
        target=target,
        target_schema=sc.target_schema,
        heartbeat_ms=settings.kafka_connect.heartbeat_interval_ms,
        heartbeat_query=heartbeat_query(sc.pipeline),
        identity_insert=identity_insert,
    )


def mssql_identity_insert(sc: StepContext) -> bool:
    """Whether any target table has an IDENTITY column (tables cdc-tui did not create): the
    sink must then wrap its inserts in IDENTITY_INSERT."""
    if not isinstance(sc.target, MssqlParams):
        return False
    schema = sc.target_schema or DEFAULT_SCHEMA
    names = [quote_qualified(schema, t.name) for t in sc.tables]
    conn = mssql_connect(sc.target)
    try:
        found = identity_tables(conn.cursor(), names)
    finally:
        conn.close()
    if found:
        sc.steplog.step2(f"IDENTITY columns in {', '.join(found)}: the sink inserts with "
                         "IDENTITY_INSERT on")  # fmt: skip
    return bool(found)


def check_slot_alive(sc: StepContext) -> None:
    """Debezium would create a missing slot and stream from now: a silent gap, so refuse."""
    with connect(sc.source) as conn:
        row = slot_row(conn, sc.slot_name)
    if row is None:
        raise OperationError(
            f"Replication slot {sc.slot_name} of pipeline {sc.pipeline!r} is missing on the "
            f"source; changes since were lost: resync required (`cdc-tui resync {sc.pipeline}`)."
        )
    if row.get("wal_status") == "lost":
        raise OperationError(
            f"Replication slot {sc.slot_name} was invalidated (wal_status lost); resync "
            f"required (`cdc-tui resync {sc.pipeline}`)."
        )


def run_connect_step2(runner: Runner, sc: StepContext) -> None:
    pipeline = runner.repo.get(sc.pipeline)
    if pipeline.cdc_status != CdcStatus.RECONNECTING:
        runner.cdc(CdcStatus.STARTING, "Step 2 starting")
    settings = runner.ctx.settings.kafka_connect
    pc = pipeline_connectors(runner, sc, pipeline, identity_insert=mssql_identity_insert(sc))
    wanted = {
        pc.names.source_connector: (POSTGRES_CONNECTOR_CLASS, source_config(pc)),
        pc.names.sink_connector: (JDBC_SINK_CONNECTOR_CLASS, sink_config(pc)),
    }
    with client_for(pipeline, settings.request_timeout) as client:
        client.require_plugins(POSTGRES_CONNECTOR_CLASS, JDBC_SINK_CONNECTOR_CLASS)
        check_slot_alive(sc)
        ensure_connectors(client, wanted, runner.steplog.step2)
        runner.cdc(CdcStatus.RUNNING, f"connectors {', '.join(wanted)} running")
        runner.repo.update(sc.pipeline, last_error=None)
        runner.backoff.reset()
        runner.steplog.step2(
            f"Debezium streams slot {sc.slot_name} through Kafka Connect at {client.shown_url}"
        )
        watcher = ConnectWatcher(runner, sc, client, pc.names, settings)
        try:
            watcher.run()
        finally:
            if runner.should_stop():
                for line in stop_connectors(client, pc.names.connectors):
                    runner.steplog.step2(line)


@dataclass
class _TaskBudget:
    restarts: int = 0
    next_at: float = 0.0
    restarted_at: float = 0.0


@dataclass
class ConnectWatcher:
    """One look every poll interval until the runner is asked to stop."""

    runner: Runner
    sc: StepContext
    client: ConnectClient
    names: ConnectNames
    settings: KafkaConnectSettings
    budgets: dict[tuple[str, int], _TaskBudget] = field(default_factory=dict)
    beats: deque[datetime] = field(default_factory=lambda: deque(maxlen=1000))
    unreachable: bool = False
    slot_lsn: str | None = None
    slot_moved_at: float = field(default_factory=time.monotonic)
    stalled: bool = False
    # Connectors whose failure this watcher wrote into last_error, so recovery clears it.
    failures_noted: set[str] = field(default_factory=set)

    @property
    def heartbeat(self) -> TableRef:
        return heartbeat_table(self.sc.pipeline)

    def run(self) -> None:
        while not self.runner.should_stop():
            self.look_once()
            self.runner.stop_event.wait(self.settings.poll_interval)

    def look_once(self) -> None:
        try:
            states = {n: state_or_none(self.client, n) for n in self.names.connectors}
        except ConnectUnreachable as exc:
            self._unreachable(exc.message)
        else:
            self._reachable()
            self._tend(states)
        self._metrics()

    # -- Connect ---------------------------------------------------------------------------

    def _unreachable(self, message: str) -> None:
        self.runner.repo.update(self.sc.pipeline, last_error=message)
        if not self.unreachable:
            self.unreachable = True
            self.runner.cdc(CdcStatus.RECONNECTING, message)
            self.runner.steplog.step2(message, "WARNING")

    def _reachable(self) -> None:
        if self.unreachable:
            self.unreachable = False
            self.runner.repo.update(self.sc.pipeline, last_error=None)
            self.runner.cdc(CdcStatus.RUNNING, "Kafka Connect answers again")
            self.runner.steplog.step2("Kafka Connect answers again")

    def _tend(self, states: dict[str, ConnectorState | None]) -> None:
        for name, state in states.items():
            if state is None and self._config_exists(name):
                # Connect answers 404 for the status of a connector it has just created.
                log.debug("connector %s has no status yet", name)
                continue
            if state is None:
                raise ConnectorDisappeared(
                    f"Connector {name} of pipeline {self.sc.pipeline!r} disappeared from Kafka "
                    "Connect; the runner creates it again on its next attempt."
                )
            if state.state in ("STOPPED", "PAUSED"):
                self.client.resume(name)
                self.runner.steplog.step2(f"resumed connector {name} (it was {state.state})")
            failed = [(t.id, t.trace) for t in state.failed_tasks]
            if state.state == "FAILED":
                failed.append((-1, state.trace))
            for task_id, trace in failed:
                self._restart_failed(name, task_id, trace)
            self._settle_budgets(name, state)

    def _restart_failed(self, name: str, task_id: int, trace: str | None) -> None:
        budget = self.budgets.setdefault((name, task_id), _TaskBudget())
        what = f"connector {name}" if task_id < 0 else f"task {task_id} of connector {name}"
        cause = first_line(trace)
        self.runner.repo.update(self.sc.pipeline, last_error=f"{what} FAILED: {cause}")
        self.failures_noted.add(name)
        now = time.monotonic()
        if now < budget.next_at:
            return
        if budget.restarts >= self.settings.task_restart_limit:
            raise ConnectorFailed(
                f"{what} FAILED again after {budget.restarts} automatic restart(s): {cause}; "
                f"fix the cause, then `cdc-tui restart {self.sc.pipeline}`."
            )
        budget.restarts += 1
        delay = min(self.settings.task_restart_backoff_max,
                    RESTART_FIRST_DELAY_S * 2 ** (budget.restarts - 1))  # fmt: skip
        budget.next_at = now + delay
        budget.restarted_at = now
        # One call restarts exactly the failed instances, the connector's and its tasks'.
        self.client.restart(name, include_tasks=True, only_failed=True)
        self.runner.steplog.step2(
            f"{what} FAILED: {cause}; restarted it (automatic restart {budget.restarts} of "
            f"{self.settings.task_restart_limit})", "WARNING",
        )  # fmt: skip

    def _settle_budgets(self, name: str, state: ConnectorState) -> None:
        now = time.monotonic()
        running = {t.id for t in state.tasks if t.state == "RUNNING"}
        if state.state == "RUNNING":
            running.add(-1)
        for (conn_name, task_id), budget in list(self.budgets.items()):
            recovered = now - budget.restarted_at > RESTART_BUDGET_RESET_S
            if conn_name == name and task_id in running and recovered:
                del self.budgets[(conn_name, task_id)]
        healthy = not state.failed_tasks and state.state != "FAILED"
        if healthy and name in self.failures_noted:
            self.failures_noted.discard(name)
            self.runner.repo.update(self.sc.pipeline, last_error=None)

    def _config_exists(self, name: str) -> bool:
        """False only when Connect says it does not know the connector; a worker that is
        rebalancing (500, 409) or unreachable decides nothing, so the next poll asks again."""
        try:
            self.client.get_config(name)
        except ConnectorMissing:
            return False
        except ConnectError as exc:
            log.debug("connector %s: no answer about its config yet: %s", name, exc.message)
        return True

    # -- source and target -----------------------------------------------------------------

    def _metrics(self) -> None:
        """Beat, read the slot and the target's beat; persist position, lag, stall."""
        try:
            with connect(self.sc.source) as src:
                row: Any = src.execute(
                    sql.SQL(BEAT + " RETURNING beat_at").format(
                        sql.Identifier(self.heartbeat.schema, self.heartbeat.name)
                    )
                ).fetchone()
                self.beats.append(row[0])
                slot = read_slot(src, self.sc.slot_name)
            target_beat = self._target_beat()
        except psycopg.Error as exc:
            log.info("metrics of %s skipped: %s", self.sc.pipeline, exc)
            return
        if slot is None:
            raise OperationError(
                f"Replication slot {self.sc.slot_name} of pipeline {self.sc.pipeline!r} "
                "disappeared from the source; resync required "
                f"(`cdc-tui resync {self.sc.pipeline}`)."
            )
        lag = self._lag(target_beat)
        self.runner.repo.update(
            self.sc.pipeline,
            applied_lsn=slot.confirmed_flush_lsn,
            last_applied_at=target_beat,
            lag_seconds=lag,
        )
        self._watch_stall(slot)
        self._finish_resyncs()

    def _target_beat(self) -> datetime | None:
        table = self.heartbeat
        if isinstance(self.sc.target, MssqlParams):
            name = quote_qualified(self.sc.target_schema or DEFAULT_SCHEMA, table.name)
            conn = mssql_connect(self.sc.target)
            try:
                beat = read_heartbeat(conn.cursor(), name)
                conn.rollback()
            finally:
                conn.close()
            return _utc(beat)
        schema = self.sc.target_schema or table.schema
        with connect(self.sc.pg_target) as tgt:
            try:
                row = tgt.execute(
                    sql.SQL(TARGET_BEAT).format(sql.Identifier(schema, table.name))
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                return None
        return None if row is None else row[0]

    def _lag(self, target_beat: datetime | None) -> float | None:
        """Seconds the oldest heartbeat the target has not applied yet has been waiting."""
        if not self.beats:
            return None
        latest = self.beats[-1]
        while self.beats and target_beat is not None and self.beats[0] <= target_beat:
            self.beats.popleft()
        if not self.beats:
            self.beats.append(latest)
            return 0.0
        return max(0.0, (latest - self.beats[0]).total_seconds())

    def _watch_stall(self, slot: SlotInfo) -> None:
        now = time.monotonic()
        if slot.confirmed_flush_lsn != self.slot_lsn:
            self.slot_lsn = slot.confirmed_flush_lsn
            self.slot_moved_at = now
            if self.stalled:
                self.stalled = False
                self.runner.repo.update(self.sc.pipeline, stalled_since=None)
                self.runner.steplog.step2(f"slot {self.sc.slot_name} moves again")
            return
        waited = now - self.slot_moved_at
        if not self.stalled and waited > self.settings.stall_seconds and (slot.lag_bytes or 0) > 0:
            self.stalled = True
            since = datetime.now(UTC)
            self.runner.repo.update(self.sc.pipeline, stalled_since=since)
            self.runner.steplog.step2(
                f"slot {self.sc.slot_name} has not moved for {waited:.0f} s while the source "
                f"wrote {slot.lag_bytes} bytes; the source connector is not streaming", "WARNING",
            )  # fmt: skip

    def _finish_resyncs(self) -> None:
        """Tables being re-read by an incremental snapshot are COMPLETED once Debezium's offset
        has moved past the request and no snapshot is in progress any more."""
        pipeline = self.runner.repo.get(self.sc.pipeline)
        copying = [t for t in pipeline.tables if t.state == TableState.COPYING]
        if not copying:
            return
        try:
            offsets = self.client.offsets(self.names.source_connector)
        except ConnectUnreachable:
            return
        offset = offsets[0].get("offset", {}) if offsets else {}
        if any(key.startswith("incremental_snapshot") for key in offset):
            return
        read_up_to = next((int(offset[k]) for k in OFFSET_LSN_KEYS if offset.get(k) is not None),
                          None)  # fmt: skip
        for t in copying:
            if t.resync_lsn is None or read_up_to is None:
                continue
            if read_up_to >= lsn_to_int(t.resync_lsn):
                self.runner.repo.transition_table(
                    self.sc.pipeline, t.table, TableState.COMPLETED,
                    reason="incremental snapshot finished", actor=self.runner.actor,
                )  # fmt: skip
                self.runner.repo.set_table_resync_lsn(self.sc.pipeline, t.table, None)
                self.runner.steplog.step2(f"{t.table}: incremental snapshot finished")


class ConnectorFailed(OperationError):
    """A connector or task kept failing after its automatic restarts."""

    retriable = False


class ConnectorDisappeared(OperationError):
    """Someone deleted a connector; the next attempt creates it again (offsets are kept)."""

    retriable = True


def first_line(trace: str | None) -> str:
    if not trace:
        return "no trace given"
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip()]
    caused = [ln for ln in lines if ln.startswith("Caused by:")]
    return (caused[-1] if caused else lines[0])[:300]


def _utc(value: object) -> datetime | None:
    """pymssql returns datetimeoffset aware or, with older TDS, naive; the column holds UTC."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
