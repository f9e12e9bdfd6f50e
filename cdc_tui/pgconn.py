"""How every part of cdc-tui opens a PostgreSQL connection: the password never enters the URL."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

APPLICATION_NAME = "cdc-tui"
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class PgParams:
    """A password-free URL plus the password resolved from the environment or a file.

    `password` is None when libpq should find it itself (PGPASSWORD, PGPASSFILE, ~/.pgpass).
    """

    url: str
    password: str | None = field(default=None, repr=False)
    application_name: str = APPLICATION_NAME

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "application_name": self.application_name,
            "connect_timeout": CONNECT_TIMEOUT_S,
        }
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs


def connect(
    params: PgParams, *, autocommit: bool = True, replication: bool = False
) -> psycopg.Connection[TupleRow]:
    """Open a connection; `replication=True` opens a `replication=database` walsender session."""
    kwargs = params.connect_kwargs()
    if replication:
        kwargs["replication"] = "database"
    return psycopg.connect(params.url, autocommit=autocommit, **kwargs)


def connect_bounded(params: PgParams, timeout_s: float) -> psycopg.Connection[Any]:
    """Connect like `connect`, but with every wait bounded by `timeout_s` (connect, each
    statement, a peer that vanished): for probes that must never hang a screen or a form."""
    kwargs = params.connect_kwargs()
    whole_s = max(2, math.ceil(timeout_s))
    # libpq counts connect_timeout in whole seconds, at least 2: round up, never to zero.
    kwargs["connect_timeout"] = whole_s
    kwargs["options"] = _with_statement_timeout(params.url, timeout_s)
    # Keepalives notice a peer that vanished mid-query, which no server-side timeout can.
    kwargs.update(keepalives=1, keepalives_idle=whole_s, keepalives_interval=1, keepalives_count=2)
    return psycopg.connect(params.url, autocommit=True, **kwargs)


def _with_statement_timeout(url: str, timeout_s: float) -> str:
    """The session's startup options plus a statement_timeout, set without an extra round trip.

    An `options` keyword replaces the URL's and PGOPTIONS, so those are kept in front of it.
    """
    try:
        given = conninfo_to_dict(url).get("options")
    except psycopg.Error:
        given = None
    base = str(given) if given else os.environ.get("PGOPTIONS", "")
    setting = f"-c statement_timeout={max(1, round(timeout_s * 1000))}"
    return f"{base} {setting}".strip()
