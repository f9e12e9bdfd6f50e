"""Settings loading: file selection, TOML errors, env precedence, unknown keys, permissions."""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from cdc_tui.config import loader
from cdc_tui.config.loader import load_settings
from cdc_tui.config.settings import LoggingSettings, Settings
from cdc_tui.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hunter2-s3cret"

WriteConfig = Callable[..., Path]


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The developer's real ~/.config/cdc-tui/config.toml must never leak into a test.
    monkeypatch.setattr(loader, "default_config_path", lambda: tmp_path / "absent" / "config.toml")


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    def write(text: str, mode: int = 0o600, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)
        return path

    return write


def _error(path: Path | None, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=environ or {})
    return info.value


GOOD = """
metadata_url = "sqlite:////tmp/meta.db"

[connections.prod]
url = "postgresql://cdc@db1/shop"
password_env = "CDC_TUI_SECRET_PROD"

[connections.Dwh]
url = "mssql://loader@dwh:1433/analytics"
password_file = "/run/secrets/dwh"

[console]
refresh_interval = 0.5
read_only = true

[console.keys]
quit = "ctrl+q"

[runner]
full_load_workers = 8

[logging]
level = "debug"
file = "/tmp/cdc.log"
"""


def test_no_file_gives_defaults() -> None:
    loaded = load_settings(environ={})
    assert loaded.path is None
    assert loaded.warnings == ()
    assert loaded.settings == Settings()
    assert loaded.settings.console.refresh_interval == 2.0
    assert loaded.settings.runner.full_load_workers == 2
    assert loaded.settings.logging.log_path().name == "cdc-tui.log"


def test_good_file(write_config: WriteConfig) -> None:
    path = write_config(GOOD)
    loaded = load_settings(path, environ={})
    s = loaded.settings
    assert loaded.path == path
    assert s.metadata_url == "sqlite:////tmp/meta.db"
    assert s.connections["prod"].password_env == "CDC_TUI_SECRET_PROD"
    assert s.connections["Dwh"].password_file == Path("/run/secrets/dwh")
    assert (s.console.refresh_interval, s.console.read_only) == (0.5, True)
    assert s.console.keys == {"quit": "ctrl+q"}
    assert s.runner.full_load_workers == 8
    assert s.runner.lease_timeout == 30.0
    assert s.logging.level == "DEBUG"
    assert s.logging.log_path() == Path("/tmp/cdc.log")


def test_user_config_dir_file_is_used_when_present(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config("[console]\nread_only = true\n")
    monkeypatch.setattr(loader, "default_config_path", lambda: path)
    loaded = load_settings(environ={})
    assert loaded.path == path
    assert loaded.settings.console.read_only is True


def test_cdc_tui_config_selects_the_file(write_config: WriteConfig) -> None:
    path = write_config("[runner]\nfull_load_workers = 3\n", name="other.toml")
    loaded = load_settings(environ={"CDC_TUI_CONFIG": str(path)})
    assert loaded.path == path
    assert loaded.settings.runner.full_load_workers == 3


def test_explicit_path_beats_cdc_tui_config(write_config: WriteConfig) -> None:
    explicit = write_config("[runner]\nfull_load_workers = 4\n", name="a.toml")
    named = write_config("[runner]\nfull_load_workers = 5\n", name="b.toml")
    loaded = load_settings(explicit, environ={"CDC_TUI_CONFIG": str(named)})
    assert loaded.settings.runner.full_load_workers == 4


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    err = _error(missing)
    assert str(missing) in err.message
    assert "--config" in err.message


def test_missing_cdc_tui_config_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    err = _error(None, {"CDC_TUI_CONFIG": str(missing)})
    assert str(missing) in err.message
    assert "CDC_TUI_CONFIG" in err.message


def test_invalid_toml_names_file_and_line(write_config: WriteConfig) -> None:
    path = write_config("[console]\nrefresh_interval = = 2\n")
    err = _error(path)
    assert str(path) in err.message
    assert "line 2" in err.message
    assert err.exit_code == 2


def test_unknown_nested_key_message(write_config: WriteConfig) -> None:
    path = write_config("[console]\nrefresh = 5\n")
    assert _error(path).message == (
        f"Unknown key 'console.refresh' in {path}; remove it or fix its spelling "
        "(config.example.toml lists every key)."
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("metadata_uri = 'sqlite://'\n", "metadata_uri"),
        ("[Console]\nread_only = true\n", "Console"),
        (
            "[connections.a]\nurl = 'postgresql://h/d'\npasword_env = 'X'\n",
            "connections.a.pasword_env",
        ),
        ("[runner]\nworkers = 3\n", "runner.workers"),
    ],
)
def test_unknown_keys_are_errors(write_config: WriteConfig, text: str, key: str) -> None:
    path = write_config(text)
    err = _error(path)
    assert err.message.startswith(f"Unknown key '{key}' in {path};")
    assert isinstance(err.__cause__, ValidationError)


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("[console]\nrefresh_interval = 'fast'\n", "console.refresh_interval", "valid number"),
        ("[console]\nrefresh_interval = 0\n", "console.refresh_interval", "greater than 0"),
        ("[runner]\nfull_load_workers = 0\n", "runner.full_load_workers", "greater than or equal"),
        ("[runner]\nfull_load_workers = 65\n", "runner.full_load_workers", "less than or equal"),
        ("[runner]\nlease_timeout = 1\n", "runner", "greater than heartbeat_interval"),
        ("[logging]\nlevel = 'LOUD'\n", "logging.level", "DEBUG, INFO"),
        ("console = 3\n", "console", "dictionary"),
        ("[connections.p]\nurl = 'mysql://h/d'\n", "connections.p.url", "postgresql://"),
        ("[connections.1bad]\nurl = 'postgresql://h/d'\n", "connections", "'1bad'"),
        (
            "[connections.p]\nurl = 'postgresql://h/d'\npassword_env = 'X'\npassword_file = '/f'\n",
            "connections.p",
            "not both",
        ),
    ],
)
def test_bad_values_name_key_and_expectation(
    write_config: WriteConfig, text: str, key: str, expected: str
) -> None:
    path = write_config(text)
    err = _error(path)
    assert err.message.startswith(f"Invalid value for '{key}' in {path}: ")
    assert expected in err.message
    assert err.message.endswith(".") and not err.message.endswith("..")


