"""A local Kafka stack for the `kafka_connect` engine: one KRaft broker and one Connect worker.

`fetch` puts the jars of Kafka, Kafka Connect and the Debezium PostgreSQL source and JDBC sink
plugins into a cache directory with Maven; `start` runs a single-node KRaft broker and a
distributed Connect worker on loopback, detached, with their state (data, logs, pids, ports) in
one state directory; `stop` and `status` act on that directory. The test suite and
`cdc-tui demo --engine kafka_connect` use it; `scripts/kafka-stack` is its command line.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
SCALA_BINARY_VERSION = "2.13"
DEBEZIUM_VERSION = "3.4.3.Final"
LOG4J2_VERSION = "2.24.3"
SLF4J_VERSION = "1.7.36"
DEPENDENCY_PLUGIN_VERSION = "3.8.1"
# Bump when the cache layout or the poms change meaning, so an old cache is fetched again.
LAYOUT_VERSION = 1

POSTGRES_CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"
JDBC_SINK_CONNECTOR_CLASS = "io.debezium.connector.jdbc.JdbcSinkConnector"
REQUIRED_PLUGINS = (POSTGRES_CONNECTOR_CLASS, JDBC_SINK_CONNECTOR_CLASS)
POSTGRES_PLUGIN_DIR = "debezium-connector-postgres"
JDBC_SINK_PLUGIN_DIR = "debezium-connector-jdbc"
# The sink reaches PostgreSQL and SQL Server targets through these drivers in its own plugin dir.
SINK_DRIVER_PREFIXES = ("postgresql-", "mssql-jdbc-")

BROKER_MAIN = "kafka.Kafka"
CONNECT_MAIN = "org.apache.kafka.connect.cli.ConnectDistributed"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"
BROKER_HEAP = "512m"
CONNECT_HEAP = "768m"
# Serial GC and C1 only: start-up 4.5-5.5 s instead of 7.3 s and less RSS on 2 cores (measured);
# CDC_TUI_KAFKA_JVM_OPTS comes last, so `-XX:TieredStopAtLevel=4` there restores the full JIT.
JVM_COMMON_OPTS = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
CONFIG_PROVIDER_PACKAGE = "org.apache.kafka.common.config.provider"
ENV_ALLOWLIST_PATTERN = "CDC_TUI_.*"
DEFAULT_START_TIMEOUT = 180.0
DEFAULT_STOP_TIMEOUT = 30.0
STAMP_FILE = "fetch-stamp.json"
STATE_FILE = "state.json"


class KafkaStackUnavailable(RuntimeError):
    """A prerequisite (java, mvn) is missing: the message says what to install."""


class KafkaStackError(RuntimeError):
    """Fetching, starting or stopping the stack failed: the message names the log to read."""


# ------------------------------------------------------------------------------------------------
# Locations


def default_home() -> Path:
    """The cache directory: `CDC_TUI_KAFKA_HOME`, or `~/.cache/cdc-tui/kafka-stack`."""
    explicit = os.environ.get("CDC_TUI_KAFKA_HOME")
    if explicit:
        return Path(explicit).expanduser().resolve()
    return Path.home() / ".cache" / "cdc-tui" / "kafka-stack"


def default_state_dir(home: Path | None = None) -> Path:
    """The state directory `start` uses when none is given: `<home>/run`."""
    return (home or default_home()) / "run"


@dataclass(frozen=True)
class Layout:
    """Where `fetch` puts things inside the cache directory."""

    home: Path

    @property
    def maven_dir(self) -> Path:
        return self.home / "maven"

    @property
    def broker_lib(self) -> Path:
        return self.home / "lib" / "broker"

    @property
    def connect_lib(self) -> Path:
        return self.home / "lib" / "connect"

    @property
    def plugins(self) -> Path:
        return self.home / "plugins"

    @property
    def stamp(self) -> Path:
        return self.home / STAMP_FILE

    @property
    def fetch_log(self) -> Path:
        return self.home / "fetch.log"

    def postgres_plugin(self) -> Path:
        return self.plugins / POSTGRES_PLUGIN_DIR

    def jdbc_sink_plugin(self) -> Path:
        return self.plugins / JDBC_SINK_PLUGIN_DIR

    def fetched_dirs(self) -> tuple[Path, ...]:
        return (self.broker_lib, self.connect_lib, self.postgres_plugin(), self.jdbc_sink_plugin())


# ------------------------------------------------------------------------------------------------
# Tools


def find_java() -> str:
    """The `java` to run: `$JAVA_HOME/bin/java`, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise KafkaStackUnavailable(
            "java was not found: install a Java 17+ runtime (e.g. apt-get install "
            "openjdk-17-jre-headless) or set JAVA_HOME."
        )
    return found


