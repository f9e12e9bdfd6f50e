"""`validate`: compare each table chunk by chunk, source snapshot against target snapshot.

A pipeline that is streaming keeps both sides moving, so a chunk that differs is read again
with fresh snapshots, up to `rounds` times; only a chunk that differs in every round is
reported. A stopped pipeline converges in the first round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from cdc_tui.errors import SourceError, TargetError, UsageError
from cdc_tui.lsn import lsn_to_int
from cdc_tui.pgconn import PgParams, connect
from cdc_tui.pgerrors import conninfo_password, describe_endpoint, short_reason
from cdc_tui.sources.postgres.catalog import TableDef
from cdc_tui.targets.postgres.ddl import TablePlan
from cdc_tui.validation import checksum
from cdc_tui.validation.checksum import ChunkSum, ColumnOrder, TableSql
from cdc_tui.validation.chunks import Chunk, chunks_from_boundaries, whole_table
from cdc_tui.validation.report import DifferingRange, TableValidation, ValidationReport

log = logging.getLogger(__name__)

NO_KEY_NOTE = (
    "no primary key: compared as one chunk by row count and an order-independent checksum, "
    "so a difference cannot be narrowed to a key range"
)


@dataclass(frozen=True)
class _Options:
    chunk_rows: int
    rounds: int
    wait_for_target: Callable[[int], bool] | None
    progress: Callable[[str], None]


@dataclass
class _Sides:
    """Both connections, with what the error messages need to name each side."""

    source: psycopg.Connection[Any]
    target: psycopg.Connection[Any]
    source_params: PgParams
    target_params: PgParams
    same_encoding: bool


@dataclass
class _TableRun:
    """The state of one table across rounds: the chunks and each one's latest readings."""

    table: TableDef
    plan: TablePlan
    tsql: TableSql
    chunks: list[Chunk] = field(default_factory=list)
    source: dict[int, ChunkSum] = field(default_factory=dict)
    target: dict[int, ChunkSum] = field(default_factory=dict)

    @property
    def keyed(self) -> bool:
        return bool(self.tsql.keys)

    def differing(self, chunks: Sequence[Chunk]) -> list[Chunk]:
        return [c for c in chunks if self.source[c.index] != self.target[c.index]]


