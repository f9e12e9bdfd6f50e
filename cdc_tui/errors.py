"""Errors that cross layer boundaries: each carries a title and a one-sentence message.

The CLI maps them to exit codes (2 for usage/configuration, 1 for a failed operation) and the
console shows them in a modal with the title.
"""

from __future__ import annotations


class CdcTuiError(Exception):
    """Base error: `message` is one sentence naming the object and saying what to do."""

    exit_code = 1
    default_title = "Operation failed"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.title = title or self.default_title


class UsageError(CdcTuiError):
    """The command line or the config is wrong; nothing was attempted."""

    exit_code = 2
    default_title = "Usage error"


class ConfigError(UsageError):
    """The config file or a `CDC_TUI_*` variable is invalid."""

    default_title = "Configuration error"


class NotFoundError(UsageError):
    """A named object (pipeline, connection, table) does not exist."""

    default_title = "Not found"


class OperationError(CdcTuiError):
    """An operation was attempted and failed."""


class SourceError(OperationError):
    """The source database refused or could not be reached."""

    default_title = "Source error"


class TargetError(OperationError):
    """The target database refused or could not be reached."""

    default_title = "Target error"


class NotAvailableError(OperationError):
    """The verb exists in the CLI contract but its implementation has not landed yet."""

    default_title = "Not available yet"


class IllegalTransitionError(CdcTuiError):
    """A status change the transition table forbids: always a bug in the caller."""

    default_title = "Illegal status transition"