def find_mvn() -> str:
    found = shutil.which("mvn")
    if not found:
        raise KafkaStackUnavailable(
            "mvn was not found: install Apache Maven (e.g. apt-get install maven) to fetch the "
            "Kafka and Debezium jars from Maven Central."
        )
    return found


# ------------------------------------------------------------------------------------------------
# fetch: poms, stamp, mvn


def versions() -> dict[str, object]:
    """What a fetched cache was made from; a different value means fetching again."""
    return {
        "layout": LAYOUT_VERSION,
        "kafka": KAFKA_VERSION,
        "scala": SCALA_BINARY_VERSION,
        "debezium": DEBEZIUM_VERSION,
        "log4j2": LOG4J2_VERSION,
        "slf4j": SLF4J_VERSION,
        "maven-dependency-plugin": DEPENDENCY_PLUGIN_VERSION,
    }


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _dependency(group: str, artifact: str, version: str) -> str:
    return (
        f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version></dependency>"
    )


def _pom(artifact_id: str, body: str, *, packaging: str = "pom") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by cdc_tui.kafka_stack: edits are overwritten by the next fetch. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cdc-tui.kafka-stack</groupId>
  <artifactId>{artifact_id}</artifactId>
  <version>1</version>
  <packaging>{packaging}</packaging>
  <properties><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
{body}
</project>
"""


def _copy_dependencies_pom(artifact_id: str, dependencies: Sequence[str], output: Path) -> str:
    """A pom whose `validate` phase copies its runtime dependencies into `output`."""
    deps = "\n".join(dependencies)
    body = f"""  <dependencies>
{deps}
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId>
    <artifactId>maven-dependency-plugin</artifactId>
    <version>{DEPENDENCY_PLUGIN_VERSION}</version>
    <executions><execution>
      <id>libs</id><phase>validate</phase><goals><goal>copy-dependencies</goal></goals>
      <configuration>
        <includeScope>runtime</includeScope>
        <outputDirectory>{_xml_text(str(output))}</outputDirectory>
      </configuration>
    </execution></executions>
  </plugin></plugins></build>"""
    return _pom(artifact_id, body)


def _logging_dependencies() -> list[str]:
    # Kafka's poms carry no SLF4J binding (its tarball adds one): without these a JVM logs nothing.
    # slf4j-api is pinned to 1.7 so that no 2.x silently disables the 1.x binding.
    return [
        _dependency("org.apache.logging.log4j", "log4j-api", LOG4J2_VERSION),
        _dependency("org.apache.logging.log4j", "log4j-core", LOG4J2_VERSION),
        _dependency("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J2_VERSION),
        _dependency("org.slf4j", "slf4j-api", SLF4J_VERSION),
    ]


def render_poms(layout: Layout) -> dict[str, str]:
    """The poms of one Maven reactor, by path relative to `layout.maven_dir`."""
    broker = _copy_dependencies_pom(
        "broker",
        [
            _dependency("org.apache.kafka", f"kafka_{SCALA_BINARY_VERSION}", KAFKA_VERSION),
            *_logging_dependencies(),
        ],
        layout.broker_lib,
    )
    connect = _copy_dependencies_pom(
        "connect",
        [
            _dependency("org.apache.kafka", "connect-runtime", KAFKA_VERSION),
            *_logging_dependencies(),
        ],
        layout.connect_lib,
    )
    # Debezium's own plugin archives, not copy-dependencies: debezium-connector-jdbc 3.4.3.Final
    # depends on debezium-sink 3.4.3.Final, which is missing from Maven Central.
    items = "\n".join(
        f"""        <artifactItem>
          <groupId>io.debezium</groupId><artifactId>{name}</artifactId>
          <version>{DEBEZIUM_VERSION}</version><type>tar.gz</type><classifier>plugin</classifier>
        </artifactItem>"""
        for name in (POSTGRES_PLUGIN_DIR, JDBC_SINK_PLUGIN_DIR)
    )
    plugins = _pom(
        "plugins",
        f"""  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId>
    <artifactId>maven-dependency-plugin</artifactId>
    <version>{DEPENDENCY_PLUGIN_VERSION}</version>
    <executions><execution>
      <id>plugins</id><phase>validate</phase><goals><goal>unpack</goal></goals>
      <configuration>
        <outputDirectory>{_xml_text(str(layout.plugins))}</outputDirectory>
        <overWriteReleases>true</overWriteReleases>
        <artifactItems>
{items}
        </artifactItems>
      </configuration>
    </execution></executions>
  </plugin></plugins></build>""",
    )
    modules = "\n".join(f"    <module>{m}</module>" for m in ("broker", "connect", "plugins"))
    reactor = _pom("reactor", f"  <modules>\n{modules}\n  </modules>")
    return {
        "pom.xml": reactor,
        "broker/pom.xml": broker,
        "connect/pom.xml": connect,
        "plugins/pom.xml": plugins,
    }


def stamp_matches(layout: Layout) -> bool:
    """True when the cache was fetched for exactly these versions and its jars are still there."""
    try:
        recorded = json.loads(layout.stamp.read_text())
    except (OSError, ValueError):
        return False
    if recorded != versions():
        return False
    return all(d.is_dir() and any(d.glob("*.jar")) for d in layout.fetched_dirs())


def _write_stamp(layout: Layout) -> None:
    tmp = layout.stamp.with_suffix(".tmp")
    tmp.write_text(json.dumps(versions(), indent=2, sort_keys=True) + "\n")
    tmp.replace(layout.stamp)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock file, so two fetches (or two starts of one stack) do not interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def fetch(home: Path | None = None, *, force: bool = False) -> Path:
    """Download the jars into `home` (default `default_home()`) unless already there; return it.

    Maven keeps its own repository at its default place (`~/.m2/repository`), which is the cache
    that makes a later fetch on the same machine need no network.
    """
    # Absolute, because it ends up in the worker's plugin.path and the generated poms.
    layout = Layout((home or default_home()).expanduser().resolve())
    if not force and stamp_matches(layout):
        log.debug("kafka stack jars already fetched in %s", layout.home)
        return layout.home
    with _locked(layout.home / ".fetch.lock"):
        if not force and stamp_matches(layout):
            return layout.home  # another process fetched while we waited for the lock
        mvn = find_mvn()
        find_java()
        layout.stamp.unlink(missing_ok=True)
        # Stale jars of another version next to the new ones would mean duplicate classes.
        for d in (layout.maven_dir, layout.home / "lib", layout.plugins):
            shutil.rmtree(d, ignore_errors=True)
        for rel, text in render_poms(layout).items():
            path = layout.maven_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        log.info(
            "Fetching Kafka %s and Debezium %s into %s with mvn (the first run downloads ~110 MB)",
            KAFKA_VERSION,
            DEBEZIUM_VERSION,
            layout.home,
        )
        started = time.monotonic()
        argv = [mvn, "-B", "-ntp", "-T", "3", "-f", str(layout.maven_dir / "pom.xml"), "validate"]
        with layout.fetch_log.open("w") as out:
            proc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False
            )
        if proc.returncode != 0:
            errors = [
                line
                for line in _tail(layout.fetch_log, 60).splitlines()
                if line.startswith("[ERROR]")
            ]
            first = errors[0] if errors else "(no [ERROR] line)"
            raise KafkaStackError(
                f"mvn could not fetch the Kafka stack jars (exit {proc.returncode}): {first}; "
                f"read {layout.fetch_log}."
            )
        missing = [d for d in layout.fetched_dirs() if not any(d.glob("*.jar"))]
        sink = layout.jdbc_sink_plugin()
        missing += [
            sink / f"{prefix}*.jar"
            for prefix in SINK_DRIVER_PREFIXES
            if not any(sink.glob(f"{prefix}*.jar"))
        ]
        if missing:
            raise KafkaStackError(
                f"mvn finished but {', '.join(map(str, missing))} holds no jar; "
                f"read {layout.fetch_log}."
            )
        _write_stamp(layout)
        log.info("Fetched the Kafka stack jars in %.0f s", time.monotonic() - started)
    return layout.home


# ------------------------------------------------------------------------------------------------
# Configuration files


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            # All bound at once, so the kernel cannot hand out the same port twice.
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Like the JVM's server sockets, so a port in TIME_WAIT from the last run counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def new_cluster_id() -> str:
    """A KRaft cluster id as `kafka-storage random-uuid` makes: 22 url-safe base64 characters."""
    while True:
        # An id starting with '-' would be read as an option by the storage tool.
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def render_properties(props: Mapping[str, object]) -> str:
    """A Java .properties file; of the characters our values can hold only `\\` needs escaping."""
    lines = ["# Generated by cdc_tui.kafka_stack at start: edits are overwritten."]
    for key, value in props.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        lines.append(f"{key}={text.replace(chr(92), chr(92) * 2)}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Ports:
    broker: int
    controller: int
    connect: int


def broker_properties(ports: Ports, data_dir: Path) -> dict[str, object]:
    """A single-node combined broker+controller on loopback with a static quorum."""
    return {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.voters": f"1@127.0.0.1:{ports.controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{ports.broker},CONTROLLER://127.0.0.1:{ports.controller}",
        "advertised.listeners": (
            f"PLAINTEXT://127.0.0.1:{ports.broker},CONTROLLER://127.0.0.1:{ports.controller}"
        ),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": 1,
        "default.replication.factor": 1,
        # One node: every internal topic must have replication factor 1 or its creation blocks.
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "transaction.state.log.num.partitions": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "num.network.threads": 2,
        "num.io.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
        # Connect's worker group joins at once instead of after the default 3 s.
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": True,
        "log.retention.hours": 168,
        "log.segment.bytes": 64 * 1024 * 1024,
    }


def connect_properties(
    ports: Ports, plugin_path: Path, secrets_dir: Path, group_id: str
) -> dict[str, object]:
    """A distributed worker on loopback whose connector configs can take secrets by reference."""
    return {
        "bootstrap.servers": f"127.0.0.1:{ports.broker}",
        "group.id": group_id,
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        # The Debezium JDBC sink needs the schemas in each record.
        "key.converter.schemas.enable": True,
        "value.converter.schemas.enable": True,
        "offset.storage.topic": f"{group_id}-offsets",
        "offset.storage.replication.factor": 1,
        "offset.storage.partitions": 1,
        "config.storage.topic": f"{group_id}-configs",
        "config.storage.replication.factor": 1,
        "status.storage.topic": f"{group_id}-status",
        "status.storage.replication.factor": 1,
        "status.storage.partitions": 1,
        # Source offsets (and so the slot's acknowledged LSN) follow within a second.
        "offset.flush.interval.ms": 1000,
        "listeners": f"http://127.0.0.1:{ports.connect}",
        "rest.advertised.host.name": "127.0.0.1",
        "rest.advertised.port": ports.connect,
        "plugin.path": str(plugin_path),
        "plugin.discovery": "service_load",
        # One worker: do not hold a lost worker's assignments for 5 minutes after a restart.
        "scheduled.rebalance.max.delay.ms": 0,
        "connector.client.config.override.policy": "All",
        # Passwords stay out of posted configs: ${env:CDC_TUI_X}, ${file:PATH:key}, ${dir:DIR:file}.
        "config.providers": "env,file,dir",
        "config.providers.env.class": f"{CONFIG_PROVIDER_PACKAGE}.EnvVarConfigProvider",
        # Only CDC_TUI_* variables, so a posted config cannot read the worker's other variables.
        "config.providers.env.param.allowlist.pattern": ENV_ALLOWLIST_PATTERN,
        "config.providers.file.class": f"{CONFIG_PROVIDER_PACKAGE}.FileConfigProvider",
        # Only the secrets dir: the worker runs as whoever started it and would read any file.
        "config.providers.file.param.allowed.paths": str(secrets_dir),
        "config.providers.dir.class": f"{CONFIG_PROVIDER_PACKAGE}.DirectoryConfigProvider",
        "config.providers.dir.param.allowed.paths": str(secrets_dir),
    }


def log4j2_xml(log_file: Path, *, pattern: str, quiet: Sequence[str] = ()) -> str:
    """A log4j2 config: INFO to `log_file`, rolled at 20 MB, 3 kept (XML, as YAML needs a jar)."""
    loggers = "\n".join(f'    <Logger name="{_xml_text(n)}" level="WARN"/>' for n in quiet)
    name = _xml_text(str(log_file))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="File" fileName="{name}" filePattern="{name}.%i">
      <PatternLayout pattern="{_xml_text(pattern)}"/>
      <Policies><SizeBasedTriggeringPolicy size="20 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
{loggers}
    <Logger name="org.reflections" level="ERROR"/>
    <Root level="INFO"><AppenderRef ref="File"/></Root>
  </Loggers>
</Configuration>
"""


