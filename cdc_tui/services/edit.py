"""Editing a stopped pipeline: `cdc-tui pipeline edit` and the console's `e`.

A pipeline that never ran only has metadata, so an edit rewrites it. One that already copied
data has a slot, a publication and target tables that match its old settings: its edit is
applied only with `resync`, which drops the slot and the publication on the old source, stores
the new settings and resyncs (empties the target tables that remain and copies everything
again; a table left out keeps its target table, as `drop` does).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cdc_tui.config.connections import strip_password
from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import Mode, PipelineStatus
from cdc_tui.errors import UsageError
from cdc_tui.services.context import AppContext
from cdc_tui.services.control import live_runner_pid, resync_pipeline, source_cleanup
from cdc_tui.services.pipelines import resolve_source, resolve_target
from cdc_tui.services.preflight import has_started
from cdc_tui.store.records import PipelineRecord
from cdc_tui.store.repositories import PipelineRepository

log = logging.getLogger(__name__)

EDITABLE_STATUSES = (PipelineStatus.STOPPED, PipelineStatus.ERROR)


@dataclass(frozen=True)
class EditResult:
    """What an edit changed (one secret-free sentence per field), whether it needs a resync,
    and what was done (nothing on a dry run)."""

    record: PipelineRecord
    changes: tuple[str, ...]
    needs_resync: bool
    done: tuple[str, ...]

    def to_json(self, dry_run: bool) -> dict[str, object]:
        return {"name": self.record.name, "changes": list(self.changes),
                "needs_resync": self.needs_resync, "done": list(self.done),
                "dry_run": dry_run}  # fmt: skip


def _label(ref: ConnectionRef) -> str:
    where = ref.name or strip_password(ref.url)
    if ref.password_env:
        return f"{where} (password from ${ref.password_env})"
    if ref.password_file:
        return f"{where} (password from {ref.password_file})"
    return where


def describe_changes(
    current: PipelineRecord,
    *,
    source: ConnectionRef,
    target: ConnectionRef,
    tables: Sequence[TableRef],
    mode: Mode,
    target_schema: str | None,
) -> tuple[str, ...]:
    """One sentence per field that differs, in a fixed order; empty when nothing does."""
    changes = []
    if source != current.source:
        changes.append(f"source: {_label(current.source)} -> {_label(source)}")
    if target != current.target:
        changes.append(f"target: {_label(current.target)} -> {_label(target)}")
    old = [t.table for t in current.tables]
    if list(tables) != old:
        added = [f"+ {t}" for t in tables if t not in old]
        removed = [f"- {t}" for t in old if t not in tables]
        changes.append("tables: " + (", ".join(added + removed) or "reordered"))
    if mode != current.mode:
        changes.append(f"mode: {current.mode} -> {mode}")
    if target_schema != current.target_schema:
        before = current.target_schema or "(as on the source)"
        changes.append(f"target schema: {before} -> {target_schema or '(as on the source)'}")
    return tuple(changes)


def edit_pipeline(
    ctx: AppContext,
    name: str,
    *,
    source: str | None = None,
    target: str | None = None,
    tables: Sequence[TableRef] | None = None,
    mode: Mode | None = None,
    target_schema: str | None = None,
    resync: bool = False,
    dry_run: bool = False,
) -> EditResult:
    """Change a stopped pipeline's connections, tables, mode or target schema.

    None leaves a field as it is; `target_schema=""` clears it. Refusals are UsageErrors and
    change nothing: a running pipeline, nothing to change, a change to a pipeline that already
    copied data without `resync`, and a cdc_only pipeline that already ran (it has no full load
    to redo). A dry run connects to nothing and stores nothing.
    """
    repo = PipelineRepository(ctx.store)
    current = repo.get(name)
    pid = live_runner_pid(ctx, name)
    if pid is not None or current.status not in EDITABLE_STATUSES:
        raise UsageError(
            f"Pipeline {name!r} is {current.status}; stop it first (`cdc-tui stop {name}`), "
            "then edit it."
        )
    new_source = resolve_source(ctx, source) if source is not None else current.source
    new_target = resolve_target(ctx, target) if target is not None else current.target
    if new_target.kind != current.target.kind:
        raise UsageError(
            f"Pipeline {name!r} writes to {current.target.kind} and cannot switch to a "
            f"{new_target.kind} target; create a new pipeline for it."
        )
    new_tables = tuple(tables) if tables is not None else tuple(t.table for t in current.tables)
    if not new_tables:
        raise UsageError(f"Pipeline {name!r} needs at least one table; pass --tables.")
    if len(set(new_tables)) != len(new_tables):
        raise UsageError("A table is listed twice; list each table once.")
    new_mode = Mode(mode) if mode is not None else current.mode
    new_schema = current.target_schema if target_schema is None else (target_schema or None)
    changes = describe_changes(current, source=new_source, target=new_target, tables=new_tables,
                               mode=new_mode, target_schema=new_schema)  # fmt: skip
    if not changes:
        raise UsageError(
            f"Nothing to change in pipeline {name!r}; pass at least one of --source, --target, "
            "--tables, --mode, --target-schema with a new value."
        )
    needs_resync = has_started(current)
    if needs_resync and Mode.CDC_ONLY in (current.mode, new_mode):
        raise UsageError(
            f"Pipeline {name!r} has already run and cdc_only has no full load to redo; drop it "
            f"(`cdc-tui drop {name}`) and create it again with the new settings."
        )
    if dry_run:
        return EditResult(current, changes, needs_resync, ())
    if needs_resync and not resync:
        fields = ", ".join(c.split(":", 1)[0] for c in changes)
        raise UsageError(
            f"Pipeline {name!r} has already copied data, so changing its {fields} needs a "
            "resync (its target tables are emptied and copied again); add --resync."
        )
    done: list[str] = []
    if needs_resync:
        # The old slot and publication match the old settings: the resync makes new ones.
        done += source_cleanup(ctx, current, publication=True)
    repo.replace_spec(name, mode=new_mode, source=new_source, target=new_target,
                      tables=new_tables, target_schema=new_schema,
                      reason="edited: " + "; ".join(changes), actor=ctx.actor)  # fmt: skip
    done.append("stored the new settings")
    log.info("pipeline %s edited: %s", name, "; ".join(changes))
    if needs_resync:
        done += resync_pipeline(ctx, name, None)
        done.append("runner started for the full load")
    return EditResult(repo.get(name), changes, needs_resync, tuple(done))
