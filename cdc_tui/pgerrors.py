"""Turning psycopg failures into one sentence that says where, as whom, why, and never a secret."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from cdc_tui.domain.findings import Finding, Severity
from cdc_tui.pgconn import PgParams


def _error(rule: str, obj: str, message: str, fix: str) -> Finding:
    return Finding(rule, Severity.ERROR, obj, message, fix)


def describe_endpoint(params: PgParams) -> tuple[str, str]:
    """`host:port` and the user a connection goes to, with libpq's defaults; never a secret."""
    try:
        given: dict[str, Any] = conninfo_to_dict(params.url)
    except psycopg.Error:
        given = {}
    defaults = {
        o.keyword.decode(): o.val.decode() for o in pq.Conninfo.get_defaults() if o.val is not None
    }

    def pick(key: str, fallback: str) -> str:
        return str(given.get(key) or defaults.get(key) or fallback)

    user = pick("user", "?")
    where = f"{pick('host', 'localhost')}:{pick('port', '5432')}/{pick('dbname', user)}"
    return where, user


_FAILED_AT = re.compile(r"^.*? failed: ")
_SEVERITY_PREFIX = re.compile(r"^(FATAL|ERROR):\s*")


def short_reason(exc: BaseException, secrets: Sequence[str | None]) -> str:
    """The useful tail of a psycopg connection error, on one line, with secrets blanked."""
    lines = str(exc).removeprefix("connection failed: ").splitlines()
    text = _SEVERITY_PREFIX.sub("", _FAILED_AT.sub("", lines[0] if lines else ""))
    text = " ".join(text.split()).rstrip(".?!")
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text or type(exc).__name__


def connect_failure_finding(rule: str, side: str, params: PgParams, exc: BaseException) -> Finding:
    """The finding for a failed connection: where, as whom, and psycopg's reason in short."""
    where, user = describe_endpoint(params)
    secrets = [params.password, conninfo_password(params.url)]
    reason = short_reason(exc, secrets)
    message = f"Cannot connect to the {side} at {where} as {user}: {reason}."
    return _error(rule, where, message, _connect_fix(reason))


def catalog_failure_finding(rule: str, side: str, params: PgParams, exc: BaseException) -> Finding:
    """The finding for a check query that failed after connecting (lost server, old version)."""
    where, _user = describe_endpoint(params)
    reason = short_reason(exc, [params.password, conninfo_password(params.url)])
    return _error(
        rule,
        where,
        f"Reading the {side} catalog failed: {reason}.",
        "Check that the server is PostgreSQL 12 or later and still reachable, then run the "
        "check again.",
    )


def conninfo_password(url: str) -> str | None:
    """The password embedded in a URL, if any, so it can be blanked from messages."""
    try:
        value = conninfo_to_dict(url).get("password")
    except psycopg.Error:
        return None
    return None if value is None else str(value)


def _connect_fix(reason: str) -> str:
    lowered = reason.lower()
    if "password" in lowered:
        return (
            "Check the password (the connection's password_env or password_file, PGPASSWORD or "
            "PGPASSFILE) and that the role exists with LOGIN."
        )
    if "does not exist" in lowered:
        return "Check the user and database names in the connection URL."
    if "pg_hba.conf" in lowered:
        return "Add a pg_hba.conf entry for this host, user and database, then reload the server."
    return "Check that the server is running and reachable at this host and port."
