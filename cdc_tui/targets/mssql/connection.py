"""How cdc-tui opens a SQL Server connection: pymssql, TDS 7.4, the password never in the URL.

A target URL is `mssql://user@host:1433/database`; optional query parameters are `tds_version`
(default 7.4, the first that carries datetime2 and datetimeoffset as themselves), `timeout`
(seconds a statement may run, default none), and for the kafka_connect engine's JDBC driver
`encrypt` (true, false or strict; default true) and `trust_server_certificate` (default false).
The password comes from the connection's password_env or password_file, or from
`MSSQL_PASSWORD` when the connection names neither.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from cdc_tui.errors import ConfigError, UsageError

DEFAULT_PORT = 1433
DEFAULT_TDS_VERSION = "7.4"
LOGIN_TIMEOUT_S = 10
PASSWORD_ENV_FALLBACK = "MSSQL_PASSWORD"
APPLICATION_NAME = "cdc-tui"
_KNOWN_QUERY = frozenset({"tds_version", "timeout", "encrypt", "trust_server_certificate"})
ENCRYPT_MODES = ("true", "false", "strict")
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class MssqlParams:
    """Where and as whom to connect; `password` is resolved at build time and never printed."""

    host: str
    port: int
    database: str
    user: str | None
    password: str | None = field(default=None, repr=False)
    tds_version: str = DEFAULT_TDS_VERSION
    timeout_s: int = 0
    application_name: str = APPLICATION_NAME
    # For the JDBC sink only: FreeTDS (the embedded engine) takes encryption from freetds.conf.
    encrypt: str = "true"
    trust_server_certificate: bool = False

    @property
    def display(self) -> str:
        """`host:port/database`, safe for logs and messages."""
        return f"{self.host}:{self.port}/{self.database}"

    def connect_kwargs(self) -> dict[str, Any]:
        """pymssql.connect keyword arguments; autocommit off, so every write is in a transaction."""
        kwargs: dict[str, Any] = {
            "server": self.host,
            "port": str(self.port),
            "database": self.database,
            "login_timeout": LOGIN_TIMEOUT_S,
            "timeout": self.timeout_s,
            "appname": self.application_name,
            "tds_version": self.tds_version,
            "charset": "UTF-8",
            "autocommit": False,
        }
        if self.user is not None:
            kwargs["user"] = self.user
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs


def parse_mssql_url(
    url: str, password: str | None, application_name: str = APPLICATION_NAME
) -> MssqlParams:
    """`mssql://user@host:port/database?tds_version=7.4` as MssqlParams.

    Raises:
        UsageError: no host or database, a bad port, or an unknown query parameter.
    """
    parts = urlsplit(url)
    shown = f"SQL Server URL {parts.scheme}://{parts.hostname or ''}{parts.path}"
    if parts.scheme.lower() != "mssql" or not parts.hostname:
        raise UsageError(f"{shown} needs a host: write it as mssql://user@host:1433/database.")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise UsageError(f"{shown} names no database; write it as mssql://user@host:1433/database.")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise UsageError(f"{shown} has a port that is not a number from 1 to 65535.") from exc
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - _KNOWN_QUERY - {"password"})
    if unknown:
        raise UsageError(
            f"{shown} has unknown parameter(s) {', '.join(unknown)}; only tds_version, "
            "timeout, encrypt and trust_server_certificate are understood."
        )
    encrypt = query.get("encrypt", "true").lower()
    if encrypt not in ENCRYPT_MODES:
        raise UsageError(f"{shown} has encrypt={encrypt!r}; use true, false or strict.")
    trust = query.get("trust_server_certificate", "false").lower()
    if trust not in _BOOLEANS:
        raise UsageError(f"{shown} has trust_server_certificate={trust!r}; use true or false.")
    timeout = query.get("timeout", "0")
    if not timeout.isdigit():
        raise UsageError(f"{shown} has timeout={timeout!r}; give whole seconds.")
    return MssqlParams(
        host=parts.hostname,
        port=port,
        database=database,
        user=unquote(parts.username) if parts.username else None,
        password=password,
        tds_version=query.get("tds_version", DEFAULT_TDS_VERSION),
        timeout_s=int(timeout),
        application_name=application_name[:128],
        encrypt=encrypt,
        trust_server_certificate=_BOOLEANS[trust],
    )


def fallback_password(environ: Mapping[str, str] | None = None) -> str | None:
    """`MSSQL_PASSWORD`, used when a connection names no password source of its own."""
    env = os.environ if environ is None else environ
    return env.get(PASSWORD_ENV_FALLBACK)


def connect(params: MssqlParams) -> Any:
    """Open a pymssql connection with autocommit off.

    Raises:
        ConfigError: pymssql is not installed.
        pymssql.Error: the server refused or could not be reached (callers word the message).
    """
    try:
        import pymssql
    except ImportError as exc:  # pragma: no cover - pymssql is a dependency
        raise ConfigError(
            "pymssql is not installed, so SQL Server targets cannot be reached; "
            "reinstall cdc-tui with its dependencies."
        ) from exc
    return pymssql.connect(**params.connect_kwargs())
