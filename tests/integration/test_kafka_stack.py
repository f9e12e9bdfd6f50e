"""The local Kafka stack for the kafka_connect engine: fetch, start, plugins, status, stop.

One stack (a KRaft broker and a Connect worker) runs for the module in a temp state directory.
The jars come from the shared cache (`CDC_TUI_KAFKA_HOME` or ~/.cache/cdc-tui/kafka-stack), so
only the first run on a machine downloads. Under CI=true a missing java or mvn fails the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc_tui import kafka_stack as ks

pytestmark = pytest.mark.integration

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka-stack"
PROBE_ENV = "CDC_TUI_KAFKA_STACK_PROBE_PORT"


def _require_tools() -> None:
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        message = f"{' and '.join(missing)} not installed: the Kafka stack needs Java 17 and Maven."
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _alive(pid: int | None) -> bool:
    """True when `pid` exists and is not a zombie."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _validate(url: str, config: dict[str, str]) -> dict[str, object]:
    request = urllib.request.Request(
        f"{url}/connector-plugins/PostgresConnector/config/validate",
        data=json.dumps(config).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=60) as response:
        result: dict[str, object] = json.loads(response.read())
    return result


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ks.Stack]:
    _require_tools()
    state_dir = tmp_path_factory.mktemp("kafka-stack")
    with pytest.MonkeyPatch.context() as mp:
        # The worker inherits this at start; the config-provider test reads it back as ${env:...}.
        mp.setenv(PROBE_ENV, "5999")
        mp.setenv("NOT_ALLOWED_PROBE_PORT", "5998")
        ks.fetch()
        started = ks.start(state_dir, timeout=240)
    try:
        yield started
    finally:
        ks.stop(state_dir)


def test_start_lists_both_debezium_plugins(stack: ks.Stack) -> None:
    plugins = {p["class"]: p for p in ks.connector_plugins(stack.connect_url)}
    source = plugins[ks.POSTGRES_CONNECTOR_CLASS]
    sink = plugins[ks.JDBC_SINK_CONNECTOR_CLASS]
    assert (source["type"], source["version"]) == ("source", ks.DEBEZIUM_VERSION)
    assert (sink["type"], sink["version"]) == ("sink", ks.DEBEZIUM_VERSION)
    assert stack.connect_url == f"http://127.0.0.1:{stack.connect_port}"
    assert stack.bootstrap == f"127.0.0.1:{stack.broker_port}"


def test_sink_plugin_dir_holds_the_postgresql_and_sqlserver_drivers(stack: ks.Stack) -> None:
    sink_dir = ks.Layout(stack.home).jdbc_sink_plugin()
    jars = {p.name for p in sink_dir.glob("*.jar")}
    assert any(name.startswith("postgresql-") for name in jars), jars
    assert any(name.startswith("mssql-jdbc-") for name in jars), jars
    # Kafka's own jars must never sit in a plugin dir (they are loaded parent-first).
    assert not any(name.startswith(("kafka-clients", "connect-api")) for name in jars), jars


def test_start_again_is_idempotent(stack: ks.Stack) -> None:
    again = ks.start(stack.state_dir)
    assert again == stack
    proc = _cli("start", "--dir", str(stack.state_dir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == stack.connect_url
    assert "already running" in proc.stderr


def test_status_reports_running(stack: ks.Stack) -> None:
    assert ks.status(stack.state_dir).running
    proc = _cli("status", "--dir", str(stack.state_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "status: running" in proc.stdout
    assert stack.connect_url in proc.stdout
    assert stack.bootstrap in proc.stdout


def test_config_providers_resolve_secrets_from_env_and_the_secrets_dir(stack: ks.Stack) -> None:
    """Connect resolves ${env:...}, ${file:...} and ${dir:...}, within their allowlists only."""
    stack.secrets_dir.joinpath("pg.properties").write_text("port=5997\n")
    stack.secrets_dir.joinpath("port").write_text("5996")
    outside = stack.state_dir / "outside.properties"
    outside.write_text("port=5995\n")
    base = {
        "connector.class": ks.POSTGRES_CONNECTOR_CLASS,
        "name": "probe",
        "database.hostname": "127.0.0.1",
        "database.user": "nobody",
        "database.password": f"${{file:{stack.secrets_dir}/pg.properties:port}}",
        "database.dbname": "nothing",
        "topic.prefix": "probe",
        "plugin.name": "pgoutput",
    }

    def errors_for(port: str) -> str:
        result = _validate(stack.connect_url, {**base, "database.port": port})
        configs = result["configs"]
        assert isinstance(configs, list)
        return " ".join(e for c in configs for e in c["value"]["errors"])

    # Nothing listens on these ports: the connection error shows the port the value resolved to.
    assert "127.0.0.1:5999" in errors_for(f"${{env:{PROBE_ENV}}}")
    assert "127.0.0.1:5997" in errors_for(f"${{file:{stack.secrets_dir}/pg.properties:port}}")
    assert "127.0.0.1:5996" in errors_for(f"${{dir:{stack.secrets_dir}:port}}")
    assert "integer is expected" in errors_for("${env:NOT_ALLOWED_PROBE_PORT}")
    assert "integer is expected" in errors_for(f"${{file:{outside}:port}}")


def test_stop_leaves_no_process_and_status_fails(stack: ks.Stack) -> None:
    assert _alive(stack.broker_pid) and _alive(stack.connect_pid)
    proc = _cli("stop", "--dir", str(stack.state_dir))
    assert proc.returncode == 0, proc.stderr
    # The CLI's stop is not the JVMs' parent, so collect them here (the test process is).
    for pid in (stack.broker_pid, stack.connect_pid):
        assert pid is not None
        with contextlib.suppress(ChildProcessError):  # already collected
            os.waitpid(pid, 0)
    assert not _alive(stack.broker_pid)
    assert not _alive(stack.connect_pid)
    assert not (stack.state_dir / "broker.pid").exists()
    assert not (stack.state_dir / "connect.pid").exists()
    proc = _cli("status", "--dir", str(stack.state_dir))
    assert proc.returncode == 1
    assert "status: stopped" in proc.stdout
    assert not ks.stop(stack.state_dir), "a second stop found something running"


def test_a_process_dying_during_start_stops_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that cannot start fails `start` with its log named, and the broker is stopped."""
    _require_tools()
    # A maximum heap below the initial one: the Connect JVM refuses to start at all.
    monkeypatch.setattr(ks, "CONNECT_HEAP", "1m")
    with pytest.raises(ks.KafkaStackError, match=r"Connect worker exited during start-up") as err:
        ks.start(tmp_path, timeout=120)
    assert str(tmp_path / "logs" / "connect.log") in str(err.value)
    state = ks.read_state(tmp_path)
    assert state is not None
    assert state.broker_pid is None and state.connect_pid is None
    assert not ks.status(tmp_path).broker_alive
    leftovers = [
        pid
        for pid in filter(str.isdigit, os.listdir("/proc"))
        if _alive(int(pid)) and str(tmp_path) in _cmdline(int(pid))
    ]
    assert leftovers == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
