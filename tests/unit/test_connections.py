"""Connection references, password resolution and redaction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cdc_tui.config.connections import (
    ConnectionRef,
    pg_params,
    redact,
    resolve_connection,
    resolve_password,
    strip_password,
    url_has_password,
)
from cdc_tui.config.settings import ConnectionSettings, Settings
from cdc_tui.errors import ConfigError, NotFoundError, UsageError

SECRET = "p%40ss-w0rd"


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        connections={
            "prod": ConnectionSettings(url="postgres://cdc@db1:5432/shop", password_env="PROD_PW"),
            "dwh": ConnectionSettings(
                url="postgresql://loader@dwh/analytics", password_file=tmp_path / "dwh.pw"
            ),
            "inline": ConnectionSettings(url=f"postgresql://app:{SECRET}@h/db?sslmode=require"),
            "plain": ConnectionSettings(url="postgresql://app@h/db"),
            "mss": ConnectionSettings(url="mssql://sa@sql:1433/db", password_env="MSS_PW"),
        }
    )


def test_resolve_by_name(tmp_path: Path) -> None:
    ref = resolve_connection("prod", _settings(tmp_path), role="source")
    assert ref == ConnectionRef(
        url="postgresql://cdc@db1:5432/shop", kind="postgresql", name="prod", password_env="PROD_PW"
    )
    dwh = resolve_connection("dwh", _settings(tmp_path), role="target")
    assert dwh.password_file == str(tmp_path / "dwh.pw")
    assert resolve_connection("mss", _settings(tmp_path), role="target").kind == "mssql"


def test_config_url_password_is_stripped_from_ref(tmp_path: Path) -> None:
    ref = resolve_connection("inline", _settings(tmp_path), role="source")
    assert ref.url == "postgresql://app@h/db?sslmode=require"
    assert SECRET not in str(ref.to_json())
    assert ref.to_json()["name"] == "inline"


def test_resolve_bare_url(tmp_path: Path) -> None:
    ref = resolve_connection("POSTGRES://u@host/db", _settings(tmp_path), role="source")
    assert ref == ConnectionRef(url="postgresql://u@host/db", kind="postgresql")


@pytest.mark.parametrize(
    "url", ["postgresql://u:pw@h/db", "postgresql://u@h/db?password=pw", "mssql://sa:pw@h/db"]
)
def test_url_with_password_on_command_line_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(UsageError) as info:
        resolve_connection(url, _settings(tmp_path), role="source")
    assert info.value.message == (
        "The --source URL contains a password; put it in a [connections.NAME] entry with "
        "password_env or password_file, or use PGPASSWORD/PGPASSFILE."
    )


def test_url_with_bad_scheme(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--target URL must start with postgresql://"):
        resolve_connection("mysql://u:pw@h/db", _settings(tmp_path), role="target")


def test_unknown_name_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        resolve_connection("prd", _settings(tmp_path), role="source")
    assert "'prd'" in info.value.message
    assert "dwh, inline, mss, plain, prod" in info.value.message
    with pytest.raises(NotFoundError, match="none are configured"):
        resolve_connection("prd", Settings(), role="target")


def test_password_from_env(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ref = resolve_connection("prod", settings, role="source")
    assert resolve_password(ref, settings, {"PROD_PW": "s3"}) == "s3"
    with pytest.raises(ConfigError) as info:
        resolve_password(ref, settings, {})
    assert "PROD_PW" in info.value.message and "'prod'" in info.value.message


def test_password_from_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ref = resolve_connection("dwh", settings, role="target")
    with pytest.raises(ConfigError) as info:
        resolve_password(ref, settings, {})
    assert str(tmp_path / "dwh.pw") in info.value.message
    (tmp_path / "dwh.pw").write_text("fil3 pw\n", encoding="utf-8")
    assert resolve_password(ref, settings, {}) == "fil3 pw"
    (tmp_path / "dwh.pw").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is empty"):
        resolve_password(ref, settings, {})


def test_password_from_config_url(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ref = resolve_connection("inline", settings, role="source")
    assert resolve_password(ref, settings, {}) == "p@ss-w0rd"


def test_no_password_source_gives_none(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert (
        resolve_password(resolve_connection("plain", settings, role="source"), settings, {}) is None
    )
    bare = resolve_connection("postgresql://u@h/db", settings, role="source")
    assert resolve_password(bare, settings, {"PGPASSWORD": "x"}) is None


def test_pg_params(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ref = resolve_connection("prod", settings, role="source")
    params = pg_params(ref, settings, {"PROD_PW": "s3"}, application_name="cdc-tui check")
    assert (params.url, params.password) == ("postgresql://cdc@db1:5432/shop", "s3")
    assert params.application_name == "cdc-tui check"
    assert "s3" not in repr(params)
    mss = resolve_connection("mss", settings, role="target")
    with pytest.raises(UsageError, match="SQL Server targets are not available yet"):
        pg_params(mss, settings, {"MSS_PW": "x"})


@pytest.mark.parametrize(
    ("url", "has", "stripped"),
    [
        ("postgresql://u:pw@h:5432/db", True, "postgresql://u@h:5432/db"),
        ("postgresql://u:p@ss@h/db", True, "postgresql://u@h/db"),
        ("postgresql://u@h/db", False, "postgresql://u@h/db"),
        (
            "postgresql://h/db?password=pw&sslmode=require",
            True,
            "postgresql://h/db?sslmode=require",
        ),
        ("postgresql://u:@h/db", False, "postgresql://u@h/db"),
        ("postgresql://u:pw@h1:5432,h2:5433/db", True, "postgresql://u@h1:5432,h2:5433/db"),
        ("postgresql://h/db", False, "postgresql://h/db"),
        ("not a url", False, "not a url"),
    ],
)
def test_strip_and_detect_password(url: str, has: bool, stripped: str) -> None:
    assert url_has_password(url) is has
    assert strip_password(url) == stripped
    assert not url_has_password(strip_password(url))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("connect postgresql://u:pw@h/db failed", "connect postgresql://u:***@h/db failed"),
        (
            "from mssql://sa:A1!@src:1433/x to postgres://b:c@d/e",
            "from mssql://sa:***@src:1433/x to postgres://b:***@d/e",
        ),
        ("host=h password=secret dbname=d", "host=h password=*** dbname=d"),
        ("host=h password = 'a b\\'c' user=u", "host=h password = *** user=u"),
        (
            "postgresql://h/db?password=pw&sslmode=require",
            "postgresql://h/db?password=***&sslmode=require",
        ),
        ("PGPASSWORD=pw psql", "PGPASSWORD=*** psql"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u@h:5432/db and http://host:8080/x",
            "postgresql://u@h:5432/db and http://host:8080/x",
        ),
        ("password_env=PROD_PW", "password_env=PROD_PW"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_config_package_is_light() -> None:
    code = (
        "import sys, cdc_tui.config, cdc_tui.config.loader, cdc_tui.config.connections\n"
        "heavy = ('textual', 'sqlalchemy', 'psycopg')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
