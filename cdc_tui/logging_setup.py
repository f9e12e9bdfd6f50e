"""File logging: the terminal belongs to the console, and no secret may reach a log line."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

import platformdirs

from cdc_tui.config.connections import redact

LOG_FORMAT = "%(asctime)s %(levelname)s %(process)d %(threadName)s %(name)s: %(message)s"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


class RedactingFilter(logging.Filter):
    """Masks passwords in URLs and conninfo strings, whatever code formatted them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def default_log_file() -> Path:
    return Path(platformdirs.user_log_dir("cdc-tui")) / "cdc-tui.log"


def configure_logging(level: str = "INFO", file: Path | None = None) -> Path:
    """Send the root logger to a rotating file (never stderr) and return its path."""
    path = file or default_log_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_cdc_tui", False):
            root.removeHandler(handler)
            handler.close()
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
    handler._cdc_tui = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Connect's REST traffic at DEBUG is every socket event of every poll: noise, not insight.
    for chatty in ("httpcore", "httpx"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    if path.exists():
        os.chmod(path, 0o600)
    return path
