"""Alembic environment: runs on the connection cdc_tui.store.db.migrate hands over.

Run from the alembic command line (for autogenerate while developing), it connects to the
`sqlalchemy.url` main option, or to the default metadata DB when that is not set.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from cdc_tui.store.db import default_metadata_url, make_engine, normalize_url
from cdc_tui.store.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables in future migrations.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate on the given connection, or on one opened from the configured URL."""
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or default_metadata_url()
    engine = make_engine(normalize_url(url))
    try:
        with engine.connect() as new_connection:
            _run(new_connection)
            new_connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("cdc-tui migrations run online only; open the store to apply them.")
run_migrations_online()
