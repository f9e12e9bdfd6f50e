"""The pure parts of the local Kafka stack: poms, stamp, properties, ports, ids, the CLI's exits."""

from __future__ import annotations

import base64
import json
import os
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cdc_tui import kafka_stack as ks

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


@pytest.fixture
def layout(tmp_path: Path) -> ks.Layout:
    return ks.Layout(tmp_path / "kafka home")


def _fill(layout: ks.Layout) -> None:
    """Make the cache look fetched: a jar in every directory fetch fills."""
    for d in layout.fetched_dirs():
        d.mkdir(parents=True, exist_ok=True)
        (d / "x.jar").write_bytes(b"")


def test_poms_pin_every_version_and_write_into_the_cache(layout: ks.Layout) -> None:
    poms = ks.render_poms(layout)
    assert set(poms) == {"pom.xml", "broker/pom.xml", "connect/pom.xml", "plugins/pom.xml"}
    trees = {rel: ET.fromstring(text) for rel, text in poms.items()}  # all well-formed

    modules = [m.text for m in trees["pom.xml"].findall("m:modules/m:module", POM_NS)]
    assert modules == ["broker", "connect", "plugins"]

    def deps(rel: str) -> dict[str, str]:
        return {
            f"{d.findtext('m:groupId', namespaces=POM_NS)}:"
            f"{d.findtext('m:artifactId', namespaces=POM_NS)}": d.findtext(
                "m:version", namespaces=POM_NS
            )
            or ""
            for d in trees[rel].findall("m:dependencies/m:dependency", POM_NS)
        }

    logging_deps = {
        "org.apache.logging.log4j:log4j-api": "2.24.3",
        "org.apache.logging.log4j:log4j-core": "2.24.3",
        "org.apache.logging.log4j:log4j-slf4j-impl": "2.24.3",
        "org.slf4j:slf4j-api": "1.7.36",
    }
    assert deps("broker/pom.xml") == {"org.apache.kafka:kafka_2.13": "4.1.1", **logging_deps}
    assert deps("connect/pom.xml") == {"org.apache.kafka:connect-runtime": "4.1.1", **logging_deps}

    for rel, output in (
        ("broker/pom.xml", layout.broker_lib),
        ("connect/pom.xml", layout.connect_lib),
        ("plugins/pom.xml", layout.plugins),
    ):
        plugin = trees[rel].find("m:build/m:plugins/m:plugin", POM_NS)
        assert plugin is not None
        assert plugin.findtext("m:version", namespaces=POM_NS) == "3.8.1"
        assert plugin.findtext(".//m:outputDirectory", namespaces=POM_NS) == str(output)

    items = trees["plugins/pom.xml"].findall(".//m:artifactItem", POM_NS)
    assert [
        (
            i.findtext("m:artifactId", namespaces=POM_NS),
            i.findtext("m:version", namespaces=POM_NS),
            i.findtext("m:type", namespaces=POM_NS),
            i.findtext("m:classifier", namespaces=POM_NS),
        )
        for i in items
    ] == [
        ("debezium-connector-postgres", "3.4.3.Final", "tar.gz", "plugin"),
        ("debezium-connector-jdbc", "3.4.3.Final", "tar.gz", "plugin"),
    ]


def test_stamp_matches_only_the_same_versions_with_the_jars_present(layout: ks.Layout) -> None:
    assert not ks.stamp_matches(layout)
    _fill(layout)
    assert not ks.stamp_matches(layout), "jars without a stamp"
    layout.stamp.write_text(json.dumps(ks.versions()))
    assert ks.stamp_matches(layout)
    layout.stamp.write_text(json.dumps({**ks.versions(), "debezium": "3.4.2.Final"}))
    assert not ks.stamp_matches(layout), "a stamp of other versions"
    layout.stamp.write_text(json.dumps(ks.versions()))
    (layout.jdbc_sink_plugin() / "x.jar").unlink()
    assert not ks.stamp_matches(layout), "a fetched directory lost its jars"
    layout.stamp.write_text("{not json")
    assert not ks.stamp_matches(layout)


