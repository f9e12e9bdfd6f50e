"""Helpers for tests that talk to the throwaway PostgreSQL clusters."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from cdc_tui.localpg import LocalCluster


@dataclass
class Database:
    """A fresh database in one of the session's clusters."""

    cluster: LocalCluster
    name: str

    def url(self, user: str | None = None) -> str:
        """Password-free TCP URL; the password reaches libpq through the environment or a file."""
        return self.cluster.url(self.name, user)

    @property
    def superuser_password(self) -> str:
        return self.cluster.superuser_password

    @contextmanager
    def admin(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """A superuser connection over the private socket, autocommit."""
        with psycopg.connect(self.cluster.admin_conninfo(self.name), autocommit=True) as conn:
            yield conn

    def execute(self, statement: str, params: tuple[object, ...] | None = None) -> None:
        with self.admin() as conn:
            conn.execute(statement.encode(), params)  # test fixtures are trusted SQL

    def scalar(self, statement: str, params: tuple[object, ...] | None = None) -> object:
        with self.admin() as conn:
            row = conn.execute(statement.encode(), params).fetchone()
            return None if row is None else row[0]


def create_database(cluster: LocalCluster, prefix: str = "t") -> Database:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.admin_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return Database(cluster, name)


def drop_database(db: Database) -> None:
    with psycopg.connect(db.cluster.admin_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.name))
        )
