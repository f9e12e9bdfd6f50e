"""The settings models: every key of config.toml and every CDC_TUI_* variable is a field here.

Build a `Settings` with `cdc_tui.config.loader.load_settings`; `Settings()` on its own gives the
defaults and deliberately never reads `os.environ`, so tests stay hermetic.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Self

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONNECTION_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
ENV_VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
URL_SCHEMES = ("postgresql", "postgres", "mssql")
# `${provider:[path:]key}`, the syntax of Kafka's ConfigTransformer.
CONFIG_REFERENCE_RE = re.compile(r"^\$\{[A-Za-z0-9_.-]+:[^}]+\}$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# hide_input_in_errors keeps a password-bearing URL out of a chained ValidationError's text.
_MODEL_CONFIG = ConfigDict(extra="forbid", use_attribute_docstrings=True, hide_input_in_errors=True)


def url_scheme(url: str) -> str | None:
    """The lower-cased scheme of `url` (`postgresql` for `postgres://`), or None if it has none."""
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        return None
    scheme = scheme.lower()
    return "postgresql" if scheme == "postgres" else scheme


class ConnectionSettings(BaseModel):
    """A named database connection: `[connections.NAME]` in the file."""

    model_config = _MODEL_CONFIG

    url: str = Field(repr=False)
    """postgresql://, postgres:// or mssql:// URL; keep the password out of it if you can."""

    password_env: str | None = None
    """Name of the environment variable that holds the password."""

    password_file: Path | None = None
    """File whose content (trailing newline stripped) is the password."""

    connect_password: str | None = None
    """For the kafka_connect engine: how Kafka Connect workers read this password, as a config
    provider reference such as "${env:PG_PASSWORD}" or "${file:/etc/kafka/pg.properties:pw}"
    (the reference is posted to Connect; the password never is)."""

    @field_validator("connect_password")
    @classmethod
    def _check_reference(cls, value: str | None) -> str | None:
        if value is not None and not CONFIG_REFERENCE_RE.match(value):
            raise ValueError(
                "connect_password must be a Kafka Connect config provider reference like "
                '"${env:PG_PASSWORD}" or "${file:/path/secrets.properties:key}", not a password'
            )
        return value

    @field_validator("url")
    @classmethod
    def _check_scheme(cls, value: str) -> str:
        if url_scheme(value) not in URL_SCHEMES:
            raise ValueError("the URL must start with postgresql://, postgres:// or mssql://")
        return value

    @field_validator("password_env")
    @classmethod
    def _check_env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_VAR_NAME_RE.match(value):
            raise ValueError("password_env must be an environment variable name like PROD_PW")
        return value

    @model_validator(mode="after")
    def _one_password_source(self) -> Self:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("set password_env or password_file, not both")
        return self


class ConsoleSettings(BaseModel):
    """The Textual console: `[console]`."""

    model_config = _MODEL_CONFIG

    refresh_interval: float = Field(default=2.0, gt=0)
    """Seconds between two polls of pipeline status."""

    read_only: bool = False
    """Hide every action that changes a pipeline (start, stop, resync, drop)."""

    keys: dict[str, str] = Field(default_factory=dict)
    """Key remapping: binding id -> key, e.g. quit = "ctrl+q"."""


class RunnerSettings(BaseModel):
    """The pipeline runner (`cdc-tui run`): `[runner]`."""

    model_config = _MODEL_CONFIG

    full_load_workers: int = Field(default=2, ge=1, le=64)
    """Tables copied in parallel during the full load."""

    full_load_split_rows: int = Field(default=5_000_000, ge=0)
    """A table with more rows than this (catalog estimate) is copied as key ranges that
    workers share, each about this big; 0 copies every table whole (a whole table has its
    primary key built once after the load, which ranges cannot do)."""

    heartbeat_interval: float = Field(default=5.0, gt=0)
    """Seconds between two renewals of the runner's lease."""

    lease_timeout: float = Field(default=30.0, gt=0)
    """Seconds without a heartbeat after which a runner counts as dead."""

    retry_max_backoff: float = Field(default=60.0, gt=0)
    """Upper bound in seconds of the exponential backoff between reconnect attempts."""

    @model_validator(mode="after")
    def _lease_outlives_heartbeat(self) -> Self:
        # A lease shorter than the heartbeat would expire under a healthy runner.
        if self.lease_timeout <= self.heartbeat_interval:
            raise ValueError("lease_timeout must be greater than heartbeat_interval")
        return self


