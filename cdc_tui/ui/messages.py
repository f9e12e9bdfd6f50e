"""Messages the console's worker threads post; handlers on the screens own all state."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from cdc_tui.services.board import Board
from cdc_tui.store.records import PipelineRecord


@dataclass
class BoardUpdated(Message):
    """A poll finished: the newest board replaces the older one still queued."""

    board: Board

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, BoardUpdated)


@dataclass
class PollFailed(Message):
    """A poll could not read the metadata DB (the sources' errors live in the board)."""

    title: str
    text: str


@dataclass
class ActionFinished(Message):
    """A keyboard action (start, stop, ...) ended; `error` is set when it failed."""

    pipeline: str
    action: str
    summary: str
    error: str | None = None


@dataclass
class ValidationDone(Message):
    """`v` finished comparing a pipeline's tables; `text` is the `cdc-tui validate` report."""

    pipeline: str
    verdict: str
    text: str

    @property
    def ok(self) -> bool:
        return self.verdict == "equal"


@dataclass
class EditLoaded(Message):
    """`e` read the pipeline to edit; the form opens on it."""

    record: PipelineRecord
