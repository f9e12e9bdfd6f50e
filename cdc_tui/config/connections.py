"""Connection references: config names or URLs, passwords kept out of URLs, logs and messages."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from cdc_tui.config.settings import ConnectionSettings, Settings, url_scheme
from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.errors import ConfigError, NotFoundError, UsageError

if TYPE_CHECKING:
    from cdc_tui.pgconn import PgParams

KINDS = ("postgresql", "mssql")

# A URL's userinfo: greedy up to the last '@' before a '/' or space, so odd passwords still go.
_URL_PASSWORD_RE = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*):[^\s/]*@")
# A conninfo or query pair: password=..., quoted or not (PGPASSWORD=... too).
_PAIR_PASSWORD_RE = re.compile(
    r"(?P<head>\b(?:pg)?password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&]+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _UrlParts:
    prefix: str
    user: str | None
    password: str | None
    hosts: str
    query: str | None


def _split(url: str) -> _UrlParts | None:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    # libpq ends the userinfo search at the first '/', so a '@' after it is not userinfo.
    authority, slash, path = rest.partition("/")
    user: str | None = None
    password: str | None = None
    if "@" in authority:
        userinfo, _, authority = authority.rpartition("@")
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
    hosts, qmark, query = (authority + slash + path).partition("?")
    return _UrlParts(scheme + sep, user, password, hosts, query if qmark else None)


def _query_pairs(query: str | None) -> list[str]:
    return [pair for pair in (query or "").split("&") if pair]


def _is_password_pair(pair: str) -> bool:
    return pair.partition("=")[0] == "password"


def url_has_password(url: str) -> bool:
    """True if `url` carries a non-empty password, in its userinfo or as `?password=`."""
    parts = _split(url)
    if parts is None:
        return False
    in_query = any(_is_password_pair(p) and p.partition("=")[2] for p in _query_pairs(parts.query))
    return bool(parts.password) or in_query


def strip_password(url: str) -> str:
    """`url` without its password (userinfo and `password=` query parameter); else unchanged."""
    parts = _split(url)
    if parts is None:
        return url
    userinfo = f"{parts.user}@" if parts.user is not None else ""
    query = "&".join(p for p in _query_pairs(parts.query) if not _is_password_pair(p))
    return parts.prefix + userinfo + parts.hosts + (f"?{query}" if query else "")


def password_from_url(url: str) -> str | None:
    """The (percent-decoded) password `url` carries, or None."""
    parts = _split(url)
    if parts is None:
        return None
    if parts.password:
        return unquote(parts.password)
    for pair in _query_pairs(parts.query):
        if _is_password_pair(pair) and pair.partition("=")[2]:
            return unquote(pair.partition("=")[2])
    return None


def normalize_url(url: str) -> str:
    """Lower-case the scheme and spell `postgres://` as `postgresql://`."""
    scheme = url_scheme(url)
    if scheme is None:
        return url
    return scheme + "://" + url.partition("://")[2]


def redact(text: str) -> str:
    """Replace every password in URLs and `password=` pairs inside `text` with `***`."""
    text = _URL_PASSWORD_RE.sub(r"\g<head>:***@", text)
    return _PAIR_PASSWORD_RE.sub(r"\g<head>***", text)


def resolve_connection(value: str, settings: Settings, *, role: str) -> ConnectionRef:
    """Turn a --source/--target value (config connection name or URL) into a ConnectionRef.

    Raises:
        UsageError: a URL with a password or an unsupported scheme.
        NotFoundError: `value` is neither a URL nor a configured connection name.
    """
    conn = settings.connections.get(value)
    if conn is not None:
        return _ref_from_config(value, conn)
    flag = f"--{role}"
    if "://" not in value:
        known = ", ".join(sorted(settings.connections)) or "none are configured"
        raise NotFoundError(
            f"No connection named {value!r} for {flag}; known connections: {known} "
            "(or pass a postgresql:// URL)."
        )
    kind = url_scheme(value)
    if kind not in KINDS:
        raise UsageError(f"The {flag} URL must start with postgresql://, postgres:// or mssql://.")
    if url_has_password(value):
        raise UsageError(
            f"The {flag} URL contains a password; put it in a [connections.NAME] entry with "
            "password_env or password_file, or use PGPASSWORD/PGPASSFILE."
        )
    return ConnectionRef(url=normalize_url(value), kind=kind)


def _ref_from_config(name: str, conn: ConnectionSettings) -> ConnectionRef:
    kind = url_scheme(conn.url) or "postgresql"
    password_file = str(conn.password_file) if conn.password_file is not None else None
    url = normalize_url(strip_password(conn.url))
    return ConnectionRef(
        url=url, kind=kind, name=name, password_env=conn.password_env, password_file=password_file
    )


def resolve_password(
    ref: ConnectionRef, settings: Settings, environ: Mapping[str, str] | None = None
) -> str | None:
    """The password to send, read now; None lets libpq use PGPASSWORD, PGPASSFILE or ~/.pgpass.

    Raises:
        ConfigError: the named variable is unset, or the password file is unreadable or empty.
    """
    who = f"connection {ref.name!r}" if ref.name is not None else "the connection"
    if ref.password_env is not None:
        env = os.environ if environ is None else environ
        value = env.get(ref.password_env)
        if value is None:
            raise ConfigError(
                f"Environment variable {ref.password_env}, the password_env of {who}, "
                "is not set; export it before running cdc-tui."
            )
        return value
    if ref.password_file is not None:
        return _read_password_file(Path(ref.password_file).expanduser(), who)
    conn = settings.connections.get(ref.name) if ref.name is not None else None
    return password_from_url(conn.url) if conn is not None else None


def _read_password_file(path: Path, who: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else "not readable UTF-8"
        raise ConfigError(
            f"Cannot read password file {path} of {who} ({reason}); fix password_file or the file."
        ) from e
    password = text.rstrip("\r\n")
    if not password:
        raise ConfigError(f"Password file {path} of {who} is empty; write the password into it.")
    return password


def pg_params(
    ref: ConnectionRef,
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    application_name: str = "cdc-tui",
) -> PgParams:
    """Everything `cdc_tui.pgconn.connect` needs, with the password resolved now.

    Raises:
        UsageError: the connection is a SQL Server one.
        ConfigError: the password source is broken (see `resolve_password`).
    """
    if ref.kind != "postgresql":
        raise UsageError(
            f"SQL Server targets are not available yet; use a postgresql:// URL instead of "
            f"{ref.name or ref.url!r}."
        )
    # Imported here because pgconn loads psycopg, which config users must not pay for.
    from cdc_tui.pgconn import PgParams

    return PgParams(
        url=ref.url,
        password=resolve_password(ref, settings, environ),
        application_name=application_name,
    )
