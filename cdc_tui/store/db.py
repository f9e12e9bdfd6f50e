"""Opening the metadata DB: default location, per-backend engine setup, automatic migrations."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

import platformdirs
from sqlalchemy import Connection, Engine, create_engine, event, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cdc_tui.errors import ConfigError, OperationError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

APP_NAME = "cdc-tui"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 15_000
# A fixed key all cdc-tui processes agree on, so only one of them migrates a PostgreSQL DB at once.
MIGRATION_LOCK_KEY = 0x6364_6374_7569_0001
# Execution option marking write transactions, which SQLite starts with BEGIN IMMEDIATE.
WRITE_OPTION = "cdc_tui_write"

_SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys = ON",
)
WAL_SWITCH_ATTEMPTS = 60


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC: the default clock of the store."""
    return datetime.now(UTC)


def default_metadata_url() -> str:
    """A SQLite file in the user's data directory, which is created private (mode 0700)."""
    directory = Path(platformdirs.user_data_dir(APP_NAME))
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'metadata.db'}"


def normalize_url(url: str) -> URL:
    """Parse a metadata DB URL; plain `postgresql://` URLs get the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ConfigError(
            "The metadata DB URL is not a valid URL; set CDC_TUI_METADATA_URL to "
            "sqlite:///PATH or postgresql://USER@HOST/DB."
        ) from e
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"The metadata DB URL {parsed.render_as_string(hide_password=True)} is not supported; "
            "use sqlite:///PATH or postgresql://USER@HOST/DB."
        )
    return parsed


def safe_url(url: URL) -> str:
    """The URL as it may appear in logs and messages: never with its password."""
    return url.render_as_string(hide_password=True)


def _on_sqlite_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # SQLAlchemy, not the driver, emits BEGIN (see _on_sqlite_begin), so DDL is transactional.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        _ensure_wal(cursor)
    finally:
        cursor.close()


def _ensure_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL once; the switch needs an exclusive lock and ignores busy_timeout."""
    for attempt in range(WAL_SWITCH_ATTEMPTS):
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == WAL_SWITCH_ATTEMPTS - 1:
                raise
            time.sleep(min(0.02 * (attempt + 1), 0.25))


def _on_sqlite_begin(connection: Connection) -> None:
    # Writers take the write lock at BEGIN: upgrading a read lock later can fail without waiting.
    if connection.get_execution_options().get(WRITE_OPTION):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


def make_engine(url: URL) -> Engine:
    """An Engine for `url` with the per-backend settings (SQLite: WAL, busy timeout, FKs)."""
    if url.get_backend_name() == "sqlite":
        database = url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


@contextmanager
def translate_db_errors(url: URL) -> Iterator[None]:
    """Turn a metadata DB that cannot be reached or is locked into a one-sentence OperationError."""
    try:
        yield
    except OperationalError as e:
        detail = str(e.orig).strip().splitlines()[0] if e.orig is not None else type(e).__name__
        raise OperationError(
            f"The metadata DB {safe_url(url)} failed ({detail}); check that it is reachable, "
            "writable and not locked by another program.",
            title="Metadata DB error",
        ) from e


class Store:
    """The metadata DB: an Engine, its session factories and the clock repositories use."""

    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock
        self._read_sessions = sessionmaker(bind=engine, expire_on_commit=False)
        write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self._write_sessions = sessionmaker(bind=write_engine, expire_on_commit=False)

    @property
    def dialect_name(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @property
    def safe_url(self) -> str:
        """The URL without its password, for logs and messages."""
        return safe_url(self.engine.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session; its transaction is rolled back on exit, so do not write in it."""
        with translate_db_errors(self.engine.url), self._read_sessions() as session:
            yield session

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back on error.

        On SQLite it starts with BEGIN IMMEDIATE, so concurrent writers queue (up to the busy
        timeout) instead of failing when they upgrade a read lock.
        """
        with translate_db_errors(self.engine.url), self._write_sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


# The newest migration shipped; a test checks it against the migrations directory, so every
# process start can confirm an up-to-date schema with one query and without importing Alembic.
HEAD_REVISION: Final = "0004"
_READ_VERSION: Final = text("SELECT version_num FROM alembic_version")


@lru_cache(maxsize=1)
def _script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def head_revision() -> str | None:
    """The newest migration this version of cdc-tui ships."""
    return _script_directory().get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The migration the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _at_head(engine: Engine) -> bool:
    """Whether the schema is at HEAD_REVISION; False when unsure (the full check decides)."""
    try:
        with engine.connect() as connection:
            versions = connection.execute(_READ_VERSION).scalars().all()
    except DBAPIError:
        return False  # no version table yet, or a backend hiccup the full path reports
    return versions == [HEAD_REVISION]


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # env.py runs the migrations on this connection, inside the caller's locked transaction.
    config.attributes["connection"] = connection
    return config


def _check_known(url: URL, revision: str | None) -> None:
    known = {script.revision for script in _script_directory().walk_revisions()}
    if revision is not None and revision not in known:
        raise ConfigError(
            f"The metadata DB {safe_url(url)} is at schema revision {revision}, which this "
            "cdc-tui does not know; upgrade cdc-tui or point CDC_TUI_METADATA_URL elsewhere."
        )


def migrate(engine: Engine) -> None:
    """Bring the schema to head; a no-op costing one query when it is already there.

    Concurrent callers are serialised (PostgreSQL: a transaction advisory lock; SQLite: BEGIN
    IMMEDIATE) and re-check the revision once they hold the lock, so only one upgrades.
    """
    if _at_head(engine):
        return
    head = head_revision()
    with engine.connect() as connection:
        current = current_revision(connection)
    if current == head:
        return
    _check_known(engine.url, current)
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        current = current_revision(connection)
        if current == head:
            return
        _check_known(engine.url, current)
        log.info("Migrating metadata DB %s from %s to %s", safe_url(engine.url), current, head)
        from alembic import command

        command.upgrade(_alembic_config(connection), "head")


def open_store(url: str | None = None, *, clock: Clock = utc_now) -> Store:
    """Open the metadata DB at `url` (None: the default SQLite file), migrating it to head."""
    parsed = normalize_url(url if url is not None else default_metadata_url())
    engine = make_engine(parsed)
    try:
        with translate_db_errors(parsed):
            migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, clock=clock)