def test_fetch_with_a_matching_stamp_runs_no_mvn(
    layout: ks.Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(layout)
    layout.stamp.write_text(json.dumps(ks.versions()))

    def no_mvn(*args: object, **kwargs: object) -> None:
        raise AssertionError("fetch ran a command although the stamp matched")

    monkeypatch.setattr(ks.subprocess, "run", no_mvn)
    monkeypatch.setenv("PATH", "")  # not even mvn or java need to be installed
    assert ks.fetch(layout.home) == layout.home


def test_fetch_without_mvn_says_what_to_install(
    layout: ks.Layout, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ks.KafkaStackUnavailable, match="install Apache Maven"):
        ks.fetch(layout.home)
    monkeypatch.setenv("CDC_TUI_KAFKA_HOME", str(layout.home))
    assert ks.main(["fetch"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert "mvn was not found" in out.err


def test_home_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CDC_TUI_KAFKA_HOME", str(tmp_path / "k"))
    assert ks.default_home() == tmp_path / "k"
    assert ks.default_state_dir() == tmp_path / "k" / "run"
    monkeypatch.delenv("CDC_TUI_KAFKA_HOME")
    assert ks.default_home() == Path.home() / ".cache" / "cdc-tui" / "kafka-stack"


def test_properties_render_booleans_and_escape_backslashes() -> None:
    text = ks.render_properties({"a.b": True, "n": 1, "path": r"C:\x"})
    assert text.splitlines()[1:] == ["a.b=true", "n=1", r"path=C:\\x"]


def test_broker_is_a_single_loopback_kraft_node(tmp_path: Path) -> None:
    props = ks.broker_properties(ks.Ports(9092, 9093, 8083), tmp_path / "kraft")
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["log.dirs"] == str(tmp_path / "kraft")
    factors = {k: v for k, v in props.items() if k.endswith(("replication.factor", "min.isr"))}
    assert factors and set(factors.values()) == {1}
    assert props["group.initial.rebalance.delay.ms"] == 0


def test_connect_worker_takes_secrets_by_reference_only_from_allowed_places(
    tmp_path: Path,
) -> None:
    secrets = tmp_path / "secrets"
    props = ks.connect_properties(ks.Ports(9092, 9093, 8083), tmp_path / "plugins", secrets, "g")
    assert props["bootstrap.servers"] == "127.0.0.1:9092"
    assert props["listeners"] == "http://127.0.0.1:8083"
    assert props["plugin.path"] == str(tmp_path / "plugins")
    assert props["plugin.discovery"] == "service_load"
    assert props["connector.client.config.override.policy"] == "All"
    assert props["offset.flush.interval.ms"] == 1000
    assert props["config.providers"] == "env,file,dir"
    package = "org.apache.kafka.common.config.provider"
    assert props["config.providers.env.class"] == f"{package}.EnvVarConfigProvider"
    assert props["config.providers.file.class"] == f"{package}.FileConfigProvider"
    assert props["config.providers.dir.class"] == f"{package}.DirectoryConfigProvider"
    assert props["config.providers.env.param.allowlist.pattern"] == "CDC_TUI_.*"
    assert props["config.providers.file.param.allowed.paths"] == str(secrets)
    assert props["config.providers.dir.param.allowed.paths"] == str(secrets)
    internal = [k for k in props if k.endswith("storage.replication.factor")]
    assert len(internal) == 3 and all(props[k] == 1 for k in internal)


def test_log4j2_configs_are_well_formed(tmp_path: Path) -> None:
    ET.fromstring(ks.log4j2_xml(tmp_path / "a&b.log", pattern="%m%n", quiet=("x$y",)))
    ET.fromstring(ks.TOOLS_LOG4J2_XML)


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = ks.free_ports(3)
    assert len(set(ports)) == 3
    for port in ports:
        assert ks.port_is_free(port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert not ks.port_is_free(s.getsockname()[1])


def test_cluster_ids_look_like_kafkas() -> None:
    for _ in range(200):
        cid = ks.new_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_a_state_dir_without_a_stack_is_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not ks.status(tmp_path).running
    assert ks.status(tmp_path).word == "stopped"
    assert ks.stop(tmp_path) is False
    assert ks.main(["status", "--dir", str(tmp_path)]) == 1
    assert "status: stopped" in capsys.readouterr().out
    assert ks.main(["stop", "--dir", str(tmp_path)]) == 0


def test_a_recorded_pid_of_another_process_is_not_taken_for_the_stack(tmp_path: Path) -> None:
    """A pid reused by an unrelated process (here: this one) is neither reported nor killed."""
    stack = ks.Stack(
        state_dir=tmp_path,
        home=tmp_path,
        connect_url="http://127.0.0.1:1",
        bootstrap="127.0.0.1:2",
        broker_port=2,
        controller_port=3,
        connect_port=1,
        broker_pid=os.getpid(),
        connect_pid=os.getpid(),
        cluster_id=ks.new_cluster_id(),
    )
    (tmp_path / ks.STATE_FILE).write_text(json.dumps(stack.to_json()))
    assert ks.read_state(tmp_path) == stack
    status = ks.status(tmp_path)
    assert not status.broker_alive and not status.connect_alive
    assert ks.stop(tmp_path) is False  # and this test process is still here to assert it
