"""How every part of cdc-tui opens a PostgreSQL connection: the password never enters the URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
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
