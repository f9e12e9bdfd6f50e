"""Launching a detached runner: no secret in its argv or its environment.

The launching process resolves the passwords and hands them over on the child's stdin (a pipe
only the two processes see); the child's environment is the parent's minus every variable that
held one, so `/proc/PID/cmdline` and `/proc/PID/environ` stay clean.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from cdc_tui.services.context import AppContext
from cdc_tui.store.records import PipelineRecord

log = logging.getLogger(__name__)

SECRETS_FLAG = "--secrets-stdin"
ALWAYS_STRIPPED = ("PGPASSWORD", "MSSQL_PASSWORD", "CDC_TUI_METADATA_URL")


def secrets_payload(ctx: AppContext, pipeline: PipelineRecord) -> dict[str, object]:
    """The passwords the runner needs, resolved now, plus the metadata DB URL."""
    passwords: dict[str, str | None] = {}
    for ref in (pipeline.source, pipeline.target):
        if ref.kind == "mssql":
            passwords[ref.url] = ctx.mssql_params(ref).password
        else:
            passwords[ref.url] = ctx.pg_params(ref).password
    return {"passwords": passwords, "metadata_url": ctx.settings.metadata_url}


def child_environment(environ: Mapping[str, str], pipeline: PipelineRecord) -> dict[str, str]:
    """The parent's environment without the variables that carry secrets."""
    stripped = set(ALWAYS_STRIPPED)
    stripped.update(r.password_env for r in (pipeline.source, pipeline.target) if r.password_env)
    stripped.update(k for k in environ if k.startswith("CDC_TUI_SECRET_"))
    return {k: v for k, v in environ.items() if k not in stripped}


def launch_runner(ctx: AppContext, pipeline: PipelineRecord, log_file: Path) -> int:
    """Start `cdc-tui run NAME` in its own session, detached from this terminal; return its pid."""
    argv = [sys.executable, "-m", "cdc_tui", "run", pipeline.name, SECRETS_FLAG]
    if ctx.loaded.path is not None:
        argv += ["--config", str(ctx.loaded.path)]
    payload = json.dumps(secrets_payload(ctx, pipeline))
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with log_file.open("ab") as err:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=child_environment(ctx.environ, pipeline),
            start_new_session=True,
            close_fds=True,
        )
    assert proc.stdin is not None
    with proc.stdin:
        proc.stdin.write(payload.encode())
    log.info("launched runner for %s as pid %d", pipeline.name, proc.pid)
    return proc.pid


def read_secrets(stream: IO[str], ctx: AppContext) -> None:
    """In the runner: take the passwords from stdin into the context, then close stdin."""
    with stream:
        data = json.loads(stream.read() or "{}")
    ctx.password_overrides.update(data.get("passwords") or {})
    if data.get("metadata_url"):
        ctx.settings.metadata_url = data["metadata_url"]