def validate_tables(
    source: PgParams,
    target: PgParams,
    tables: Sequence[tuple[TableDef, TablePlan]],
    *,
    chunk_rows: int = 100_000,
    rounds: int = 3,
    wait_for_target: Callable[[int], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ValidationReport:
    """Compare row counts and checksums of each table, source against target, by key range.

    `wait_for_target(lsn)` is called with the source's WAL position taken in each source
    snapshot; it must return once the target has applied up to there, or False on timeout.

    Raises:
        UsageError: `chunk_rows` or `rounds` is below 1.
        SourceError, TargetError: a side could not be reached or refused a query.
    """
    if chunk_rows < 1 or rounds < 1:
        raise UsageError("Validation needs chunk_rows and rounds of at least 1.")
    options = _Options(chunk_rows, rounds, wait_for_target, progress or _quiet)
    with (
        _connection(source, "source") as src,
        _connection(target, "target") as tgt,
    ):
        sides = _Sides(src, tgt, source, target, _same_encoding(src, tgt, source, target))
        results = [_validate_table(sides, td, plan, options) for td, plan in tables]
    return ValidationReport(results)


def _same_encoding(
    src: psycopg.Connection[Any], tgt: psycopg.Connection[Any], source: PgParams, target: PgParams
) -> bool:
    with _translated(source, "source", "reading the server encoding"):
        source_encoding = checksum.server_encoding(src)
    with _translated(target, "target", "reading the server encoding"):
        return checksum.server_encoding(tgt) == source_encoding


def _quiet(_message: str) -> None:
    """The default progress callback: validation is silent unless asked."""


@contextmanager
def _connection(params: PgParams, side: str) -> Iterator[psycopg.Connection[Any]]:
    with _translated(params, side, "connecting"):
        conn = connect(params)
    with conn:
        with _translated(params, side, "setting up the session"):
            checksum.apply_session_settings(conn)
        # Every explicit transaction on it is then one read-only snapshot.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        yield conn


@contextmanager
def _translated(params: PgParams, side: str, doing: str) -> Iterator[None]:
    """Turn a psycopg failure into the side's error, naming the server but no secret."""
    try:
        yield
    except psycopg.Error as e:
        where, user = describe_endpoint(params)
        reason = short_reason(e, [params.password, conninfo_password(params.url)])
        error = SourceError if side == "source" else TargetError
        raise error(
            f"Validation failed on the {side} at {where} as {user} while {doing}: {reason}; "
            "check the server and the role's SELECT privileges, then validate again."
        ) from e


def _validate_table(
    sides: _Sides, td: TableDef, plan: TablePlan, options: _Options
) -> TableValidation:
    name = str(td.ref)
    with _translated(sides.target_params, "target", f"reading the catalog for {plan.target}"):
        target_cols = checksum.read_column_orders(sides.target, plan.target)
    problem = _target_shape_problem(plan, target_cols)
    if problem is not None:
        options.progress(f"{name}: {problem}")
        return _not_compared(td, plan, problem)
    with _translated(sides.source_params, "source", f"reading the catalog for {name}"):
        source_cols = checksum.read_column_orders(sides.source, td.ref)
    tsql = checksum.build_table_sql(
        plan, _collate_c(plan, source_cols, target_cols), hash_utf8=not sides.same_encoding
    )
    run = _TableRun(td, plan, tsql)
    return _run_rounds(sides, run, options)


def _target_shape_problem(plan: TablePlan, target_cols: dict[str, ColumnOrder]) -> str | None:
    if not target_cols:
        return f"the target table {plan.target} does not exist; run Step 0 first"
    missing = [c.name for c in plan.columns if c.name not in target_cols]
    if missing:
        return f"the target table {plan.target} lacks the columns {', '.join(missing)}"
    return None


def _collate_c(
    plan: TablePlan, source_cols: dict[str, ColumnOrder], target_cols: dict[str, ColumnOrder]
) -> set[str]:
    """Key columns whose text would sort differently on the two sides (collations differ).

    Those are ordered byte-wise on both sides: correct everywhere, though it forgoes the index.
    """
    return {
        name
        for name in plan.primary_key
        if target_cols[name].collatable and source_cols.get(name) != target_cols[name]
    }


def _run_rounds(sides: _Sides, run: _TableRun, options: _Options) -> TableValidation:
    name = str(run.table.ref)
    pending: list[Chunk] | None = None
    for round_no in range(1, options.rounds + 1):
        lsn, source_sums = _read_source(sides, run, pending, options)
        if pending is None:
            pending = run.chunks
            options.progress(f"{name}: {len(pending)} chunk(s) of about {options.chunk_rows} rows")
        waiter = options.wait_for_target
        if lsn is not None and waiter is not None and not waiter(lsn):
            return _caught_up_failure(run, pending, round_no)
        run.source.update(source_sums)
        _read_target(sides, run, pending)
        pending = run.differing(pending)
        log.info("validate %s round %d: %d chunk(s) differ", name, round_no, len(pending))
        options.progress(f"{name}: round {round_no}: {len(pending)} chunk(s) differ")
        if not pending:
            break
    return _result(run, pending or [], NO_KEY_NOTE if not run.keyed else None)


def _read_source(
    sides: _Sides, run: _TableRun, pending: list[Chunk] | None, options: _Options
) -> tuple[int | None, dict[int, ChunkSum]]:
    """Checksum the pending chunks (all of them, found here, on the first round) in one snapshot.

    Returns the source's WAL position inside that snapshot when the caller waits for the target,
    and the sums, kept apart until the target is read so a timeout leaves matching pairs.
    """
    ref = run.table.ref
    sums: dict[int, ChunkSum] = {}
    with _translated(sides.source_params, "source", f"reading {ref}"), sides.source.transaction():
        lsn = None
        if options.wait_for_target is not None:
            lsn = lsn_to_int(checksum.current_lsn(sides.source))
        if pending is None:
            run.chunks = _find_chunks(sides.source, run, options.chunk_rows)
            pending = run.chunks
        for chunk in pending:
            sums[chunk.index] = checksum.chunk_checksum(sides.source, ref, run.tsql, chunk)
    return lsn, sums


def _find_chunks(conn: psycopg.Connection[Any], run: _TableRun, chunk_rows: int) -> list[Chunk]:
    if not run.keyed:
        return [whole_table()]
    bounds = checksum.read_boundaries(conn, run.table.ref, run.tsql, chunk_rows)
    return chunks_from_boundaries(bounds)


def _read_target(sides: _Sides, run: _TableRun, pending: list[Chunk]) -> None:
    ref = run.plan.target
    with _translated(sides.target_params, "target", f"reading {ref}"), sides.target.transaction():
        for chunk in pending:
            run.target[chunk.index] = checksum.chunk_checksum(sides.target, ref, run.tsql, chunk)


def _caught_up_failure(run: _TableRun, pending: list[Chunk], round_no: int) -> TableValidation:
    """The target did not reach the source's position: report what earlier rounds established."""
    note = f"target did not catch up with the source in round {round_no}"
    if round_no == 1:
        return _not_compared(run.table, run.plan, note + "; nothing was compared")
    note += f"; the differing ranges are those of round {round_no - 1}"
    if not run.keyed:
        note += f"; {NO_KEY_NOTE}"
    return _result(run, pending, note)


def _result(run: _TableRun, differing: list[Chunk], note: str | None) -> TableValidation:
    return TableValidation(
        table=str(run.table.ref),
        target_table=str(run.plan.target),
        source_rows=sum(s.rows for s in run.source.values()),
        target_rows=sum(s.rows for s in run.target.values()),
        equal=not differing,
        chunks_compared=len(run.chunks),
        differing_ranges=[
            DifferingRange(
                c.from_text,
                c.to_text,
                run.source[c.index].rows,
                run.target[c.index].rows,
            )
            for c in differing
        ],
        note=note,
    )


def _not_compared(td: TableDef, plan: TablePlan, note: str) -> TableValidation:
    return TableValidation(
        table=str(td.ref),
        target_table=str(plan.target),
        source_rows=None,
        target_rows=None,
        equal=False,
        chunks_compared=0,
        note=note,
    )
