"""The pipelines board the console polls: every pipeline with its slot and health, headless.

One poll reads the metadata DB in a fixed number of queries and asks each source cluster once
for all its pipelines' slots, sources in parallel, so one dead source never delays the others.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg

from cdc_tui.config.connections import strip_password
from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.domain.status import Engine, FullLoadStatus
from cdc_tui.errors import CdcTuiError
from cdc_tui.pgconn import PgParams, connect_bounded
from cdc_tui.pgerrors import conninfo_password, short_reason
from cdc_tui.services.context import AppContext
from cdc_tui.services.status import SlotProbe, health_of
from cdc_tui.sources.postgres.slots import SlotInfo, read_slots
from cdc_tui.store.leases import LeaseRepository
from cdc_tui.store.records import LeaseRecord, PipelineRecord, TableStateRecord
from cdc_tui.store.repositories import PipelineRepository

if TYPE_CHECKING:
    from cdc_tui.services.connect_probe import ConnectListing

log = logging.getLogger(__name__)

APPLICATION_NAME = "cdc-tui board"
MAX_PROBE_WORKERS = 8
LAST_ERROR_WIDTH = 80
# Slack past the probes' own timeouts before the board stops waiting for a stuck probe.
PROBE_GRACE_S = 0.5


@dataclass(frozen=True)
class SourceState:
    """One source connection as the last poll found it.

    `key` is the connection's name if it has one, else its password-free URL; `error` is one
    sentence without a secret, set when `reachable` is False.
    """

    key: str
    reachable: bool
    error: str | None


@dataclass(frozen=True)
class BoardRow:
    """One pipeline on the pipelines screen; slot fields are None when the slot is unknown."""

    name: str
    engine: str
    mode: str
    status: str
    full_load_status: str
    cdc_status: str
    full_load_percent: float | None
    lag_bytes: int | None
    lag_seconds: float | None
    retained_bytes: int | None
    slot_active: bool | None
    wal_status: str | None
    health: str
    health_reasons: tuple[str, ...]
    last_error_short: str | None
    source_key: str
    stale: bool
    updated_at: datetime


@dataclass(frozen=True)
class Board:
    """Everything one poll saw: rows sorted by name, the sources probed, and when."""

    rows: tuple[BoardRow, ...]
    sources: Mapping[str, SourceState]
    taken_at: datetime


@dataclass(frozen=True)
class _SourceProbe:
    """The slots one source returned, or why it could not be asked."""

    slots: Mapping[str, SlotInfo]
    error: str | None = None


def full_load_percent(full_load_status: str, tables: Sequence[TableStateRecord]) -> float | None:
    """How far the full load has got, from the stored per-table row counts.

    Args:
        full_load_status: the pipeline's full load status.
        tables: the pipeline's tables with their copied and estimated rows.

    Returns:
        100.0 once the full load is COMPLETED; else sum(rows_copied) / sum(rows_estimated) * 100
        capped at 100; None while a table has no estimate yet (a partial sum would overstate
        the progress) or the estimates add up to no rows.
    """
    if full_load_status == FullLoadStatus.COMPLETED:
        return 100.0
    estimates = [t.rows_estimated for t in tables]
    if not estimates or any(e is None for e in estimates):
        return None
    estimated = sum(e for e in estimates if e is not None)
    if estimated <= 0:
        return None
    return min(100.0, sum(t.rows_copied for t in tables) / estimated * 100)


def last_error_short(last_error: str | None, width: int = LAST_ERROR_WIDTH) -> str | None:
    """The first line of an error, cut to fit one table cell.

    Args:
        last_error: the pipeline's stored last error, possibly several lines long.
        width: the most characters returned, the ellipsis included.

    Returns:
        The first non-blank line, stripped, ending in '…' when it was longer than `width`;
        None when there is no error text.
    """
    if last_error is None or not last_error.strip():
        return None
    line = last_error.strip().splitlines()[0].strip()
    if len(line) <= width:
        return line
    return line[: width - 1].rstrip() + "…"


def prefetched_reader(ctx: AppContext) -> Callable[[], Board]:
    """A board reader whose first board is read now, in a thread, while the caller starts up.

    The first call returns that board (waiting for it if need be, and raising what it raised);
    later calls read a fresh board.
    """
    outcome: list[Board | Exception] = []

    def read_first() -> None:
        try:
            outcome.append(read_board(ctx))
        except Exception as exc:  # noqa: BLE001 - the first caller raises it
            outcome.append(exc)

    pending = [threading.Thread(target=read_first, name="board-prefetch", daemon=True)]
    pending[0].start()

    def reader() -> Board:
        if not pending:
            return read_board(ctx)
        pending.pop().join()
        result = outcome.pop()
        if isinstance(result, Exception):
            raise result
        return result

    return reader


def read_board(
    ctx: AppContext,
    *,
    probe_sources: bool = True,
    timeout_s: float = 3.0,
    now: datetime | None = None,
) -> Board:
    """Read every pipeline, its lease and (when asked) its slot, for one console refresh.

    Args:
        ctx: the application context; its metadata store is read in a fixed number of queries.
        probe_sources: ask each source cluster for its pipelines' slots; False reads the
            metadata DB only (rows then carry no slot fields, `sources` is empty, none is stale).
        timeout_s: the bound on each source's connection and on its query.
        now: the time health is judged at (leases' freshness); defaults to the current time.

    Returns:
        The board: rows sorted by name, the state of every source probed, the time it was taken.

    Raises:
        CdcTuiError: the metadata DB cannot be read (sources' failures are in the board).
    """
    pipelines = PipelineRepository(ctx.store).list()
    leases = LeaseRepository(ctx.store).all()
    now = now or datetime.now(UTC)
    keys = source_keys(p.source for p in pipelines)
    probes = _probe_sources(ctx, pipelines, keys, timeout_s) if probe_sources else {}
    connects = _probe_connects(pipelines, timeout_s) if probe_sources else {}
    rows = [
        _row(p, leases.get(p.name), keys[p.source], probes.get(keys[p.source]), now,
             connects.get(p.connect_url or ""))
        for p in pipelines
    ]  # fmt: skip
    sources = {
        key: SourceState(key, probe.error is None, probe.error)
        for key, probe in sorted(probes.items())
    }
    return Board(tuple(sorted(rows, key=lambda r: r.name)), sources, now)


def source_keys(refs: Iterable[ConnectionRef]) -> dict[ConnectionRef, str]:
    """Name each distinct source connection once, for the board and its rows.

    Args:
        refs: the pipelines' stored source connections (repeats are fine).

    Returns:
        The key of each distinct connection: its name, else its password-free URL. Connections
        stored under one name with different URLs (the config was edited between two `create`s)
        get the URL after the name, so each is probed where it really points.
    """
    distinct = sorted(
        set(refs),
        key=lambda r: (r.name or "", r.url, r.password_env or "", r.password_file or ""),
    )
    base = {ref: ref.name or strip_password(ref.url) for ref in distinct}
    shared = Counter(base.values())
    keys: dict[ConnectionRef, str] = {}
    for ref in distinct:
        key = base[ref]
        if shared[key] > 1 and ref.name is not None:
            key = f"{key} ({strip_password(ref.url)})"
        candidate, n = key, 1
        while candidate in keys.values():
            n += 1
            candidate = f"{key} #{n}"
        keys[ref] = candidate
    return keys


def _row(
    pipeline: PipelineRecord,
    lease: LeaseRecord | None,
    source_key: str,
    probe: _SourceProbe | None,
    now: datetime,
    listing: ConnectListing | None = None,
) -> BoardRow:
    slot = None if probe is None else SlotProbe(probe.slots.get(pipeline.slot_name), probe.error)
    connect = None
    if listing is not None and pipeline.engine == Engine.KAFKA_CONNECT:
        from cdc_tui.services.connect_probe import probe_from_listing

        connect = probe_from_listing(pipeline, listing)
    verdict = health_of(pipeline, lease, now, slot, connect)
    info = slot.info if slot is not None else None
    return BoardRow(
        name=pipeline.name,
        engine=str(pipeline.engine),
        mode=str(pipeline.mode),
        status=str(pipeline.status),
        full_load_status=str(pipeline.full_load_status),
        cdc_status=str(pipeline.cdc_status),
        full_load_percent=full_load_percent(pipeline.full_load_status, pipeline.tables),
        lag_bytes=info.lag_bytes if info is not None else None,
        lag_seconds=pipeline.lag_seconds,
        retained_bytes=info.retained_bytes if info is not None else None,
        slot_active=info.active if info is not None else None,
        wal_status=info.wal_status if info is not None else None,
        health=str(verdict.health),
        health_reasons=verdict.reasons,
        last_error_short=last_error_short(pipeline.last_error),
        source_key=source_key,
        stale=probe is not None and probe.error is not None,
        updated_at=pipeline.updated_at,
    )


def _probe_connects(
    pipelines: Sequence[PipelineRecord], timeout_s: float
) -> dict[str, ConnectListing]:
    """One listing per Connect cluster the kafka_connect pipelines use, in parallel."""
    urls = sorted({p.connect_url for p in pipelines
                   if p.engine == Engine.KAFKA_CONNECT and p.connect_url})  # fmt: skip
    if not urls:
        return {}
    import httpx  # only boards with kafka_connect pipelines pay for it

    from cdc_tui.services.connect_probe import list_connect

    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0))
    with ThreadPoolExecutor(max_workers=min(MAX_PROBE_WORKERS, len(urls)),
                            thread_name_prefix="cdc-tui-connect") as pool:  # fmt: skip
        listings = list(pool.map(lambda u: list_connect(u, timeout), urls))
    return dict(zip(urls, listings, strict=True))


def _probe_sources(
    ctx: AppContext,
    pipelines: Sequence[PipelineRecord],
    keys: Mapping[ConnectionRef, str],
    timeout_s: float,
) -> dict[str, _SourceProbe]:
    """Ask every source for its pipelines' slots; a failure is a result, never an exception."""
    wanted: dict[str, tuple[ConnectionRef, list[str]]] = {}
    for pipeline in pipelines:
        entry = wanted.setdefault(keys[pipeline.source], (pipeline.source, []))
        entry[1].append(pipeline.slot_name)
    results: dict[str, _SourceProbe] = {}
    jobs: dict[str, tuple[PgParams, list[str]]] = {}
    for key, (ref, slot_names) in wanted.items():
        try:
            jobs[key] = (ctx.pg_params(ref, application_name=APPLICATION_NAME), slot_names)
        except CdcTuiError as exc:
            results[key] = _SourceProbe({}, exc.message)
    results.update(_run_probes(jobs, timeout_s))
    for key, probe in sorted(results.items()):
        if probe.error is not None:
            count = len(wanted[key][1])
            log.warning("source %s (%d pipelines) not probed: %s", key, count, probe.error)
    return results


def _run_probes(
    jobs: Mapping[str, tuple[PgParams, list[str]]], timeout_s: float
) -> dict[str, _SourceProbe]:
    """Probe the sources in parallel, waiting no longer than their timeouts allow."""
    if not jobs:
        return {}
    workers = min(MAX_PROBE_WORKERS, len(jobs))
    rounds = math.ceil(len(jobs) / workers)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cdc-tui-probe")
    futures: dict[str, Future[_SourceProbe]] = {
        key: pool.submit(_probe_source, params, slot_names, timeout_s)
        for key, (params, slot_names) in jobs.items()
    }
    try:
        wait(futures.values(), timeout=timeout_s * rounds + PROBE_GRACE_S)
    finally:
        # A probe stuck past its deadline ends on its own timeouts; the board does not wait.
        pool.shutdown(wait=False, cancel_futures=True)
    late = _SourceProbe({}, f"source unreachable: no answer within {timeout_s:g} s")
    return {
        key: future.result() if future.done() and not future.cancelled() else late
        for key, future in futures.items()
    }


def _probe_source(params: PgParams, slot_names: list[str], timeout_s: float) -> _SourceProbe:
    """One connection and one query to one source; its failure comes back as a sentence."""
    try:
        with connect_bounded(params, timeout_s) as conn:
            return _SourceProbe(read_slots(conn, slot_names))
    except psycopg.Error as exc:
        reason = short_reason(exc, [params.password, conninfo_password(params.url)])
        return _SourceProbe({}, f"source unreachable: {reason}")
