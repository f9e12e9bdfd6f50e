"""Shared fixtures: throwaway PostgreSQL clusters (session-scoped) and a fresh database per test.

Source and target are separate clusters, each with its own port and temp dir and
`wal_level=logical`. Under CI=true a missing server binary fails the run instead of skipping.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc_tui.localpg import LocalCluster, PgBinaries, find_binaries
from tests.pg import Database, create_database, drop_database

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The live SQL Server suite needs a server this machine cannot run; without one it is not even
# collected, and the run says so in one line (the only skip allowed under CI=true).
MSSQL_URL_ENV = "CDC_TUI_TEST_MSSQL_URL"
collect_ignore_glob = [] if os.environ.get(MSSQL_URL_ENV) else ["live_mssql/*"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not os.environ.get(MSSQL_URL_ENV):
        terminalreporter.write_line(
            f"live SQL Server tests (tests/live_mssql) were not run: {MSSQL_URL_ENV} is not "
            "set; this is the one skip allowed under CI=true (docs/sqlserver.md shows how to "
            "run them against a SQL Server in Docker)."
        )


def _binaries() -> list[PgBinaries]:
    found = find_binaries()
    if not found:
        message = (
            "No PostgreSQL server binaries found: install the dev extra (pgserver) or Debian's "
            "postgresql package, or set CDC_TUI_PG_BINDIR."
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def _start_cluster(name: str, binaries: PgBinaries, **kwargs: object) -> LocalCluster:
    base = Path(tempfile.mkdtemp(prefix=f"cdc-tui-{name}-"))
    cluster = LocalCluster(base, binaries, **kwargs)  # type: ignore[arg-type]
    cluster.init()
    cluster.start()
    return cluster


@pytest.fixture(scope="session")
def pg_binaries() -> list[PgBinaries]:
    return _binaries()


@pytest.fixture(scope="session")
def source_cluster(pg_binaries: list[PgBinaries]) -> Iterator[LocalCluster]:
    # The oldest available major plays the source: replicating up a version is the common case.
    cluster = _start_cluster("source", min(pg_binaries, key=lambda b: b.major))
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def target_cluster(pg_binaries: list[PgBinaries]) -> Iterator[LocalCluster]:
    cluster = _start_cluster("target", max(pg_binaries, key=lambda b: b.major))
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def replica_wal_cluster(pg_binaries: list[PgBinaries]) -> Iterator[LocalCluster]:
    """A source misconfigured with wal_level=replica, for the preflight rule that catches it."""
    cluster = _start_cluster("replica", pg_binaries[0], wal_level="replica")
    yield cluster
    cluster.destroy()


@pytest.fixture
def source_db(source_cluster: LocalCluster) -> Iterator[Database]:
    db = create_database(source_cluster, "src")
    yield db
    drop_database(db)


@pytest.fixture
def target_db(target_cluster: LocalCluster) -> Iterator[Database]:
    db = create_database(target_cluster, "tgt")
    yield db
    drop_database(db)


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The metadata DB URL, once per backend: a SQLite file and a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.db'}"
        return
    cluster: LocalCluster = request.getfixturevalue("target_cluster")
    db = create_database(cluster, "meta")
    # The metadata DB connects over TCP with the superuser password given in the URL; tests only.
    yield (
        f"postgresql+psycopg://postgres:{cluster.superuser_password}"
        f"@127.0.0.1:{cluster.port}/{db.name}"
    )
    drop_database(db)


@pytest.fixture(scope="session")
def kafka_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One real Kafka broker and Connect worker with Debezium for the kafka_connect tests.

    The jars come from the shared cache (only the first run on a machine downloads them);
    under CI=true a missing java or mvn fails the run instead of skipping.
    """
    import shutil

    from cdc_tui import kafka_stack as ks

    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        message = f"{' and '.join(missing)} not installed: the Kafka stack needs Java 17 and Maven."
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    state_dir = tmp_path_factory.mktemp("kafka-session")
    ks.fetch()
    stack = ks.start(state_dir, timeout=240)
    yield stack
    ks.stop(state_dir)