TOOLS_LOG4J2_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="STDERR" target="SYSTEM_ERR"><PatternLayout pattern="%p %m%n"/></Console>
  </Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="STDERR"/></Root></Loggers>
</Configuration>
"""


# ------------------------------------------------------------------------------------------------
# Processes


@dataclass(frozen=True)
class Stack:
    """One running stack: where Connect's REST API and the broker answer, and its processes."""

    state_dir: Path
    home: Path
    connect_url: str
    bootstrap: str
    broker_port: int
    controller_port: int
    connect_port: int
    broker_pid: int | None
    connect_pid: int | None
    cluster_id: str

    @property
    def secrets_dir(self) -> Path:
        """The only directory the worker's `file` and `dir` config providers may read."""
        return self.state_dir / "secrets"

    @property
    def broker_log(self) -> Path:
        return self.state_dir / "logs" / "broker.log"

    @property
    def connect_log(self) -> Path:
        return self.state_dir / "logs" / "connect.log"

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir)
        data["home"] = str(self.home)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Stack:
        def num(key: str) -> int:
            return int(str(data[key]))

        def pid(key: str) -> int | None:
            value = data.get(key)
            return int(str(value)) if value is not None else None

        return cls(
            state_dir=Path(str(data["state_dir"])),
            home=Path(str(data["home"])),
            connect_url=str(data["connect_url"]),
            bootstrap=str(data["bootstrap"]),
            broker_port=num("broker_port"),
            controller_port=num("controller_port"),
            connect_port=num("connect_port"),
            broker_pid=pid("broker_pid"),
            connect_pid=pid("connect_pid"),
            cluster_id=str(data["cluster_id"]),
        )


