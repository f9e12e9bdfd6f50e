"""A realistic CLI set-up: least-privilege roles on source and target, a config with named
connections whose passwords come from the environment, and a private log file."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

from tests.pg import Database

SOURCE_ROLE = "cdc_reader"
TARGET_ROLE = "cdc_writer"

SAMPLE_TABLES = """
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id bigint PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE shop."Order Items" (order_id bigint, line int, sku text, PRIMARY KEY (order_id, line));
INSERT INTO shop.customers SELECT g, 'c' || g, NULL FROM generate_series(1, 100) g;
"""


@dataclass
class CliEnv:
    config: Path
    log_file: Path
    source: Database
    target: Database
    source_password: str
    target_password: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def secrets(self) -> tuple[str, str]:
        return (self.source_password, self.target_password)


def _create_role(db: Database, role: str, password: str, *, replication: bool) -> None:
    with db.admin() as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL("{} ROLE {} LOGIN {} PASSWORD {}").format(
                sql.SQL(verb),
                sql.Identifier(role),
                sql.SQL("REPLICATION" if replication else "NOREPLICATION"),
                sql.Literal(password),
            )
        )


def make_cli_env(tmp_path: Path, metadata_url: str, source: Database, target: Database) -> CliEnv:
    """Roles, grants, sample tables and a config file; returns the environment to run with."""
    src_pw, tgt_pw = "src-" + secrets.token_hex(12), "tgt-" + secrets.token_hex(12)
    _create_role(source, SOURCE_ROLE, src_pw, replication=True)
    _create_role(target, TARGET_ROLE, tgt_pw, replication=False)
    source.execute(SAMPLE_TABLES)
    with source.admin() as conn:
        conn.execute(f"GRANT USAGE ON SCHEMA shop TO {SOURCE_ROLE}".encode())
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA shop TO {SOURCE_ROLE}".encode())
        conn.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(source.name), sql.Identifier(SOURCE_ROLE)
            )
        )
        conn.execute(f"ALTER TABLE shop.customers OWNER TO {SOURCE_ROLE}".encode())
        conn.execute(f'ALTER TABLE shop."Order Items" OWNER TO {SOURCE_ROLE}'.encode())
    with target.admin() as conn:
        conn.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(target.name), sql.Identifier(TARGET_ROLE)
            )
        )
    log_file = tmp_path / "logs" / "cdc-tui.log"
    config = tmp_path / "config.toml"
    config.write_text(
        f'metadata_url = "{metadata_url}"\n\n'
        f'[logging]\nlevel = "DEBUG"\nfile = "{log_file}"\n\n'
        f'[connections.src]\nurl = "{source.url(SOURCE_ROLE)}"\n'
        'password_env = "CDC_TUI_SECRET_SRC"\n\n'
        f'[connections.tgt]\nurl = "{target.url(TARGET_ROLE)}"\n'
        'password_env = "CDC_TUI_SECRET_TGT"\n'
    )
    config.chmod(0o600)
    env = {
        "CDC_TUI_CONFIG": str(config),
        "CDC_TUI_SECRET_SRC": src_pw,
        "CDC_TUI_SECRET_TGT": tgt_pw,
    }
    return CliEnv(config, log_file, source, target, src_pw, tgt_pw, env)
