"""Steps 0-2 into SQL Server on the embedded engine: T-SQL DDL, bulk copy, the MERGE applier.

Errors from pymssql are turned into one sentence naming the target table (and, for a value
SQL Server cannot hold, the column and the reason); connection trouble is retried by the runner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from cdc_tui.domain.spec import TableRef
from cdc_tui.errors import TargetError
from cdc_tui.pgconn import PgParams
from cdc_tui.pgconn import connect as pg_connect
from cdc_tui.runner.steps import PersistingProgress, StepContext, read_defs
from cdc_tui.runner.streaming import announce_step2, stream_into
from cdc_tui.sources.postgres.catalog import TableDef
from cdc_tui.sources.postgres.enums import read_enum_labels
from cdc_tui.targets.mssql import bulk
from cdc_tui.targets.mssql.applier import MssqlApplier
from cdc_tui.targets.mssql.connection import MssqlParams, connect
from cdc_tui.targets.mssql.ddl import TablePlan, plan_tables
from cdc_tui.targets.mssql.dml import MssqlColumn, MssqlTable
from cdc_tui.targets.mssql.errors import ValueRejected
from cdc_tui.targets.mssql.identifiers import quote_qualified
from cdc_tui.targets.mssql.schema import apply_step0
from cdc_tui.targets.mssql.server_errors import (
    DRIVER_ERRORS,
    describe_mssql_error,
    error_number,
    is_retriable,
)
from cdc_tui.targets.mssql.types import NumericPolicy
from cdc_tui.targets.mssql.values import converter_for

if TYPE_CHECKING:
    from cdc_tui.runner.runner import Runner

log = logging.getLogger(__name__)

# The applier groups source transactions into one SQL Server commit up to this many changes.
APPLY_GROUP_CHANGES = 2000


# Login failed, database unavailable to this login, permission denied: retrying cannot help.
PERMANENT_CONNECT_ERRORS = frozenset({18456, 4060, 916, 229, 262})


class MssqlCopyError(TargetError):
    """A table could not be bulk copied into SQL Server."""

    default_title = "Full load failed"


class MssqlUnavailable(TargetError):
    """SQL Server could not be reached or dropped the connection: the runner retries."""

    default_title = "Target unavailable"
    retriable = True


def load_mssql_plans(
    source: PgParams,
    pipeline: str,
    tables: Sequence[TableRef],
    target_schema: str | None,
    policy: NumericPolicy,
) -> tuple[list[tuple[TableDef, TablePlan]], dict[str, list[str]]]:
    """Read the source catalog (tables and enum labels) and plan the SQL Server tables; the
    runner's Step 0 and `cdc-tui plan` both come here, so they never differ."""
    with pg_connect(source) as conn:
        defs = read_defs(conn, pipeline, tables)
        labels = read_enum_labels(conn, defs)
    plans = plan_tables(
        defs, target_schema=target_schema, numeric_policy=policy, enum_labels=labels
    )
    return list(zip(defs, plans, strict=True)), labels


