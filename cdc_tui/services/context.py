"""The application context the CLI, the runner and the console share: settings plus the store."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cdc_tui.config.connections import pg_params, resolve_password
from cdc_tui.config.loader import LoadedSettings, load_settings
from cdc_tui.config.settings import Settings
from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.errors import UsageError
from cdc_tui.pgconn import PgParams
from cdc_tui.store.db import Store, open_store
from cdc_tui.targets.mssql.connection import MssqlParams, fallback_password, parse_mssql_url


def default_actor(prefix: str = "cli") -> str:
    """Who did it, for the event history: the tool surface, the OS user and the host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{prefix}:{user}@{socket.gethostname()}"


@dataclass
class AppContext:
    """Settings and a lazily opened metadata store; one per process."""

    loaded: LoadedSettings
    environ: Mapping[str, str]
    actor: str = field(default_factory=default_actor)
    # Passwords a launching process handed over on a pipe, keyed by password-free URL.
    password_overrides: dict[str, str | None] = field(default_factory=dict)
    _store: Store | None = None

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings.metadata_url)
        return self._store

    def pg_params(self, record: ConnectionRef, application_name: str = "cdc-tui") -> PgParams:
        """Connection parameters for a stored connection, with its password resolved now."""
        if record.url in self.password_overrides:
            return PgParams(
                record.url, self.password_overrides[record.url], application_name=application_name
            )
        return pg_params(record, self.settings, self.environ, application_name=application_name)

    def mssql_params(self, record: ConnectionRef, application_name: str = "cdc-tui") -> MssqlParams:
        """SQL Server connection parameters for a stored connection, password resolved now:
        the connection's own source, else MSSQL_PASSWORD."""
        if record.kind != "mssql":
            raise UsageError(f"Connection {record.name or record.url!r} is not a SQL Server one.")
        if record.url in self.password_overrides:
            password = self.password_overrides[record.url]
        else:
            password = resolve_password(record, self.settings, self.environ)
            if password is None:
                password = fallback_password(self.environ)
        return parse_mssql_url(record.url, password, application_name)

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None


def build_context(
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    actor: str | None = None,
) -> AppContext:
    """Load settings (file + environment) and return a context whose store opens on first use."""
    env = os.environ if environ is None else environ
    loaded = load_settings(config_path, environ=env)
    ctx = AppContext(loaded=loaded, environ=env)
    if actor is not None:
        ctx.actor = actor
    return ctx
