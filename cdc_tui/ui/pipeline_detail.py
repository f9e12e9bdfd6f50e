"""What the pipeline screen shows, as data and plain text: the detail a poll reads, the stored
settings (no secrets), the overview and the next step. No Textual here, so it is tested alone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdc_tui.config.connections import strip_password
from cdc_tui.services.context import AppContext
from cdc_tui.services.status import status_document
from cdc_tui.store.records import EventRecord, LogRecord, PipelineRecord
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.ui.formatting import DASH, human_seconds

BAR_WIDTH = 10


@dataclass(frozen=True)
class Detail:
    """A poll of one pipeline: its status document, its stored settings (no secrets), new log
    lines and the latest events."""

    document: dict[str, Any]
    settings: tuple[tuple[str, str], ...] = ()
    logs: list[LogRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)


# Reads one pipeline's detail given the last log id already shown.
DetailReader = Callable[[str, int], Detail]


def settings_rows(pipeline: PipelineRecord) -> tuple[tuple[str, str], ...]:
    """What the pipeline was created with; URLs are stored password-free and stripped again."""
    source, target = pipeline.source, pipeline.target
    rows = [
        ("Source", strip_password(source.url)
                   + _secret_from(source.password_env, source.password_file)),
        ("Target", strip_password(target.url)
                   + _secret_from(target.password_env, target.password_file)),
        ("Tables", ", ".join(str(t.table) for t in pipeline.tables)),
        ("Target schema", pipeline.target_schema or "(as on the source)"),
        ("Slot", pipeline.slot_name),
        ("Publication", pipeline.publication_name),
        ("Generation", str(pipeline.generation)),
    ]  # fmt: skip
    if pipeline.connect_url:
        rows.append(("Kafka Connect", strip_password(pipeline.connect_url)))
    return tuple(rows)


def _secret_from(env: str | None, file: str | None) -> str:
    """Where the password comes from, never the password."""
    if env:
        return f"  (password from ${env})"
    if file:
        return f"  (password from {file})"
    return ""


def detail_reader(ctx: AppContext) -> DetailReader:
    def read(name: str, after_log_id: int) -> Detail:
        repo = PipelineRepository(ctx.store)
        return Detail(
            document=status_document(ctx, name),
            settings=settings_rows(repo.get(name)),
            logs=repo.logs(name, after_id=after_log_id, limit=2000),
            events=repo.events(name, limit=200),
        )

    return read


def next_step(doc: dict[str, Any]) -> str | None:
    """What a DBA should do next when the pipeline is not healthy, in one sentence."""
    slot = doc.get("slot") or {}
    if doc.get("health") == "healthy":
        return None
    if slot.get("wal_status") == "lost":
        return "The slot lost WAL it needed: resync the pipeline (ctrl+r)."
    if doc.get("status") == "ERROR" or doc.get("cdc_status") == "FAILED" \
            or doc.get("full_load_status") == "FAILED":  # fmt: skip
        return "Read the last error below, fix its cause, then restart (R); resync if it persists."
    if doc.get("status") == "RUNNING" and not (doc.get("runner") or {}).get("heartbeat_recent"):
        return "The runner stopped sending heartbeats: restart the pipeline (R)."
    if slot.get("exists") and slot.get("active") is False and doc.get("status") != "STOPPED":
        return "Nothing reads the slot while it retains WAL: start the pipeline (s)."
    if slot.get("error"):
        return "The source cannot be reached: check the host and the network, then wait."
    return "Watch the lag on the Slot tab; it should fall while the runner catches up."


def progress_bar(copied: int, estimated: int | None) -> str:
    """`███░░░░░░░  35%` from rows copied against the estimate."""
    if not estimated:
        return DASH
    share = min(1.0, copied / estimated)
    filled = round(share * BAR_WIDTH)
    return f"{'█' * filled}{'░' * (BAR_WIDTH - filled)} {share * 100:4.0f}%"


def overview_text(doc: dict[str, Any], settings: tuple[tuple[str, str], ...] = ()) -> str:
    """The Overview pane as plain text (no markup: names and errors show as written)."""
    full_load = doc.get("full_load") or {}
    cdc = doc.get("cdc") or {}
    runner = doc.get("runner") or {}
    lines = [
        f"Pipeline     {doc['name']}  ({doc.get('engine')}, {doc.get('mode')})",
        f"Status       {doc['status']}   full load {doc['full_load_status']}"
        f"   CDC {doc['cdc_status']}",
        f"Health       {doc['health']}",
    ]
    lines += [f"  - {reason}" for reason in doc.get("health_reasons") or []]
    if (step := next_step(doc)) is not None:
        lines.append(f"Next step    {step}")
    lines += [
        f"Handoff LSN  {full_load.get('lsn') or DASH}",
        f"Full load    started {full_load.get('started_at') or DASH}"
        f"   completed {full_load.get('completed_at') or DASH}",
        f"Applied LSN  {cdc.get('applied_lsn') or DASH}   changes {cdc.get('changes_applied', 0)}"
        f"   lag {human_seconds(cdc.get('lag_seconds'))}",
        "Runner       "
        + (
            f"pid {runner.get('pid')} on {runner.get('host')}, "
            f"{'alive' if runner.get('heartbeat_recent') else 'not alive'}, last heartbeat "
            f"{runner.get('heartbeat_at') or DASH}"
            if runner
            else "none"
        ),
        f"Updated      {doc.get('updated_at') or DASH}",
    ]
    if settings:
        lines += ["", "Settings"] + [f"  {label:<14} {value}" for label, value in settings]
    if doc.get("last_error"):
        lines += ["", "Last error", f"  {doc['last_error']}"]
    return "\n".join(lines)