def test_missing_url_is_reported(write_config: WriteConfig) -> None:
    path = write_config("[connections.p]\npassword_env = 'X'\n")
    assert _error(path).message.startswith(f"Missing key 'connections.p.url' in {path};")


def test_env_wins_over_file_top_level_and_nested(write_config: WriteConfig) -> None:
    path = write_config(GOOD)
    environ = {
        "CDC_TUI_METADATA_URL": "postgresql://meta/cdc",
        "CDC_TUI_CONSOLE__REFRESH_INTERVAL": "5",
        "CDC_TUI_CONNECTIONS__DWH__URL": "postgresql://other/db",
        "CDC_TUI_CONSOLE__KEYS__HELP": "f1",
        "CDC_TUI_RUNNER": '{"lease_timeout": 99}',
    }
    s = load_settings(path, environ=environ).settings
    assert s.metadata_url == "postgresql://meta/cdc"
    assert s.console.refresh_interval == 5.0
    assert s.console.read_only is True  # untouched file value survives the nested override
    assert s.console.keys == {"quit": "ctrl+q", "help": "f1"}
    assert s.connections["Dwh"].url == "postgresql://other/db"
    assert s.connections["Dwh"].password_file == Path("/run/secrets/dwh")
    assert s.runner.lease_timeout == 99.0
    assert s.runner.full_load_workers == 8


def test_env_alone_without_file() -> None:
    environ = {
        "CDC_TUI_CONNECTIONS__SRC__URL": "postgres://h/db",
        "cdc_tui_console__read_only": "1",
    }
    s = load_settings(environ=environ).settings
    assert s.connections["src"].url == "postgres://h/db"
    assert s.console.read_only is True


def test_bad_env_value_names_the_variable() -> None:
    err = _error(None, {"CDC_TUI_CONSOLE__REFRESH_INTERVAL": "soon"})
    assert "CDC_TUI_CONSOLE__REFRESH_INTERVAL" in err.message
    assert "'console.refresh_interval'" in err.message
    assert "valid number" in err.message


@pytest.mark.parametrize(
    "name", ["CDC_TUI_CONSOLE__REFRESH", "CDC_TUI_BOGUS", "CDC_TUI_CONSOLE__KEYS__A__B", "CDC_TUI_"]
)
def test_unknown_env_var_is_an_error(name: str) -> None:
    err = _error(None, {name: "1"})
    assert err.message.startswith(f"Unknown environment variable {name};")


def test_ignored_env_vars(write_config: WriteConfig) -> None:
    path = write_config("[console]\nread_only = true\n")
    environ = {
        "CDC_TUI_CONFIG": str(path),
        "CDC_TUI_PG_BINDIR": "/usr/lib/postgresql/16/bin",
        "CDC_TUI_TEST_MSSQL_URL": "mssql://sa@localhost/db",
        "CDC_TUI_TEST_ANYTHING": "x",
        "CDC_TUI_SECRET_PROD": SECRET,
        "PATH": "/usr/bin",
    }
    assert load_settings(environ=environ).settings.console.read_only is True


