"""Human-readable renderings for the CLI; `--json` output is built by the services."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from cdc_tui.domain.findings import Finding, Severity
from cdc_tui.validation import ValidationReport

SEVERITY_LABEL = {Severity.OK: "ok", Severity.WARNING: "WARN", Severity.ERROR: "ERROR"}


def print_json(doc: Any, out: TextIO | None = None) -> None:
    """JSON to stdout only, stable key order, one trailing newline."""
    stream = out or sys.stdout
    stream.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """A plain left-aligned text table: readable over SSH, greppable in scripts."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def findings_text(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"{SEVERITY_LABEL[f.severity]:<6} {f.rule:<32} {f.object}: {f.message}")
        if f.fix and f.severity != Severity.OK:
            lines.append(f"{'':<6} {'':<32} fix: {f.fix}")
    errors = sum(f.severity == Severity.ERROR for f in findings)
    warnings = sum(f.severity == Severity.WARNING for f in findings)
    lines.append(f"{errors} error(s), {warnings} warning(s), {len(findings)} check(s)")
    return "\n".join(lines)


def status_text(doc: dict[str, Any]) -> str:
    """The `status` verb without --json: the three statuses, health, tables, slot, runner."""
    out = [
        f"pipeline   {doc['name']}  ({doc['engine']}, {doc['mode']})",
        f"status     {doc['status']}   full load {doc['full_load_status']}   "
        f"cdc {doc['cdc_status']}",
        f"health     {doc['health']}"
        + (f"  ({'; '.join(doc['health_reasons'])})" if doc.get("health_reasons") else ""),
        f"updated    {doc['updated_at']}",
    ]
    fl = doc["full_load"]
    if fl["lsn"]:
        out.append(f"handoff    {fl['lsn']}")
    rows = [
        [t["table"], t["state"], str(t["rows_copied"]), _opt(t["rows_estimated"])]
        for t in fl["tables"]
    ]
    out.append("")
    out.append(table(rows, ["table", "state", "rows copied", "rows estimated"]))
    slot = doc["slot"]
    out.append("")
    if slot.get("error"):
        out.append(f"slot       {slot['name']}: unknown ({slot['error']})")
    elif slot.get("exists") is False:
        out.append(f"slot       {slot['name']}: not created yet")
    elif slot.get("exists"):
        out.append(
            f"slot       {slot['name']}: active={slot['active']} wal_status={slot['wal_status']} "
            f"retained={slot['retained_bytes']} B lag={slot['lag_bytes']} B"
        )
    runner = doc["runner"]
    if runner is None:
        out.append("runner     none")
    else:
        stale = "" if runner["heartbeat_recent"] else " (STALE)"
        out.append(
            f"runner     pid {runner['pid']} on {runner['host']}, "
            f"heartbeat {runner['heartbeat_at']}{stale}"
        )
    if doc["last_error"]:
        out.append(f"last error {doc['last_error']}")
    return "\n".join(out)


def _opt(value: object) -> str:
    return "-" if value is None else str(value)


def validation_text(report: ValidationReport) -> str:
    """One line per table, then the differing key ranges of each unequal table."""
    rows = [
        [t.table, _opt(t.source_rows), _opt(t.target_rows), "equal" if t.equal else "DIFFERENT"]
        for t in report.tables
    ]
    lines = [table(rows, ["table", "source rows", "target rows", "result"])]
    for t in report.tables:
        for r in t.differing_ranges:
            lines.append(
                f"  {t.table}: keys {_opt(r.from_key)} .. {_opt(r.to_key)}: "
                f"{_opt(r.source_rows)} rows on the source, {_opt(r.target_rows)} on the target"
            )
        if t.note:
            lines.append(f"  {t.table}: {t.note}")
    return "\n".join(lines)
