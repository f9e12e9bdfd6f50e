"""Before Step 1 on the kafka_connect engine: the signal and heartbeat tables on the source, and
REPLICA IDENTITY FULL where an UPDATE could leave a TOASTed value out of the change."""

from __future__ import annotations

import psycopg

from cdc_tui.errors import SourceError
from cdc_tui.pgconn import connect
from cdc_tui.pgerrors import short_reason
from cdc_tui.runner.steps import StepContext
from cdc_tui.sources.postgres.debezium_objects import (
    decode_changes,
    encode_changes,
    ensure_helper_tables,
    set_full_identity,
    tables_needing_full_identity,
)
from cdc_tui.store.repositories import PipelineRepository


def prepare_debezium_source(sc: StepContext, repo: PipelineRepository, actor: str) -> None:
    try:
        with connect(sc.source) as conn:
            ensure_helper_tables(conn, sc.pipeline)
            changes = tables_needing_full_identity(conn, sc.tables)
            if not changes:
                return
            # Remembered before the change, so drop can restore it even after a crash here.
            known = decode_changes(repo.get(sc.pipeline).replica_identity_changes)
            seen = {c.table for c in known}
            merged = known + [c for c in changes if c.table not in seen]
            repo.update(sc.pipeline, replica_identity_changes=encode_changes(merged))
            for change in changes:
                set_full_identity(conn, change.table)
                sc.steplog.step0(
                    f"{change.table}: REPLICA IDENTITY FULL (was {describe(change.previous)}), "
                    "so Debezium receives TOASTed values an UPDATE leaves unchanged"
                )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise SourceError(
            f"Pipeline {sc.pipeline!r} cannot prepare the source for Debezium: "
            f"{short_reason(exc, [sc.source.password])}; the source role must own the "
            "replicated tables (or set REPLICA IDENTITY FULL on them yourself) and may create "
            "the cdc_tui schema."
        ) from exc


def describe(previous: str) -> str:
    if previous.startswith("i:"):
        return f"USING INDEX {previous[2:]}"
    return {"d": "DEFAULT", "n": "NOTHING", "f": "FULL"}.get(previous, previous)
