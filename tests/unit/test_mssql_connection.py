"""SQL Server target URLs and where their password comes from; nothing connects."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.errors import ConfigError, UsageError
from cdc_tui.services.context import build_context
from cdc_tui.targets.mssql.connection import parse_mssql_url


def test_a_full_url() -> None:
    params = parse_mssql_url("mssql://loader@sql.example:14330/dwh?tds_version=7.3&timeout=30",
                             "pw", "cdc-tui x")  # fmt: skip
    assert (params.host, params.port, params.database, params.user) == (
        "sql.example", 14330, "dwh", "loader")  # fmt: skip
    kwargs = params.connect_kwargs()
    assert kwargs["tds_version"] == "7.3" and kwargs["timeout"] == 30
    assert kwargs["autocommit"] is False and kwargs["password"] == "pw"
    assert "pw" not in repr(params) and params.display == "sql.example:14330/dwh"


def test_defaults() -> None:
    params = parse_mssql_url("mssql://sql.example/dwh", None)
    assert (params.port, params.tds_version, params.user, params.timeout_s) == (
        1433,
        "7.4",
        None,
        0,
    )
    assert "password" not in params.connect_kwargs()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mssql:///dwh", "needs a host"),
        ("mssql://sql.example", "names no database"),
        ("mssql://sql.example:99999/dwh", "port that is not a number"),
        ("mssql://sql.example/dwh?encrypt=yes", "encrypt='yes'; use true, false or strict"),
        ("mssql://sql.example/dwh?ssl=1", "unknown parameter(s) ssl"),
        ("mssql://sql.example/dwh?timeout=soon", "give whole seconds"),
    ],
)
def test_bad_urls_are_one_sentence(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_mssql_url(url, None)


def test_the_password_comes_from_the_connection_then_mssql_password(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'metadata_url = "sqlite:///{tmp_path / "m.db"}"\n')
    config.chmod(0o600)
    ctx = build_context(config, environ={"DWH_PW": "a", "MSSQL_PASSWORD": "b"})
    named = ConnectionRef("mssql://loader@sql.example/dwh", "mssql", "dwh", password_env="DWH_PW")
    bare = ConnectionRef("mssql://loader@sql.example/dwh", "mssql")
    assert ctx.mssql_params(named).password == "a"
    assert ctx.mssql_params(bare).password == "b"
    unset = ConnectionRef("mssql://loader@sql.example/dwh", "mssql", "dwh", password_env="NOPE")
    with pytest.raises(ConfigError, match="NOPE"):
        ctx.mssql_params(unset)
    with pytest.raises(UsageError, match="not a SQL Server one"):
        ctx.mssql_params(ConnectionRef("postgresql://h/db", "postgresql"))
