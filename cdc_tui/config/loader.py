"""Load the settings: one TOML file, then CDC_TUI_* environment variables, which win key by key."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import platformdirs
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsError

from cdc_tui.config.connections import url_has_password
from cdc_tui.config.settings import Settings
from cdc_tui.errors import ConfigError

ENV_PREFIX = "CDC_TUI_"
CONFIG_ENV = "CDC_TUI_CONFIG"
# These CDC_TUI_* variables are read elsewhere (or are secrets), so they are not settings.
IGNORED_ENV = frozenset(
    {CONFIG_ENV, "CDC_TUI_PG_BINDIR", "CDC_TUI_TEST_MSSQL_URL", "CDC_TUI_KAFKA_HOME"}
)
IGNORED_ENV_PREFIXES = ("CDC_TUI_TEST_", "CDC_TUI_SECRET_")
EXAMPLE_HINT = "config.example.toml lists every key"
_TOML_POSITION_RE = re.compile(r"^(?P<what>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")


@dataclass(frozen=True)
class LoadedSettings:
    """The validated settings, the file they came from (None: defaults) and warnings to show."""

    settings: Settings
    path: Path | None
    warnings: tuple[str, ...] = ()


def default_config_path() -> Path:
    """Where the config file lives when neither --config nor CDC_TUI_CONFIG names one."""
    return Path(platformdirs.user_config_dir("cdc-tui")) / "config.toml"


def load_settings(
    config_path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> LoadedSettings:
    """Read the config file and the CDC_TUI_* environment into validated `Settings`.

    Raises:
        ConfigError: the file is missing, unreadable or invalid, or a variable is unknown or bad.
    """
    env = os.environ if environ is None else environ
    path = choose_config_path(config_path, env)
    file_data = read_toml(path) if path is not None else {}
    env_data = _env_data(env, file_data)
    try:
        settings = Settings(**_deep_merge(file_data, env_data))
    except ValidationError as e:
        raise _translate(e, path, file_data, env_data) from e
    warning = _permission_warning(path, file_data) if path is not None else None
    return LoadedSettings(settings, path, (warning,) if warning else ())


def choose_config_path(config_path: Path | None, environ: Mapping[str, str]) -> Path | None:
    """--config, else CDC_TUI_CONFIG, else the user config file if it exists, else None."""
    if config_path is not None:
        return _existing(Path(config_path).expanduser(), "check the --config path")
    named = environ.get(CONFIG_ENV)
    if named:
        return _existing(Path(named).expanduser(), f"fix or unset {CONFIG_ENV}")
    default = default_config_path()
    return default if default.is_file() else None


def _existing(path: Path, fix: str) -> Path:
    if not path.exists():
        raise ConfigError(f"Config file {path} does not exist; {fix}.")
    return path


def read_toml(path: Path) -> dict[str, Any]:
    """Parse `path` as TOML, translating every failure into a ConfigError naming the file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"Cannot read config file {path}: {e.strerror or e}.") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"Config file {path} is not UTF-8 text; save it as UTF-8.") from e
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        match = _TOML_POSITION_RE.match(str(e))
        if match is None:
            raise ConfigError(f"Config file {path} is not valid TOML: {e}.") from e
        raise ConfigError(
            f"Config file {path} is not valid TOML at line {match['line']}, "
            f"column {match['col']}: {match['what']}."
        ) from e


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        # Variable names are case-insensitive even though file keys are not.
        super().__init__(settings_cls, case_sensitive=False)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._environ.items()}


def is_ignored_env(name: str) -> bool:
    """True for CDC_TUI_* variables that are not settings (CDC_TUI_CONFIG, test knobs, secrets)."""
    upper = name.upper()
    return upper in IGNORED_ENV or upper.startswith(IGNORED_ENV_PREFIXES)


def _env_data(environ: Mapping[str, str], file_data: Mapping[str, Any]) -> dict[str, Any]:
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or is_ignored_env(name):
            continue
        if not _is_settings_path(Settings, upper[len(ENV_PREFIX) :].lower().split("__")):
            raise ConfigError(
                f"Unknown environment variable {name}; unset it or fix its spelling "
                f"({EXAMPLE_HINT}, CDC_TUI_SECTION__KEY overrides [section] key)."
            )
    try:
        data = _MappingEnvSource(Settings, environ)()
    except SettingsError as e:
        raise ConfigError(
            f"A CDC_TUI_* variable holds invalid JSON ({e}); set one key per variable instead."
        ) from e
    return _match_connection_case(data, file_data)


