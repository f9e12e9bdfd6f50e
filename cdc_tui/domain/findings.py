"""Preflight findings: what `cdc-tui check` reports, one per object and rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    OK = "ok"


@dataclass(frozen=True)
class Finding:
    """One preflight result.

    `rule` is a stable id (e.g. `source.wal_level`), `object` names what was checked
    (a setting, role, table), `message` is one sentence, `fix` says what to do (None when OK).
    """

    rule: str
    severity: Severity
    object: str
    message: str
    fix: str | None = None

    def to_json(self) -> dict[str, str | None]:
        data = asdict(self)
        data["severity"] = str(self.severity)
        return data


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == Severity.ERROR for f in findings)
