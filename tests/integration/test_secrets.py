"""No secret reaches stdout/stderr, --json output, the log file, the metadata DB or any argv."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from tests.integration.cli_env import make_cli_env
from tests.pg import Database

CDC_TUI = str(Path(sys.executable).parent / "cdc-tui")


def _all_cmdlines() -> str:
    """Every process's argv on this machine right now, joined."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue  # the process ended while we looked
    return "\n".join(out)


def _run_watching_argv(argv: list[str], env: dict[str, str]) -> tuple[int, str, str, str]:
    """Run the CLI and sample every process's argv while it runs."""
    proc = subprocess.Popen(
        [CDC_TUI, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen = []
    while proc.poll() is None:
        seen.append(_all_cmdlines())
        time.sleep(0.02)
    out, err = proc.communicate()
    return proc.returncode, out, err, "\n".join(seen)


def _metadata_dump(url: str) -> str:
    """Every row of every metadata table, as text."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    meta = sa.MetaData()
    meta.reflect(engine)
    chunks = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            chunks += [repr(tuple(row)) for row in conn.execute(sa.select(table))]
    engine.dispose()
    return "\n".join(chunks)


def test_secrets_never_leak(
    tmp_path: Path, metadata_url: str, source_db: Database, target_db: Database
) -> None:
    cli = make_cli_env(tmp_path, metadata_url, source_db, target_db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDC_TUI_")}
    env.update(cli.env)
    env["HOME"] = str(tmp_path / "home")
    outputs = []
    argvs = []
    commands = [
        ["pipeline", "create", "orders", "--source", "src", "--target", "tgt",
         "--tables", 'shop.customers,shop."Order Items"', "--json"],
        ["list", "--json"],
        ["status", "orders", "--json"],
        ["status", "orders"],
        ["check", "orders", "--json"],
        ["check", "orders"],
        ["plan", "orders", "--json"],
    ]  # fmt: skip
    for argv in commands:
        code, out, err, seen = _run_watching_argv(argv, env)
        assert code == 0, (argv, err)
        outputs += [out, err]
        argvs.append(seen)
    # A wrong password must produce an error that does not echo the password either.
    env_bad = {**env, "CDC_TUI_SECRET_SRC": "wrong-" + cli.source_password}
    code, out, err, seen = _run_watching_argv(["check", "orders", "--json"], env_bad)
    assert code == 1
    assert "source.connect" in out
    outputs += [out, err]
    argvs.append(seen)

    log_text = cli.log_file.read_text()
    assert "status" in log_text  # the log was written, so the check below means something
    dump = _metadata_dump(metadata_url)
    assert "cdc_tui_orders" in dump and "CDC_TUI_SECRET_SRC" in dump
    places = {
        "outputs": "\n".join(outputs),
        "log file": log_text,
        "metadata DB": dump,
        "argv": "\n".join(argvs),
    }
    if metadata_url.startswith("sqlite:///"):
        db_file = Path(metadata_url.removeprefix("sqlite:///"))
        places["metadata DB file"] = b"".join(
            p.read_bytes() for p in db_file.parent.glob(db_file.name + "*")
        ).decode("latin-1")
    secrets = list(cli.secrets)
    metadata_password = sa.make_url(metadata_url).password
    if metadata_password:
        secrets.append(str(metadata_password))
    for secret in secrets:
        for where, text in places.items():
            assert secret not in text, f"a password leaked into the {where}"