class MssqlTarget:
    """The TargetPort for SQL Server, planned from the source catalog as it is now."""

    def __init__(
        self,
        params: MssqlParams,
        plans: Sequence[tuple[TableDef, TablePlan]],
        policy: NumericPolicy,
        enum_labels: dict[str, list[str]] | None = None,
    ) -> None:
        self.params = params
        self.plans = list(plans)
        self.policy = policy
        self.enum_labels = enum_labels or {}
        self.extra: list[tuple[TableDef, TablePlan]] = []

    def add_helpers(self, sc: StepContext, defs: Sequence[TableDef]) -> None:
        """Tables Step 0 creates but Step 1 never copies (kafka_connect's heartbeat), planned
        with the replicated ones so a name clash between them is refused."""
        every = [td for td, _ in self.plans] + list(defs)
        plans = plan_tables(every, target_schema=sc.target_schema, numeric_policy=self.policy,
                            enum_labels=self.enum_labels)  # fmt: skip
        self.extra = list(zip(defs, plans[len(self.plans) :], strict=True))

    # -- Step 0 -----------------------------------------------------------------------------

    def step0(self, sc: StepContext) -> None:
        sc.steplog.step0(
            f"creating or checking {len(self.plans) + len(self.extra)} table(s) on SQL Server "
            f"{self.params.display}"
        )
        with _connection(self.params, "Step 0") as conn:
            apply_step0(conn, [p for _, p in self.plans + self.extra], sc.steplog.step0)
        sc.steplog.step0("done")

    # -- Step 1 -----------------------------------------------------------------------------

    def copy(self, sc: StepContext, snapshot_name: str, cancel: threading.Event) -> bool:
        """Copy the tables with `sc.workers` threads, each table on its own connections."""
        progress = PersistingProgress(sc)
        started = time.monotonic()
        sc.steplog.step1(
            f"bulk copying {len(self.plans)} table(s) into SQL Server with "
            f"{min(sc.workers, max(1, len(self.plans)))} worker(s)"
        )

        def one(pair: tuple[TableDef, TablePlan]) -> bool:
            td, plan = pair
            if cancel.is_set():
                return False
            try:
                self._copy_one(sc, snapshot_name, td, plan, progress, cancel)
            except bulk.CopyCancelled:
                return False
            progress.table_done(td.ref)
            return True

        with ThreadPoolExecutor(max_workers=max(1, sc.workers)) as pool:
            done = list(pool.map(one, self.plans))
        if not all(done):
            sc.steplog.step1("stopped before the end; the next start copies again", "WARNING")
            return False
        rows = sum(t.rows_copied for t in progress.trackers.values())
        sc.steplog.step1(f"copied {rows:,} rows in {time.monotonic() - started:,.1f} s")
        return True

    def _copy_one(
        self,
        sc: StepContext,
        snapshot_name: str,
        td: TableDef,
        plan: TablePlan,
        progress: PersistingProgress,
        cancel: threading.Event,
    ) -> None:
        name = quote_qualified(plan.target.schema, plan.target.name)
        source = bulk.open_source(sc.source, snapshot_name)
        try:
            estimate = td.estimated_rows if td.estimated_rows and td.estimated_rows > 0 else None
            with _connection(self.params, f"copying {td.ref}") as target:
                bulk.copy_table(
                    source, target, td, plan, policy=self.policy, cancel=cancel,
                    progress=lambda rows: progress(td.ref, rows, estimate),
                )  # fmt: skip
        except ValueRejected as exc:
            raise MssqlCopyError(
                f"Copying table {td.ref} into {name} stopped: {exc.reason}; SQL Server cannot "
                "hold that value, so fix it on the source or choose another numeric policy, "
                "then start the pipeline again."
            ) from exc
        finally:
            source.close()

    # -- handoff and Step 2 -----------------------------------------------------------------

    def record_handoff(self, sc: StepContext, lsn: int) -> None:
        with _connection(self.params, "recording the handoff position") as conn:
            MssqlApplier(conn, sc.pipeline, {}).write_initial_position(lsn)

    def tables(self) -> dict[TableRef, MssqlTable]:
        """What the applier writes: each table's columns with their converters."""
        return {
            td.ref: MssqlTable(
                source=td.ref,
                target=plan.target,
                columns=tuple(
                    MssqlColumn(
                        name=col.name,
                        target_type=cp.target_type,
                        converter=converter_for(col, cp, numeric_policy=self.policy),
                        source_type_oid=col.type_oid,
                    )
                    for col, cp in zip(td.columns, plan.columns, strict=True)
                ),
                key=plan.primary_key,
            )
            for td, plan in self.plans
        }

    def stream(self, runner: Runner, sc: StepContext) -> None:
        """Stream the slot into SQL Server until the runner is asked to stop."""
        announce_step2(runner, sc)
        with _connection(self.params, "Step 2") as conn:
            applier = MssqlApplier(
                conn, sc.pipeline, self.tables(), group_changes=APPLY_GROUP_CHANGES
            )
            stream_into(runner, sc, applier)


class _connection:
    """A pymssql connection, closed on exit; a pymssql error inside becomes one sentence:
    retried when the server is unreachable, else stopping the pipeline."""

    def __init__(self, params: MssqlParams, doing: str) -> None:
        self.params = params
        self.doing = doing
        self.conn: Any = None

    def __enter__(self) -> Any:
        try:
            self.conn = connect(self.params)
        except DRIVER_ERRORS as exc:
            raise self._error(exc) from exc
        return self.conn

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            self.conn.close()
        except DRIVER_ERRORS as closing:
            log.debug("closing the SQL Server connection failed too: %s", closing)
        if exc is not None and isinstance(exc, DRIVER_ERRORS):
            raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> TargetError:
        reason = describe_mssql_error(exc, self.params.password)
        number = error_number(exc)
        where = f"SQL Server target {self.params.display}"
        if number in PERMANENT_CONNECT_ERRORS:
            return TargetError(f"The {where} refused cdc-tui while {self.doing}: {reason}; fix "
                               "the login or its permissions, then start again.")  # fmt: skip
        if is_retriable(exc):
            return MssqlUnavailable(
                f"The {where} is unavailable while {self.doing}: {reason}; the runner retries."
            )
        return MssqlCopyError(f"The {where} failed while {self.doing}: {reason}; fix the cause "
                              "and start the pipeline again.")  # fmt: skip
