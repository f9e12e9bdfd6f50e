"""How the connectors reach the source and target: host, port, database, user, and a password
reference that Kafka Connect's config providers resolve on the workers.

The reference, in order: the connection's `connect_password`; a properties file the runner
writes in `[kafka_connect] secrets_dir` (mode 0600, one per pipeline); `${env:<password_env>}`
for a connection whose password comes from the environment (the workers must export it too).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from cdc_tui.config.settings import Settings
from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.engines.kafka_connect.configs import SSL_MODES, Endpoint
from cdc_tui.errors import ConfigError
from cdc_tui.pgconn import PgParams

DEFAULT_PORT = 5432


def secrets_file(secrets_dir: Path, pipeline: str) -> Path:
    return secrets_dir / f"cdc-tui-{pipeline}.properties"


def endpoint(
    ref: ConnectionRef,
    params: PgParams,
    settings: Settings,
    *,
    role: str,
    pipeline: str,
    write: bool = True,
) -> Endpoint:
    """The connector's view of one connection; raises ConfigError when Connect cannot use it."""
    who = f"connection {ref.name!r}" if ref.name else f"the {role} connection"
    info = {k: str(v) for k, v in conninfo_to_dict(params.url).items() if v is not None}
    host = info.get("host") or "localhost"
    if "," in host or host.startswith("/"):
        raise ConfigError(
            f"The kafka_connect engine needs one TCP host:port for {who} (Connect workers do not "
            f"share this machine's sockets); give its URL a host name instead of {host!r}."
        )
    sslmode = info.get("sslmode")
    if sslmode is not None and sslmode not in SSL_MODES:
        raise ConfigError(
            f"Unknown sslmode {sslmode!r} in {who}; use one of {', '.join(SSL_MODES)}."
        )
    user = info.get("user")
    return Endpoint(
        host=host,
        port=int(info.get("port") or DEFAULT_PORT),
        dbname=info.get("dbname") or user or "postgres",
        user=user,
        password=password_reference(
            ref, params.password, settings, role=role, pipeline=pipeline, write=write
        ),
        sslmode=sslmode,
    )


def password_reference(
    ref: ConnectionRef,
    password: str | None,
    settings: Settings,
    *,
    role: str,
    pipeline: str,
    write: bool = True,
) -> str | None:
    """What to post as the connector's password: a config provider reference, or None when
    the connection has no password cdc-tui knows of (`write=False` only names the file)."""
    configured = settings.connections.get(ref.name) if ref.name else None
    if configured is not None and configured.connect_password:
        return configured.connect_password
    if password is None:
        return None
    secrets_dir = settings.kafka_connect.secrets_dir
    if secrets_dir is not None:
        path = secrets_file(secrets_dir.expanduser(), pipeline)
        if write:
            _write_property(path, f"{role}.password", password)
        return f"${{file:{path}:{role}.password}}"
    if ref.password_env:
        return f"${{env:{ref.password_env}}}"
    who = f"connection {ref.name!r}" if ref.name else f"the {role} connection"
    raise ConfigError(
        f"Kafka Connect cannot be given the password of {who} without a reference: set "
        "connect_password (a config provider reference) on it, or [kafka_connect] secrets_dir."
    )


def remove_secrets(settings: Settings, pipeline: str) -> bool:
    """Delete the pipeline's secrets file; True when there was one."""
    secrets_dir = settings.kafka_connect.secrets_dir
    if secrets_dir is None:
        return False
    path = secrets_file(secrets_dir.expanduser(), pipeline)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _write_property(path: Path, key: str, value: str) -> None:
    """Set `key` in a Java properties file, atomically and readable by its owner only."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lines = _read_properties(path)
        lines[key] = escape_property(value)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cdc-tui-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write("".join(f"{k}={v}\n" for k, v in sorted(lines.items())))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(
            f"Cannot write the Connect secrets file {path} ({exc.strerror}); fix "
            "[kafka_connect] secrets_dir or its permissions."
        ) from exc


def _read_properties(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key] = value
    return found


def escape_property(value: str) -> str:
    """A value as java.util.Properties reads it back exactly: ASCII with \\uXXXX escapes."""
    out = []
    for i, ch in enumerate(value):
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\t\n\r\f":
            out.append({"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}[ch])
        elif ch == " " and i == 0:
            out.append("\\ ")
        elif ch in "=:#!":
            out.append("\\" + ch)
        elif code < 0x20 or code > 0x7E:
            encoded = ch.encode("utf-16-be")
            out.extend(
                f"\\u{encoded[j] << 8 | encoded[j + 1]:04x}" for j in range(0, len(encoded), 2)
            )
        else:
            out.append(ch)
    return "".join(out)
