"""The kafka_connect engine under test: a CLI whose pipelines run on the session's Connect."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cdc_tui import kafka_stack as ks
from tests.integration.cli_env import make_cli_env
from tests.integration.runner_support import Cli
from tests.pg import Database

# Fast looks and a small restart budget, so faults show within a test's patience.
KAFKA_TOML = """
[kafka_connect]
secrets_dir = "{secrets}"
poll_interval = 1.0
task_restart_limit = 2
task_restart_backoff_max = 4.0
stall_seconds = 30.0
heartbeat_interval_ms = 2000
"""


def connect_get(url: str, path: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}{path}", timeout=30) as response:
        return json.loads(response.read() or b"null")


def connect_call(url: str, method: str, path: str, body: object = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=60) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:2000]!r}") from None
    return json.loads(raw) if raw else None


def pipeline_connectors(stack: ks.Stack, pipeline: str) -> list[str]:
    names: list[str] = connect_get(stack.connect_url, "/connectors")
    return sorted(n for n in names if n.startswith(f"cdc-tui.{pipeline}."))


@contextmanager
def kafka_cli(
    tmp_path: Path, source: Database, target: Database, stack: ks.Stack, pipeline: str
) -> Iterator[Cli]:
    env = make_cli_env(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", source, target)
    with env.config.open("a") as fh:
        fh.write(KAFKA_TOML.format(secrets=stack.secrets_dir))
    cli = Cli(env, tmp_path / "home")
    try:
        yield cli
    finally:
        cli.run("drop", pipeline, check=False, timeout=300)


@contextmanager
def running_kafka_pipeline(
    tmp_path: Path,
    source: Database,
    target: Database,
    stack: ks.Stack,
    pipeline: str,
    tables: str,
) -> Iterator[Cli]:
    """A kafka_connect pipeline created and started (RUNNING), dropped at the end."""
    with kafka_cli(tmp_path, source, target, stack, pipeline) as cli:
        create_kafka_pipeline(cli, stack, pipeline, tables)
        cli.run("start", pipeline, "--wait", "running", "--timeout", "240", timeout=300)
        yield cli


def create_kafka_pipeline(cli: Cli, stack: ks.Stack, pipeline: str, tables: str) -> None:
    cli.run("pipeline", "create", pipeline, "--source", "src", "--target", "tgt",
            "--tables", tables, "--engine", "kafka_connect",
            "--connect-url", stack.connect_url)  # fmt: skip
