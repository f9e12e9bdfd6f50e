"""What can go wrong applying changes to the target, split by what the runner does about it.

`RetriableApplyError`: the target is unreachable or busy; reconnect with backoff and replay from
the slot. `PermanentApplyError`: the target refuses a change (constraint, conversion, privilege,
missing object) or the source schema drifted; stop, keep the slot, report table, key and LSN.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from cdc_tui.domain.spec import TableRef, quote_ident_display
from cdc_tui.errors import TargetError
from cdc_tui.lsn import lsn_to_str

# SQLSTATE classes worth retrying: connection (08), rollback such as deadlock or serialization
# (40), resources (53), object in use or lock not available (55), operator intervention such as
# admin shutdown or cannot-connect-now (57), system/IO errors (58).
RETRIABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "55", "57", "58"})


class ApplyError(TargetError):
    """Applying a source transaction failed; the target transaction was rolled back."""

    default_title = "Apply failed"


class RetriableApplyError(ApplyError):
    """The target is unavailable or busy: reconnect, then replay from the slot."""

    default_title = "Target unavailable"
    retriable = True

    def __init__(self, reason: str, lsn: int | None) -> None:
        where = f" while applying the source transaction at LSN {lsn_to_str(lsn)}" if lsn else ""
        super().__init__(
            f"The target database is unavailable{where}: {reason}; the runner reconnects and "
            "replays from the last acknowledged position."
        )
        self.reason = reason
        self.lsn = lsn


class PermanentApplyError(ApplyError):
    """The target rejects a change: retrying cannot help until someone fixes the cause."""

    default_title = "Change rejected by the target"
    retriable = False

    def __init__(
        self, table: TableRef | None, key: str | None, lsn: int | None, reason: str
    ) -> None:
        super().__init__(
            f"Applying a change{_where(table, key, lsn)} failed: {reason}; fix the target "
            "table (or resync it) and restart the pipeline."
        )
        self.table = table
        self.key = key
        self.lsn = lsn
        self.reason = reason


class SchemaDriftError(PermanentApplyError):
    """The source table changed in a way the applier does not follow by itself."""

    default_title = "Schema drift"

    def __init__(self, table: TableRef, detail: str, lsn: int | None = None) -> None:
        super().__init__(table, None, lsn, detail)
        at = f" (source transaction at LSN {lsn_to_str(lsn)})" if lsn else ""
        # One sentence that leads with the drift, as operators grep for "schema drift on".
        self.message = (
            f"schema drift on {table}: {detail}{at}; change the target table to match or "
            "resync it, then restart the pipeline."
        )
        self.args = (self.message,)
        self.detail = detail


def describe_key(names: Sequence[str], values: Sequence[object]) -> str:
    """A row's key as errors show it on every target: `id=42`, or `(a, b)=(1, NULL)`."""
    quoted = [quote_ident_display(n) for n in names]
    shown = ["NULL" if v is None else str(v) for v in values]
    if len(quoted) == 1:
        return f"{quoted[0]}={shown[0]}"
    return f"({', '.join(quoted)})=({', '.join(shown)})"


def _where(table: TableRef | None, key: str | None, lsn: int | None) -> str:
    parts = ""
    if table is not None:
        parts += f" to {table}"
    if key is not None:
        parts += f" (key {key})"
    if lsn is not None:
        parts += f" from the source transaction at LSN {lsn_to_str(lsn)}"
    return parts


def is_retriable(exc: psycopg.Error) -> bool:
    """Whether reconnecting and replaying can succeed where this error failed."""
    if exc.sqlstate:
        return exc.sqlstate[:2] in RETRIABLE_SQLSTATE_CLASSES
    # No SQLSTATE: the connection itself broke (or was closed) rather than a statement failing.
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def error_reason(exc: psycopg.Error) -> str:
    """PostgreSQL's primary message, plus the detail when it names a key; never row contents."""
    primary = exc.diag.message_primary if exc.sqlstate else None
    if not primary:
        lines = str(exc).splitlines()
        primary = lines[0] if lines else type(exc).__name__
    text = " ".join(primary.split())
    detail = exc.diag.message_detail if exc.sqlstate else None
    # "Key (id)=(7) already exists." names the key; "Failing row contains (...)" would leak a row.
    if detail and detail.startswith("Key ("):
        text += f" ({detail.rstrip('.')})"
    return text.rstrip(".")


def classify(
    exc: psycopg.Error,
    *,
    table: TableRef | None,
    key: str | None,
    lsn: int | None,
    retriable: bool | None = None,
) -> ApplyError:
    """The applier error for a psycopg failure; the caller raises it `from exc`.

    `retriable` overrides the SQLSTATE rule (a broken connection makes any error retriable).
    """
    reason = error_reason(exc)
    if retriable if retriable is not None else is_retriable(exc):
        return RetriableApplyError(reason, lsn)
    if table is None and exc.sqlstate and exc.diag.table_name:
        table = TableRef(exc.diag.schema_name or "", exc.diag.table_name)
    return PermanentApplyError(table, key, lsn, reason)
