"""Settings: TOML file plus CDC_TUI_* environment variables, environment wins."""

from cdc_tui.config.connections import (
    pg_params,
    redact,
    resolve_connection,
    resolve_password,
    strip_password,
    url_has_password,
)
from cdc_tui.config.loader import LoadedSettings, load_settings
from cdc_tui.config.settings import Settings
from cdc_tui.domain.connection import ConnectionRef

__all__ = [
    "ConnectionRef",
    "LoadedSettings",
    "Settings",
    "load_settings",
    "pg_params",
    "redact",
    "resolve_connection",
    "resolve_password",
    "strip_password",
    "url_has_password",
]