def test_os_environ_is_not_read_when_environ_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDC_TUI_CONSOLE__REFRESH_INTERVAL", "9")
    monkeypatch.setenv("CDC_TUI_BOGUS", "1")
    assert load_settings(environ={}).settings.console.refresh_interval == 2.0
    assert Settings().console.refresh_interval == 2.0


def test_os_environ_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.upper().startswith("CDC_TUI_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CDC_TUI_CONSOLE__REFRESH_INTERVAL", "9")
    assert load_settings().settings.console.refresh_interval == 9.0


def test_permission_warning_with_password_file(write_config: WriteConfig) -> None:
    text = "[connections.p]\nurl = 'postgresql://u@h/d'\npassword_file = '/run/pw'\n"
    path = write_config(text, mode=0o644)
    assert load_settings(path, environ={}).warnings == (
        f"Config file {path} is readable by other users and holds credentials; "
        f"run chmod 600 {path}.",
    )
    path.chmod(0o600)
    assert load_settings(path, environ={}).warnings == ()


def test_permission_warning_with_url_password_hides_it(write_config: WriteConfig) -> None:
    path = write_config(f"metadata_url = 'postgresql://u:{SECRET}@h/d'\n", mode=0o640)
    (warning,) = load_settings(path, environ={}).warnings
    assert "chmod 600" in warning
    assert SECRET not in warning


def test_no_warning_without_credentials(write_config: WriteConfig) -> None:
    path = write_config("[connections.p]\nurl = 'postgresql://u@h/d'\n", mode=0o644)
    assert load_settings(path, environ={}).warnings == ()


@pytest.mark.parametrize(
    "text",
    [
        f"[connections.p]\nurl = 'mysql://u:{SECRET}@h/d'\n",
        f"[connections.p]\nurl = 'postgresql://u:{SECRET}@h/d'\npassword_env = '1x'\n",
        f"[connections.p]\nurl = 'postgresql://u:{SECRET}@h/d'\nbogus = 1\n",
        f"[connections.p]\nurl = 'postgresql://u:{SECRET}@h/d'\npassword_env = 'A'\n"
        "password_file = '/f'\n",
        f"metadata_url = ['postgresql://u:{SECRET}@h/d']\n",
    ],
)
def test_no_password_in_messages(write_config: WriteConfig, text: str) -> None:
    err = _error(write_config(text))
    assert SECRET not in err.message
    # The chained ValidationError is printed by tracebacks, so it must hide inputs too.
    assert SECRET not in str(err.__cause__)


def test_example_config_loads(tmp_path: Path) -> None:
    loaded = load_settings(ROOT / "config.example.toml", environ={})
    conns = loaded.settings.connections
    assert len(conns) == 2
    assert any(c.password_env for c in conns.values())
    assert any(c.password_file for c in conns.values())
    assert loaded.settings.console == Settings().console
    assert loaded.settings.runner == Settings().runner
    assert loaded.settings.logging == Settings().logging


def _field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        annotation, path = field.annotation, prefix + name
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= _field_paths(annotation, path + ".")
        elif typing.get_origin(annotation) is dict:
            value = typing.get_args(annotation)[1]
            if isinstance(value, type) and issubclass(value, BaseModel):
                paths |= _field_paths(value, path + ".*.")
            else:
                paths.add(path)
        else:
            paths.add(path)
    return paths


def _documented_paths(text: str) -> set[str]:
    """Keys and tables in the example, commented out or not; connection names become '*'."""
    found: set[str] = set()
    section = ""
    for line in text.splitlines():
        if header := re.match(r"^#?\s*\[([A-Za-z0-9_.-]+)\]\s*$", line):
            section = re.sub(r"^connections\.[^.]+", "connections.*", header[1])
            found.add(section)
        elif key := re.match(r"^#?\s*([a-z_]+)\s*=", line):
            found.add(f"{section}.{key[1]}" if section else key[1])
    return found


def test_example_config_documents_every_field() -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    expected = _field_paths(Settings)
    assert {"console.keys", "connections.*.url", "logging.file", "metadata_url"} <= expected
    missing = expected - _documented_paths(text)
    assert not missing, f"config.example.toml does not mention: {sorted(missing)}"


def test_every_field_has_a_description() -> None:
    def walk(model: type[BaseModel]) -> list[str]:
        undocumented = []
        for name, field in model.model_fields.items():
            if not field.description:
                undocumented.append(f"{model.__name__}.{name}")
            annotation = field.annotation
            args = typing.get_args(annotation) if typing.get_origin(annotation) is dict else ()
            for sub in (annotation, *args):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    undocumented += walk(sub)
        return undocumented

    assert walk(Settings) == []


def test_log_path_expands_home() -> None:
    assert LoggingSettings(file=Path("~/x.log")).log_path() == Path.home() / "x.log"
