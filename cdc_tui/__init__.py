"""cdc-tui: PostgreSQL change data capture pipelines, driven from a terminal."""

from __future__ import annotations

__version__ = "0.1.0"
