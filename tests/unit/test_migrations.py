"""Opening the metadata DB: migrations on first use, models == migrations, backend settings."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import platformdirs
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, inspect, text

from cdc_tui.errors import ConfigError, OperationError
from cdc_tui.store import db
from cdc_tui.store.db import (
    HEAD_REVISION,
    current_revision,
    default_metadata_url,
    head_revision,
    normalize_url,
    open_store,
)
from cdc_tui.store.models import Base
from cdc_tui.store.repositories import PipelineRepository
from tests.unit.store_support import create_pipeline

TABLES = {"pipelines", "connections", "pipeline_tables", "events", "step_logs", "runner_leases"}


def test_first_open_migrates_to_head(metadata_url: str) -> None:
    store = open_store(metadata_url)
    try:
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision() == HEAD_REVISION == "0004"
            assert set(inspect(connection).get_table_names()) >= TABLES
    finally:
        store.dispose()


def test_reopen_skips_the_upgrade_and_keeps_data(
    metadata_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(metadata_url)
    create_pipeline(PipelineRepository(store))
    store.dispose()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("upgrade must not run on a database already at head")

    monkeypatch.setattr(command, "upgrade", refuse)
    reopened = open_store(metadata_url)
    try:
        assert PipelineRepository(reopened).get("orders").name == "orders"
    finally:
        reopened.dispose()


def test_models_and_migrations_agree(metadata_url: str) -> None:
    store = open_store(metadata_url)
    try:
        with store.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        store.dispose()


def test_downgrade_to_base_then_upgrade_again(metadata_url: str) -> None:
    store = open_store(metadata_url)
    try:
        with store.engine.begin() as connection:
            command.downgrade(db._alembic_config(connection), "base")
        with store.engine.connect() as connection:
            assert current_revision(connection) is None
            assert not TABLES & set(inspect(connection).get_table_names())
        db.migrate(store.engine)
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision()
    finally:
        store.dispose()


def test_concurrent_first_opens_all_succeed(metadata_url: str) -> None:
    # Each process starts at the same instant and dawdles inside the upgrade, so without the
    # migration lock they would all try to create the schema at once.
    script = (
        "import os, time\n"
        "from alembic import command\n"
        "from cdc_tui.store.db import open_store\n"
        "real_upgrade = command.upgrade\n"
        "def slow_upgrade(*args, **kwargs):\n"
        "    time.sleep(0.5)\n"
        "    real_upgrade(*args, **kwargs)\n"
        "command.upgrade = slow_upgrade\n"
        "time.sleep(max(0.0, float(os.environ['START_AT']) - time.time()))\n"
        "open_store(os.environ['META_URL']).dispose()\n"
    )
    env = {**os.environ, "META_URL": metadata_url, "START_AT": str(time.time() + 3)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    failures = [p.stderr.read().decode() for p in procs if p.wait(120) != 0 and p.stderr]
    for p in procs:
        if p.stderr:
            p.stderr.close()
    assert failures == []
    store = open_store(metadata_url)
    try:
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision()
    finally:
        store.dispose()


def test_a_newer_schema_is_refused(metadata_url: str) -> None:
    store = open_store(metadata_url)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.dispose()
    with pytest.raises(ConfigError, match="revision 9999"):
        open_store(metadata_url)


def test_sqlite_runs_in_wal_mode_with_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'nested' / 'meta.db'}")
    try:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (tmp_path / "nested" / "meta.db-wal").exists()
    finally:
        store.dispose()


def test_sqlite_write_transactions_begin_immediate(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    statements: list[str] = []
    try:

        def record(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(store.engine, "before_cursor_execute", record)
        with store.begin() as session:
            session.execute(text("SELECT 1"))
        with store.session() as session:
            session.execute(text("SELECT 1"))
        assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE", "BEGIN"]
    finally:
        store.dispose()


def test_default_url_is_a_private_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data" / "cdc-tui"
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda app: str(data_dir))
    url = default_metadata_url()
    assert url == f"sqlite:///{data_dir / 'metadata.db'}"
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    store = open_store()
    try:
        assert store.engine.url.database == str(data_dir / "metadata.db")
    finally:
        store.dispose()


def test_postgresql_urls_use_psycopg_and_unknown_schemes_are_refused() -> None:
    assert normalize_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(ConfigError, match="not supported") as info:
        normalize_url("mysql://u:topsecret@h/d")
    assert "topsecret" not in info.value.message
    with pytest.raises(ConfigError, match="not a valid URL"):
        normalize_url("not a url")


def test_unreachable_postgresql_is_one_sentence_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(OperationError) as info:
        open_store("postgresql://meta:topsecret@127.0.0.1:1/meta?connect_timeout=2")
    assert "topsecret" not in info.value.message
    assert "meta:***@127.0.0.1:1/meta" in info.value.message
    assert "topsecret" not in caplog.text


def test_migration_log_hides_the_password(
    metadata_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cdc_tui.store.db")
    open_store(metadata_url).dispose()
    assert "Migrating metadata DB" in caplog.text
    password = normalize_url(metadata_url).password
    if password:
        assert str(password) not in caplog.text
        assert "***" in caplog.text