def _is_settings_path(model: type[BaseModel], path: list[str]) -> bool:
    """Whether `path` (lower-cased variable name parts) reaches a field of `model`."""
    if not path:
        return True
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    annotation, rest = field.annotation, path[1:]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _is_settings_path(annotation, rest)
    if get_origin(annotation) is dict:
        if not rest:
            return True
        value_type = get_args(annotation)[1]
        if isinstance(value_type, type) and issubclass(value_type, BaseModel):
            return rest[0] != "" and _is_settings_path(value_type, rest[1:])
        return len(rest) == 1 and rest[0] != ""
    return not rest


def _match_connection_case(env: dict[str, Any], file_data: Mapping[str, Any]) -> dict[str, Any]:
    # Variable names arrive lower-cased; CDC_TUI_CONNECTIONS__PROD__URL finds [connections.Prod].
    env_conns, file_conns = env.get("connections"), file_data.get("connections")
    if not isinstance(env_conns, dict) or not isinstance(file_conns, dict):
        return env
    by_lower = {str(name).lower(): name for name in file_conns}
    env["connections"] = {by_lower.get(name, name): value for name, value in env_conns.items()}
    return env


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _translate(
    error: ValidationError,
    path: Path | None,
    file_data: Mapping[str, Any],
    env_data: Mapping[str, Any],
) -> ConfigError:
    # Typos first: a misspelt key often explains the other errors too.
    detail = sorted(error.errors(), key=lambda d: d["type"] != "extra_forbidden")[0]
    key = ".".join(str(part) for part in detail["loc"])
    where = _origin(detail, path, file_data, env_data)
    if detail["type"] == "extra_forbidden":
        return ConfigError(
            f"Unknown key '{key}' in {where}; remove it or fix its spelling ({EXAMPLE_HINT})."
        )
    if detail["type"] == "missing":
        return ConfigError(f"Missing key '{key}' in {where}; add it ({EXAMPLE_HINT}).")
    expected = detail["msg"].removeprefix("Value error, ").rstrip(".")
    return ConfigError(f"Invalid value for '{key}' in {where}: {expected}.")


def _origin(
    detail: ErrorDetails,
    path: Path | None,
    file_data: Mapping[str, Any],
    env_data: Mapping[str, Any],
) -> str:
    """Which file or variable supplied the value at the error's location."""
    node: Any = env_data
    walked: list[str] = []
    for part in (str(p) for p in detail["loc"]):
        if not isinstance(node, dict) or part not in node:
            break
        node, walked = node[part], [*walked, part]
    if not walked or (isinstance(node, dict) and len(walked) < len(detail["loc"])):
        return str(path) if path is not None else "the settings"
    variable = ENV_PREFIX + "__".join(walked).upper()
    if not isinstance(node, dict):
        return f"environment variable {variable}"
    if path is not None and _has_path(file_data, walked):
        return f"{path} and the {variable}* environment variables"
    return f"the {variable}* environment variables"


def _has_path(data: Mapping[str, Any], parts: list[str]) -> bool:
    node: Any = data
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _permission_warning(path: Path, data: Mapping[str, Any]) -> str | None:
    if os.name == "nt" or not _holds_credentials(data):
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & 0o044 == 0:
        return None
    return (
        f"Config file {path} is readable by other users and holds credentials; "
        f"run chmod 600 {path}."
    )


def _holds_credentials(data: Mapping[str, Any]) -> bool:
    metadata_url = data.get("metadata_url")
    if isinstance(metadata_url, str) and url_has_password(metadata_url):
        return True
    connections = data.get("connections")
    if not isinstance(connections, dict):
        return False
    for conn in connections.values():
        if not isinstance(conn, dict):
            continue
        url = conn.get("url")
        if "password_file" in conn or (isinstance(url, str) and url_has_password(url)):
            return True
    return False