def read_state(state_dir: Path) -> Stack | None:
    try:
        return Stack.from_json(json.loads((state_dir / STATE_FILE).read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring the unreadable %s: %s", state_dir / STATE_FILE, exc)
        return None


def _write_state(stack: Stack) -> None:
    path = stack.state_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stack.to_json(), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    for name, pid in (("broker", stack.broker_pid), ("connect", stack.connect_pid)):
        pid_file = stack.state_dir / f"{name}.pid"
        if pid is None:
            pid_file.unlink(missing_ok=True)
        else:
            pid_file.write_text(f"{pid}\n")


def _process_is(pid: int | None, main_class: str, state_dir: Path) -> bool:
    """True when `pid` is alive (not a zombie) and is this state dir's `main_class` JVM.

    Checking the command line guards against a recorded pid that was reused by another process.
    """
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    return main_class in cmdline and any(str(state_dir) in arg for arg in cmdline)


def _reap(pid: int) -> None:
    """Collect the exit status of a child we started, so it leaves no zombie behind."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _terminate(
    pid: int | None, main_class: str, state_dir: Path, timeout: float, name: str
) -> None:
    """SIGTERM (the JVMs shut down cleanly on it), then SIGKILL once `timeout` has passed."""
    if not _process_is(pid, main_class, state_dir):
        return
    assert pid is not None
    log.info("Stopping %s (pid %d)", name, pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _process_is(pid, main_class, state_dir):
            return
        time.sleep(0.2)
    log.warning("%s (pid %d) did not stop within %.0f s; killing it", name, pid, timeout)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        _reap(pid)
        if not _process_is(pid, main_class, state_dir):
            return
        time.sleep(0.1)


def _http_get_json(url: str, timeout: float = 3.0) -> object:
    import urllib.request  # here, not at the top: it costs the importers ~20 ms otherwise

    # No proxy: the worker is on loopback, and an http_proxy in the environment must not get it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


def connector_plugins(connect_url: str) -> list[dict[str, object]]:
    """`GET /connector-plugins` of a Connect worker."""
    data = _http_get_json(f"{connect_url}/connector-plugins")
    if not isinstance(data, list):
        raise KafkaStackError(f"{connect_url}/connector-plugins answered {data!r}, not a list.")
    return [p for p in data if isinstance(p, dict)]


def _plugins_ready(connect_url: str) -> bool:
    """True when the worker is healthy and lists both Debezium connector classes."""
    try:
        _http_get_json(f"{connect_url}/health")
        classes = {p.get("class") for p in connector_plugins(connect_url)}
    except (OSError, ValueError):  # URLError and HTTPError are OSErrors
        return False
    return all(c in classes for c in REQUIRED_PLUGINS)


def _answers(stack: Stack) -> bool:
    try:
        _http_get_json(f"{stack.connect_url}/", timeout=3.0)
    except (OSError, ValueError):  # URLError and HTTPError are OSErrors
        return False
    return True


def _is_running(stack: Stack) -> bool:
    return (
        _process_is(stack.broker_pid, BROKER_MAIN, stack.state_dir)
        and _process_is(stack.connect_pid, CONNECT_MAIN, stack.state_dir)
        and _answers(stack)
    )


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _java_argv(
    java: str, heap: str, classpath: Path, log4j2: Path, main: str, *args: str
) -> list[str]:
    return [
        java,
        "-Xms128m",
        f"-Xmx{heap}",
        *JVM_COMMON_OPTS,
        *shlex.split(os.environ.get("CDC_TUI_KAFKA_JVM_OPTS", "")),
        f"-Dlog4j2.configurationFile={log4j2}",
        "-cp",
        f"{classpath}/*",
        main,
        *args,
    ]


def _spawn(argv: list[str], out_file: Path, cwd: Path) -> int:
    """Start a JVM detached (own session, no terminal), so it outlives the process starting it."""
    with out_file.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc.pid


def _choose_ports(previous: Stack | None) -> Ports:
    """The previous run's ports when still free, so the URL stays the same; else new ones."""
    if previous is not None:
        old = (previous.broker_port, previous.controller_port, previous.connect_port)
        if all(port_is_free(p) for p in old):
            return Ports(*old)
    return Ports(*free_ports(3))


def _format_storage(java: str, layout: Layout, state_dir: Path, cluster_id: str) -> None:
    """Format the KRaft log dir once; a formatted dir keeps its cluster id across restarts."""
    argv = _java_argv(
        java,
        "256m",
        layout.broker_lib,
        state_dir / "config" / "log4j2-tools.xml",
        STORAGE_TOOL_MAIN,
        "format",
        "--cluster-id",
        cluster_id,
        "--config",
        str(state_dir / "config" / "server.properties"),
        "--ignore-formatted",
    )
    proc = subprocess.run(
        argv, cwd=state_dir, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise KafkaStackError(
            f"Formatting the KRaft storage in {state_dir / 'kraft'} failed: "
            f"{detail[-1] if detail else 'exit ' + str(proc.returncode)}."
        )


def _write_configs(stack: Stack, layout: Layout) -> None:
    ports = Ports(stack.broker_port, stack.controller_port, stack.connect_port)
    config = stack.state_dir / "config"
    config.mkdir(parents=True, exist_ok=True)
    (stack.state_dir / "logs").mkdir(exist_ok=True)
    stack.secrets_dir.mkdir(mode=0o700, exist_ok=True)
    (config / "server.properties").write_text(
        render_properties(broker_properties(ports, stack.state_dir / "kraft"))
    )
    (config / "connect-distributed.properties").write_text(
        render_properties(
            connect_properties(ports, layout.plugins, stack.secrets_dir, "cdc-tui-connect")
        )
    )
    (config / "log4j2-broker.xml").write_text(
        log4j2_xml(
            stack.broker_log,
            pattern="[%d] %p %m (%c)%n",
            quiet=("kafka.request.logger", "kafka.network.RequestChannel$"),
        )
    )
    (config / "log4j2-connect.xml").write_text(
        log4j2_xml(
            stack.connect_log,
            pattern="[%d] %p %X{connector.context}%m (%c:%L)%n",
            quiet=(
                "org.apache.kafka.clients.producer.ProducerConfig",
                "org.apache.kafka.clients.consumer.ConsumerConfig",
                "org.apache.kafka.clients.admin.AdminClientConfig",
            ),
        )
    )
    (config / "log4j2-tools.xml").write_text(TOOLS_LOG4J2_XML)


def _died(name: str, pid: int, log_file: Path, out_file: Path) -> KafkaStackError:
    _reap(pid)
    last = _tail(out_file, 5).strip() or _tail(log_file, 3).strip()
    hint = f" (last output: {last.splitlines()[-1]})" if last else ""
    return KafkaStackError(
        f"The Kafka {name} exited during start-up{hint}; read {log_file} and {out_file}."
    )


def start(
    state_dir: Path | None = None,
    *,
    home: Path | None = None,
    timeout: float = DEFAULT_START_TIMEOUT,
) -> Stack:
    """Start the stack of `state_dir` (default `<home>/run`) or return it when already running.

    Returns once Connect's REST API lists the Debezium PostgreSQL source and JDBC sink plugins.
    A process that dies, or a timeout, stops whatever was started and raises KafkaStackError.
    """
    home = fetch(home)
    layout = Layout(home)
    state_dir = (state_dir or default_state_dir(home)).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    java = find_java()
    with _locked(state_dir / ".lock"):
        previous = read_state(state_dir)
        if previous is not None and _is_running(previous):
            log.info("The Kafka stack in %s is already running", state_dir)
            return previous
        if previous is not None:
            # Half a stack (one JVM gone) is stopped whole and started again.
            _stop_processes(previous, DEFAULT_STOP_TIMEOUT)
        formatted = (state_dir / "kraft" / "meta.properties").exists()
        cluster_id = previous.cluster_id if previous is not None and formatted else new_cluster_id()
        ports = _choose_ports(previous)
        stack = Stack(
            state_dir=state_dir,
            home=home,
            connect_url=f"http://127.0.0.1:{ports.connect}",
            bootstrap=f"127.0.0.1:{ports.broker}",
            broker_port=ports.broker,
            controller_port=ports.controller,
            connect_port=ports.connect,
            broker_pid=None,
            connect_pid=None,
            cluster_id=cluster_id,
        )
        _write_configs(stack, layout)
        _write_state(stack)
        started = time.monotonic()
        try:
            if not formatted:
                log.info("Formatting the KRaft storage (cluster id %s)", cluster_id)
                _format_storage(java, layout, state_dir, cluster_id)
            return _launch(stack, layout, java, started, timeout)
        except BaseException:
            # Nothing half-running: whatever got started goes, including on Ctrl-C.
            current = read_state(state_dir) or stack
            _stop_processes(current, DEFAULT_STOP_TIMEOUT)
            raise


def _launch(stack: Stack, layout: Layout, java: str, started: float, timeout: float) -> Stack:
    state_dir = stack.state_dir
    logs = state_dir / "logs"
    config = state_dir / "config"
    broker_out, connect_out = logs / "broker.out", logs / "connect.out"
    broker_pid = _spawn(
        _java_argv(
            java,
            BROKER_HEAP,
            layout.broker_lib,
            config / "log4j2-broker.xml",
            BROKER_MAIN,
            str(config / "server.properties"),
        ),
        broker_out,
        state_dir,
    )
    stack = _replace(stack, broker_pid=broker_pid)
    _write_state(stack)
    log.info("Started the Kafka broker (pid %d) on %s", broker_pid, stack.bootstrap)
    # Connect scans its plugins before it needs the broker, so both JVMs start together.
    connect_pid = _spawn(
        _java_argv(
            java,
            CONNECT_HEAP,
            layout.connect_lib,
            config / "log4j2-connect.xml",
            CONNECT_MAIN,
            str(config / "connect-distributed.properties"),
        ),
        connect_out,
        state_dir,
    )
    stack = _replace(stack, connect_pid=connect_pid)
    _write_state(stack)
    log.info("Started Kafka Connect (pid %d) on %s", connect_pid, stack.connect_url)
    deadline = started + timeout
    broker_up = connect_up = False
    next_note = time.monotonic() + 10
    while True:
        if not _process_is(broker_pid, BROKER_MAIN, state_dir):
            raise _died("broker", broker_pid, stack.broker_log, broker_out)
        if not _process_is(connect_pid, CONNECT_MAIN, state_dir):
            raise _died("Connect worker", connect_pid, stack.connect_log, connect_out)
        elapsed = time.monotonic() - started
        if not broker_up and _port_open(stack.broker_port):
            broker_up = True
            log.info("The broker listens on %s (%.1f s)", stack.bootstrap, elapsed)
        if not connect_up and _port_open(stack.connect_port):
            connect_up = True
            log.info("Kafka Connect's REST API answers (%.1f s)", elapsed)
        if connect_up and _plugins_ready(stack.connect_url):
            log.info("Kafka Connect lists the Debezium plugins (%.1f s)", elapsed)
            return stack
        if time.monotonic() >= deadline:
            raise KafkaStackError(
                f"Kafka Connect did not list the Debezium plugins within {timeout:.0f} s; "
                f"read {stack.connect_log}."
            )
        if time.monotonic() >= next_note:
            waiting = "Connect's plugin scan" if not connect_up else "Connect to become ready"
            log.info("Still waiting for %s (%.0f s)", waiting, elapsed)
            next_note += 10
        time.sleep(0.5)


def _replace(stack: Stack, **changes: object) -> Stack:
    data = stack.to_json()
    data.update(changes)
    return Stack.from_json(data)


def _stop_processes(stack: Stack, timeout: float) -> None:
    # Connect first: it commits offsets and leaves its group while the broker is still there.
    _terminate(stack.connect_pid, CONNECT_MAIN, stack.state_dir, timeout, "Kafka Connect")
    _terminate(stack.broker_pid, BROKER_MAIN, stack.state_dir, timeout, "the Kafka broker")
    _write_state(_replace(stack, broker_pid=None, connect_pid=None))


def stop(state_dir: Path | None = None, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> bool:
    """Stop the stack of `state_dir`; True when something was running. Idempotent."""
    state_dir = (state_dir or default_state_dir()).resolve()
    stack = read_state(state_dir)
    if stack is None:
        return False
    with _locked(state_dir / ".lock"):
        stack = read_state(state_dir) or stack
        was_running = _process_is(stack.broker_pid, BROKER_MAIN, state_dir) or _process_is(
            stack.connect_pid, CONNECT_MAIN, state_dir
        )
        _stop_processes(stack, timeout)
    return was_running


@dataclass(frozen=True)
class StackStatus:
    """What `status` reports about one state directory."""

    state_dir: Path
    running: bool
    broker_alive: bool
    connect_alive: bool
    connect_answers: bool
    stack: Stack | None

    @property
    def word(self) -> str:
        if self.running:
            return "running"
        if self.broker_alive or self.connect_alive:
            return "degraded"
        return "stopped"


def status(state_dir: Path | None = None) -> StackStatus:
    """Whether the stack of `state_dir` runs: both JVMs alive and Connect's REST API answering."""
    state_dir = (state_dir or default_state_dir()).resolve()
    stack = read_state(state_dir)
    if stack is None:
        return StackStatus(state_dir, False, False, False, False, None)
    broker = _process_is(stack.broker_pid, BROKER_MAIN, state_dir)
    connect = _process_is(stack.connect_pid, CONNECT_MAIN, state_dir)
    answers = connect and _answers(stack)
    return StackStatus(state_dir, broker and answers, broker, connect, answers, stack)


# ------------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    import argparse  # only the command line needs it

    parser = argparse.ArgumentParser(
        prog="kafka-stack",
        description=(
            "A local Kafka KRaft broker and Kafka Connect worker with the Debezium PostgreSQL "
            "source and JDBC sink plugins. Jars are cached in $CDC_TUI_KAFKA_HOME "
            "(default ~/.cache/cdc-tui/kafka-stack)."
        ),
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    fetch_p = sub.add_parser("fetch", help="download the jars with mvn (no-op when already done)")
    fetch_p.add_argument("--force", action="store_true", help="fetch again even when cached")
    start_p = sub.add_parser("start", help="start the stack; prints the Connect REST URL last")
    start_p.add_argument("--dir", type=Path, help="state directory (default <cache>/run)")
    start_p.add_argument(
        "--timeout", type=float, default=DEFAULT_START_TIMEOUT, help="seconds to wait (180)"
    )
    for verb, text in (("stop", "stop the stack"), ("status", "running (exit 0) or not (1)")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("--dir", type=Path, help="state directory (default <cache>/run)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("kafka-stack: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        if args.verb == "fetch":
            print(fetch(force=args.force))
        elif args.verb == "start":
            stack = start(args.dir, timeout=args.timeout)
            print(f"bootstrap: {stack.bootstrap}")
            print(stack.connect_url)
        elif args.verb == "stop":
            stop(args.dir)
            print("stopped")
        else:
            st = status(args.dir)
            print(f"status: {st.word}")
            if st.stack is not None:
                print(f"connect_url: {st.stack.connect_url}")
                print(f"bootstrap: {st.stack.bootstrap}")
            print(f"state_dir: {st.state_dir}")
            return 0 if st.running else 1
    except KafkaStackUnavailable as exc:
        print(f"kafka-stack: {exc}", file=sys.stderr)
        return 2
    except KafkaStackError as exc:
        print(f"kafka-stack: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
