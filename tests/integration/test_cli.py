"""The CLI contract of DESIGN §7/§8 against real clusters and both metadata backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc_tui.cli import main
from cdc_tui.localpg import free_port
from tests.integration.cli_env import CliEnv, make_cli_env
from tests.pg import Database

STATUS_KEYS = {
    "name", "engine", "mode", "status", "full_load_status", "cdc_status", "health",
    "updated_at", "full_load", "slot", "cdc", "connectors", "runner", "last_error",
}  # fmt: skip
SLOT_KEYS = {
    "name", "active", "wal_status", "restart_lsn", "confirmed_flush_lsn", "retained_bytes",
    "lag_bytes",
}  # fmt: skip


@pytest.fixture
def cli(
    tmp_path: Path,
    metadata_url: str,
    source_db: Database,
    target_db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CliEnv]:
    env = make_cli_env(tmp_path, metadata_url, source_db, target_db)
    for key, value in env.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CDC_TUI_METADATA_URL", raising=False)
    yield env


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def create(capsys: pytest.CaptureFixture[str], name: str = "orders", *extra: str) -> None:
    code, out, err = run(
        capsys, "pipeline", "create", name, "--source", "src", "--target", "tgt",
        "--tables", 'shop.customers,shop."Order Items"', *extra,
    )  # fmt: skip
    assert code == 0, err
    assert f"Pipeline {name} created" in out


def test_create_list_status_drop(cli: CliEnv, capsys: pytest.CaptureFixture[str]) -> None:
    create(capsys)
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["orders"]
    assert rows[0]["status"] == "STOPPED"
    assert rows[0]["full_load_status"] == "NOT_STARTED"
    assert rows[0]["cdc_status"] == "NOT_STARTED"
    assert rows[0]["health"] == "healthy"

    code, out, _ = run(capsys, "status", "orders", "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= STATUS_KEYS
    assert set(doc["slot"]) >= SLOT_KEYS
    assert doc["slot"]["name"] == "cdc_tui_orders"
    assert doc["slot"]["exists"] is False
    assert doc["slot"]["error"] is None
    assert doc["connectors"] == []
    assert doc["runner"] is None
    assert doc["updated_at"].endswith("Z")
    assert [t["table"] for t in doc["full_load"]["tables"]] == [
        "shop.customers",
        'shop."Order Items"',
    ]
    assert {t["state"] for t in doc["full_load"]["tables"]} == {"PENDING"}
    assert set(doc["cdc"]) == {"applied_lsn", "lag_seconds", "changes_applied", "last_applied_at"}

    code, out, _ = run(capsys, "status", "orders")
    assert code == 0
    assert "not created yet" in out

    code, out, _ = run(capsys, "drop", "orders")
    assert code == 0
    code, out, _ = run(capsys, "list", "--json")
    assert json.loads(out) == []


def test_cdc_only_pipeline_skips_full_load(cli: CliEnv, capsys: pytest.CaptureFixture[str]) -> None:
    create(capsys, "live", "--mode", "cdc_only")
    code, out, _ = run(capsys, "status", "live", "--json")
    assert code == 0
    assert json.loads(out)["full_load_status"] == "SKIPPED"


def test_check_passes_for_a_correct_setup(cli: CliEnv, capsys: pytest.CaptureFixture[str]) -> None:
    create(capsys)
    code, out, err = run(capsys, "check", "orders", "--json")
    doc = json.loads(out)
    errors = [f for f in doc["findings"] if f["severity"] == "error"]
    assert errors == [], errors
    assert code == 0, err
    assert doc["ok"] is True
    rules = {f["rule"] for f in doc["findings"]}
    assert {"source.connect", "source.wal_level", "target.connect"} <= rules
    for finding in doc["findings"]:
        assert set(finding) == {"rule", "severity", "object", "message", "fix"}


def test_check_fails_with_exit_1_on_a_missing_table(
    cli: CliEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "pipeline", "create", "broken", "--source", "src", "--target", "tgt",
        "--tables", "shop.customers,shop.nope",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "check", "broken")
    assert code == 1
    assert "shop.nope" in out
    assert "found problems" in err


def test_plan_prints_ddl(cli: CliEnv, capsys: pytest.CaptureFixture[str]) -> None:
    create(capsys)
    code, out, err = run(capsys, "plan", "orders")
    assert code == 0, err
    assert "CREATE TABLE" in out
    assert '"Order Items"' in out
    code, out, _ = run(capsys, "plan", "orders", "--json")
    doc = json.loads(out)
    assert [t["source"] for t in doc["tables"]] == ["shop.customers", 'shop."Order Items"']


def test_duplicate_and_unknown_names(cli: CliEnv, capsys: pytest.CaptureFixture[str]) -> None:
    create(capsys)
    code, _, err = run(
        capsys, "pipeline", "create", "orders", "--source", "src", "--target", "tgt",
        "--tables", "shop.customers",
    )  # fmt: skip
    assert code == 2
    assert "'orders' already exists" in err
    code, _, err = run(capsys, "status", "nope")
    assert code == 2
    assert "'nope' does not exist" in err
    assert err.count("\n") == 1  # one sentence on one line


def test_usage_errors_exit_2(cli: CliEnv, capsys: pytest.CaptureFixture[str]) -> None:
    url_with_password = cli.source.url("cdc_reader").replace("cdc_reader@", "cdc_reader:pw@")
    code, _, err = run(
        capsys, "pipeline", "create", "p", "--source", url_with_password, "--target", "tgt",
        "--tables", "shop.customers",
    )  # fmt: skip
    assert code == 2
    assert "contains a password" in err
    assert ":pw@" not in err
    code, _, err = run(
        capsys, "pipeline", "create", "Bad-Name", "--source", "src", "--target", "tgt",
        "--tables", "shop.customers",
    )  # fmt: skip
    assert code == 2
    assert "'Bad-Name' is not valid" in err
    code, _, err = run(
        capsys, "pipeline", "create", "p", "--source", "nosuch", "--target", "tgt",
        "--tables", "shop.customers",
    )  # fmt: skip
    assert code == 2
    assert "nosuch" in err
    with pytest.raises(SystemExit) as exc:
        main(["status"])
    assert exc.value.code == 2


def test_unknown_config_key_exits_2(cli: CliEnv, capsys: pytest.CaptureFixture[str]) -> None:
    cli.config.write_text(cli.config.read_text() + "\n[console]\nrefresh = 3\n")
    code, _, err = run(capsys, "list")
    assert code == 2
    assert "console.refresh" in err


@pytest.mark.parametrize("verb", ["start", "stop", "resync", "validate", "run", "drop"])
def test_verbs_on_unknown_pipeline_exit_2(
    cli: CliEnv, capsys: pytest.CaptureFixture[str], verb: str
) -> None:
    code, out, err = run(capsys, verb, "ghost")
    assert code == 2
    assert "'ghost' does not exist" in err
    assert out == ""


def test_resync_of_one_table_is_refused_by_the_embedded_engine(
    cli: CliEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    create(capsys)
    code, _, err = run(capsys, "resync", "orders", "--table", "shop.customers")
    assert code == 2
    assert "without --table" in err


def test_status_with_unreachable_source_reports_slot_error(
    cli: CliEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"postgresql://nobody@127.0.0.1:{free_port()}/gone"
    code, _, err = run(
        capsys, "pipeline", "create", "dark", "--source", dead, "--target", "tgt",
        "--tables", "public.t",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "status", "dark", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["slot"]["error"].startswith("source unreachable")
    assert doc["slot"]["exists"] is None
    assert doc["health"] == "healthy"
    code, out, _ = run(capsys, "check", "dark", "--json")
    assert code == 1
    connect = [f for f in json.loads(out)["findings"] if f["rule"] == "source.connect"]
    assert connect[0]["severity"] == "error"
    assert f"127.0.0.1:{dead.split(':')[-1].split('/')[0]}" in connect[0]["message"]
