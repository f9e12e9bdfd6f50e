"""A recording DB-API connection standing in for a live SQL Server reached through pymssql.

No SQL Server runs on this machine, so the applier's SQL Server path is proven against this
stand-in instead: it records every `execute` (each statement of a batch rendered through
pymssql's own client-side substitution, so a placeholder/parameter mismatch fails as it would
against a live server), every commit and rollback, as one ordered log. Failures are scripted
with real pymssql exception classes carrying (number, b"message") like the server's. The
position read is answered from `positions`, which committed position upserts keep current, as
SQL Server's [cdc_tui].[applied_position] would; no other table state is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import pymssql
from pymssql import _mssql

_PLACEHOLDER = re.compile(r"%[sd]")
_ENDS = frozenset({"commit", "commit_failed", "rollback"})
_POSITION_MERGE = "MERGE [cdc_tui].[applied_position]"
_POSITION_SELECT = "FROM [cdc_tui].[applied_position]"
# What pymssql appends to every server message it raises.
_DBLIB_TAIL = (
    b"DB-Lib error message 20018, severity 16:\n"
    b"General SQL Server error: Check messages from the SQL Server\n"
)


def server_error(
    number: int, message: str, cls: type[pymssql.Error] = pymssql.OperationalError
) -> pymssql.Error:
    """A pymssql exception as raised for a SQL Server error: args (number, message bytes)."""
    return cls(number, message.encode() + _DBLIB_TAIL)


@dataclass(frozen=True)
class Statement:
    """One statement of a batch: its text, its parameters and the text pymssql would send."""

    sql: str
    params: tuple[object, ...]
    rendered: str


@dataclass(frozen=True)
class Event:
    """One entry of the log: a batch that ran or failed, a commit, or a rollback."""

    kind: Literal["execute", "failed", "commit", "commit_failed", "rollback"]
    statements: tuple[Statement, ...] = ()

    @property
    def sql(self) -> str:
        return "\n".join(s.sql for s in self.statements)

    @property
    def rendered(self) -> str:
        return "\n".join(s.rendered for s in self.statements)


@dataclass
class _Failure:
    error: BaseException
    on: Literal["execute", "commit"]
    nth: int | None
    when: Callable[[str], bool] | None
    once: bool
    committed: bool = False
    fired: int = 0


# The position upsert as pymssql renders it: (pipeline, commit LSN, end LSN).
RENDERED_POSITION = re.compile(
    r"CAST\(N'((?:[^']|'')*)' AS nvarchar\(max\)\), CAST\((\d+) AS decimal\(20,0\)\), "
    r"CAST\((\d+) AS decimal\(20,0\)\)"
)


def _split(sql: str, params: tuple[object, ...] | None) -> tuple[Statement, ...]:
    """Split a batch into its statements (one per line, each ending with `;`) and render each."""
    texts = re.split(r"(?<=;)\n", sql)
    out = []
    offset = 0
    for text in texts:
        wanted = len(_PLACEHOLDER.findall(text))
        if params is None:
            # pymssql sends text without parameters as is: the applier renders a batch of many
            # statements itself, so no placeholder may be left outside a string literal.
            assert "CAST(%s" not in text, f"placeholders but no parameters: {text}"
            out.append(Statement(text, (), text))
            continue
        mine = params[offset : offset + wanted]
        offset += wanted
        rendered = _mssql.substitute_params(text, mine).decode()  # raises like pymssql
        out.append(Statement(text, mine, rendered))
    # pymssql ignores surplus parameters silently; here they are a bug.
    assert params is None or offset == len(params), (
        f"{len(params)} parameters for {offset} placeholders"
    )
    return tuple(out)


class RecordingCursor:
    def __init__(self, conn: RecordingConnection) -> None:
        self._conn = conn
        self._row: tuple[Any, ...] | None = None

    def execute(self, operation: str, params: tuple[object, ...] | None = None) -> None:
        self._row = self._conn._execute(operation, params)

    def fetchone(self) -> tuple[Any, ...] | None:
        row, self._row = self._row, None
        return row


@dataclass
class RecordingConnection:
    """The DB-API surface the applier uses: cursor(), commit(), rollback()."""

    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    log: list[Event] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _executes: int = 0

    # -- scripting --------------------------------------------------------------------------

    def fail(
        self,
        error: BaseException,
        *,
        nth: int | None = None,
        when: str | Callable[[str], bool] | None = None,
        once: bool = True,
    ) -> None:
        """Raise `error` from the `nth` execute (1-based, counted from now on) or from any
        execute whose rendered text contains `when` (or satisfies it); once, or every time."""
        match = (lambda text: when in text) if isinstance(when, str) else when
        at = None if nth is None else self._executes + nth
        self._failures.append(_Failure(error, "execute", at, match, once))

    def fail_commit(self, error: BaseException, *, committed: bool = False) -> None:
        """Raise `error` from the next commit; `committed`: after the data is committed (as when
        pymssql's COMMIT TRAN succeeds and its following BEGIN TRAN fails)."""
        self._failures.append(_Failure(error, "commit", None, None, True, committed))

    # -- DB-API -------------------------------------------------------------------------------

    def cursor(self) -> RecordingCursor:
        return RecordingCursor(self)

    def commit(self) -> None:
        failure = self._due("commit", "")
        if failure is not None and not failure.committed:
            self.log.append(Event("commit_failed"))  # the server keeps nothing of it
            raise failure.error
        self.log.append(Event("commit"))
        for event in self._open_transaction()[:-1]:
            for stmt in event.statements:
                if stmt.sql.startswith(_POSITION_MERGE):
                    if stmt.params:
                        pipeline, commit_lsn, end_lsn = stmt.params[:3]
                    else:  # rendered inside a batch: read the literals back
                        found = RENDERED_POSITION.search(stmt.rendered)
                        assert found is not None, stmt.rendered
                        pipeline, commit_lsn, end_lsn = found.groups()
                    self.positions[str(pipeline)] = (int(str(commit_lsn)), int(str(end_lsn)))
        if failure is not None:
            raise failure.error

    def rollback(self) -> None:
        self.log.append(Event("rollback"))

    def _execute(self, sql: str, params: tuple[object, ...] | None) -> tuple[Any, ...] | None:
        self._executes += 1
        statements = _split(sql, params)
        event = Event("execute", statements)
        failure = self._due("execute", event.rendered)
        if failure is not None:
            self.log.append(Event("failed", statements))
            raise failure.error
        self.log.append(event)
        if len(statements) == 1 and _POSITION_SELECT in sql and sql.startswith("SELECT"):
            stored = self.positions.get(str(statements[0].params[0]))
            return None if stored is None else (Decimal(stored[0]), Decimal(stored[1]))
        return None

    def _due(self, on: str, rendered: str) -> _Failure | None:
        for failure in self._failures:
            if failure.on != on or (failure.once and failure.fired):
                continue
            if failure.nth is not None and failure.nth != self._executes:
                continue
            if failure.when is not None and not failure.when(rendered):
                continue
            failure.fired += 1
            return failure
        return None

    # -- reading the log ----------------------------------------------------------------------

    def _open_transaction(self) -> list[Event]:
        """The events since the last commit or rollback before the latest entry, plus it."""
        start = 0
        for i, event in enumerate(self.log[:-1]):
            if event.kind in _ENDS:
                start = i + 1
        return self.log[start:]

    def transactions(self) -> list[tuple[str, list[Event]]]:
        """The log cut at each commit and rollback: (how it ended, the batches it ran)."""
        out: list[tuple[str, list[Event]]] = []
        current: list[Event] = []
        for event in self.log:
            if event.kind in _ENDS:
                out.append((event.kind, current))
                current = []
            else:
                current.append(event)
        return out

    def committed(self) -> list[list[str]]:
        """The statements (templates) of each committed transaction that ran any."""
        return [
            [s.sql for e in events for s in e.statements]
            for kind, events in self.transactions()
            if kind == "commit" and events
        ]

    def committed_rendered(self) -> list[list[str]]:
        """As `committed`, but the statements as pymssql would send them."""
        return [
            [s.rendered for e in events for s in e.statements]
            for kind, events in self.transactions()
            if kind == "commit" and events
        ]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.log]

    def batches(self) -> list[Sequence[Statement]]:
        """Every execute that ran or failed, in order."""
        return [e.statements for e in self.log if e.kind in ("execute", "failed")]

    def clear(self) -> None:
        self.log.clear()
