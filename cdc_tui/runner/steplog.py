"""Step log lines ("Step 1: ...") kept in the metadata DB for the console and in the log file."""

from __future__ import annotations

import logging

from cdc_tui.store.repositories import PipelineRepository

log = logging.getLogger(__name__)

LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING,
          "ERROR": logging.ERROR}  # fmt: skip


class StepLog:
    """Writes one pipeline's step log; a metadata DB hiccup never stops replication."""

    def __init__(self, repo: PipelineRepository, pipeline: str) -> None:
        self._repo = repo
        self._pipeline = pipeline

    def write(self, step: int, message: str, level: str = "INFO") -> None:
        """Record `message` for step 0, 1 or 2, prefixed "Step N:" as the console shows it."""
        prefix = f"Step {step}: "
        line = message if message.startswith(prefix) else prefix + message
        log.log(LEVELS.get(level, logging.INFO), "[%s] %s", self._pipeline, line)
        try:
            self._repo.append_log(self._pipeline, step, level, line)
        except Exception:  # the file log above still has the line; losing a UI line beats stopping
            log.warning("could not store a step log line for %s", self._pipeline, exc_info=True)

    def step0(self, message: str, level: str = "INFO") -> None:
        self.write(0, message, level)

    def step1(self, message: str, level: str = "INFO") -> None:
        self.write(1, message, level)

    def step2(self, message: str, level: str = "INFO") -> None:
        self.write(2, message, level)