class KafkaConnectSettings(BaseModel):
    """The kafka_connect engine: `[kafka_connect]`."""

    model_config = _MODEL_CONFIG

    secrets_dir: Path | None = None
    """A directory the Connect workers' `file` config provider reads (shared or local): the
    runner writes each pipeline's passwords there (mode 0600) and posts only references."""

    poll_interval: float = Field(default=2.0, gt=0)
    """Seconds between two looks of the runner at the connectors, the slot and the lag."""

    task_restart_limit: int = Field(default=5, ge=0)
    """Automatic restarts of a FAILED task before the pipeline goes to ERROR."""

    task_restart_backoff_max: float = Field(default=60.0, gt=0)
    """Upper bound in seconds of the wait before an automatic task restart."""

    stall_seconds: float = Field(default=120.0, gt=0)
    """A RUNNING source whose slot has not moved for this long while the source wrote WAL
    makes the pipeline degraded."""

    heartbeat_interval_ms: int = Field(default=10_000, ge=1000)
    """Debezium's heartbeat: it writes the pipeline's heartbeat row so the slot moves even when
    the replicated tables are idle."""

    request_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for one Kafka Connect REST answer."""


class LoggingSettings(BaseModel):
    """The log file: `[logging]`."""

    model_config = _MODEL_CONFIG

    level: str = "INFO"
    """DEBUG, INFO, WARNING, ERROR or CRITICAL."""

    file: Path | None = None
    """Log file; unset means cdc-tui.log in the user log directory."""

    @field_validator("level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError("level must be one of " + ", ".join(LOG_LEVELS))
        return value.upper()

    @field_validator("file")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    def log_path(self) -> Path:
        """The log file to write: `file`, or the platform's user log directory."""
        if self.file is not None:
            return self.file
        return Path(platformdirs.user_log_dir("cdc-tui")) / "cdc-tui.log"


class Settings(BaseSettings):
    """All settings; environment variables CDC_TUI_SECTION__KEY override the file."""

    model_config = SettingsConfigDict(
        env_prefix="CDC_TUI_",
        env_nested_delimiter="__",
        # File keys are case-sensitive like TOML; the loader's env source is told otherwise.
        case_sensitive=True,
        extra="forbid",
        use_attribute_docstrings=True,
        hide_input_in_errors=True,
    )

    metadata_url: str | None = Field(default=None, repr=False)
    """SQLAlchemy URL of the metadata DB; unset means a SQLite file in the user data directory."""

    connections: dict[str, ConnectionSettings] = Field(default_factory=dict)
    """Named connections that --source / --target can refer to."""

    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    """The Textual console."""

    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    """The pipeline runner."""

    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    """The log file."""

    kafka_connect: KafkaConnectSettings = Field(default_factory=KafkaConnectSettings)
    """The kafka_connect engine."""

    @field_validator("connections")
    @classmethod
    def _check_names(cls, value: dict[str, ConnectionSettings]) -> dict[str, ConnectionSettings]:
        for name in value:
            if not CONNECTION_NAME_RE.match(name):
                raise ValueError(
                    f"connection name {name!r} must be 1 to 63 letters, digits, '_' or '-', "
                    "starting with a letter"
                )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only constructor arguments: the loader merges file and environment itself."""
        # The loader reads the environment through a mapping it is given, so tests can pass one.
        return (init_settings,)
