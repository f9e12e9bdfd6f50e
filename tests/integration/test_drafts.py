"""The new-pipeline form's headless half against real clusters, as the least-privilege roles of
the CLI set-up: the live catalog, a check that creates nothing, and the save; for the
kafka_connect engine, also against the session's real Connect worker (and one that is not
there)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc_tui import kafka_stack as ks
from cdc_tui.domain.findings import Severity
from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import Engine, Mode
from cdc_tui.errors import CdcTuiError, ConfigError, SourceError
from cdc_tui.services.context import AppContext, build_context
from cdc_tui.services.drafts import (
    CatalogTable,
    Draft,
    blocking,
    check_draft,
    save_draft,
    source_catalog,
)
from cdc_tui.store.repositories import PipelineRepository
from tests.integration.cli_env import SOURCE_ROLE, make_cli_env
from tests.integration.kafka_support import KAFKA_TOML
from tests.integration.runner_support import Cli, source_objects
from tests.pg import Database

pytestmark = pytest.mark.integration

CUSTOMERS = TableRef("shop", "customers")
ITEMS = TableRef("shop", "Order Items")
KEYLESS = TableRef("shop", "keyless")
FULL = TableRef("shop", "audit")
EVENTS = TableRef("shop", "events")

# Run as the superuser after the CLI set-up; what the role may see is granted explicitly.
EXTRA_TABLES = f"""
CREATE TABLE shop.keyless (a int, b text);
CREATE TABLE shop.audit (at timestamptz, what text);
ALTER TABLE shop.audit REPLICA IDENTITY FULL;
CREATE TABLE shop.secret (id int PRIMARY KEY);
CREATE VIEW shop.customer_names AS SELECT id, name FROM shop.customers;
CREATE TABLE shop.events (id bigint, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE shop.events_2024 PARTITION OF shop.events
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE shop.events_2025 PARTITION OF shop.events
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO shop.events SELECT g, DATE '2024-06-01' + (g % 400) FROM generate_series(1, 30) g;
CREATE SCHEMA hidden;
CREATE TABLE hidden.t (id int PRIMARY KEY);
CREATE SCHEMA cdc_tui;
CREATE TABLE cdc_tui.applied_position (pipeline text PRIMARY KEY);
GRANT SELECT ON shop.keyless, shop.audit, shop.customer_names, shop.events, shop.events_2024,
    shop.events_2025, hidden.t, cdc_tui.applied_position TO {SOURCE_ROLE};
GRANT USAGE ON SCHEMA cdc_tui TO {SOURCE_ROLE};
ALTER TABLE shop.keyless OWNER TO {SOURCE_ROLE};
ALTER TABLE shop.events OWNER TO {SOURCE_ROLE};
ANALYZE shop.customers;
ANALYZE shop.events;
"""


@pytest.fixture
def cli(tmp_path: Path, source_db: Database, target_db: Database) -> Cli:
    env = make_cli_env(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", source_db, target_db)
    source_db.execute(EXTRA_TABLES)
    return Cli(env, tmp_path / "home")


@pytest.fixture
def ctx(cli: Cli) -> Iterator[AppContext]:
    context = build_context(cli.env.config, environ=cli.environ(), actor="console:test")
    yield context
    context.close()


@pytest.fixture
def kafka_ctx(cli: Cli, tmp_path: Path) -> Iterator[AppContext]:
    """The form's context with a `[kafka_connect]` section: the passwords go in a secrets
    directory, as they do for the kafka_connect CLI tests."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    with cli.env.config.open("a") as fh:
        fh.write(KAFKA_TOML.format(secrets=secrets))
    context = build_context(cli.env.config, environ=cli.environ(), actor="console:test")
    yield context
    context.close()


def test_source_catalog_lists_what_the_role_may_copy(ctx: AppContext) -> None:
    started = time.monotonic()
    catalog = source_catalog(ctx, "src")
    elapsed = time.monotonic() - started
    by_ref = {t.ref: t for t in catalog}

    # Byte order, like TableRef's: upper case first, whatever the server's collation.
    assert [t.ref for t in catalog] == [ITEMS, FULL, CUSTOMERS, EVENTS, KEYLESS]
    assert by_ref[CUSTOMERS] == CatalogTable(CUSTOMERS, ("id",), "default", 100, False)
    assert by_ref[CUSTOMERS].label == "shop.customers  key: id  identity: default  ~100 rows"
    # Never analyzed (and empty, so autovacuum leaves it alone): no estimate.
    assert by_ref[ITEMS] == CatalogTable(ITEMS, ("order_id", "line"), "default", None, False)
    assert by_ref[ITEMS].replicable
    assert by_ref[KEYLESS] == CatalogTable(KEYLESS, (), "default", None, False)
    assert not by_ref[KEYLESS].replicable
    assert by_ref[FULL].replica_identity == "full"
    assert by_ref[FULL].replicable
    # The root once, with its key and its leaves' rows; no partition on its own.
    assert by_ref[EVENTS] == CatalogTable(EVENTS, ("id", "at"), "default", 30, True)
    assert by_ref[EVENTS].label.endswith("~30 rows  partitioned")
    # Absent: no SELECT (secret), a view, a schema without USAGE, cdc-tui's own schema.
    names = {str(t.ref) for t in catalog}
    assert not names & {"shop.secret", "shop.customer_names", "hidden.t"}
    assert not any(t.ref.schema == "cdc_tui" for t in catalog)
    assert elapsed < 5


def test_check_draft_of_a_good_draft_blocks_nothing_and_creates_nothing(
    ctx: AppContext, source_db: Database, target_db: Database
) -> None:
    draft = Draft("orders_new", "src", "tgt", (CUSTOMERS, ITEMS), target_schema="mirror")

    findings = check_draft(ctx, draft)

    assert blocking(findings) == []
    rules = {(f.rule, f.object) for f in findings}
    # It did run both preflights, for this draft's tables, mode and target schema.
    assert ("source.connect", f"127.0.0.1:{source_db.cluster.port}/{source_db.name}") in rules
    assert ("source.replica_identity", str(ITEMS)) in rules
    assert ("source.slot_name", "cdc_tui_orders_new") in rules
    assert ("target.create", "mirror") in rules
    assert ("target.table_conflict", 'mirror."Order Items"') in rules
    # Nothing stored, nothing created on either side.
    assert PipelineRepository(ctx.store).list() == []
    assert source_objects(source_db, "orders_new") == (0, 0)
    assert target_db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'mirror'") == 0


def test_check_draft_blocks_a_keyless_table_by_name(ctx: AppContext) -> None:
    findings = check_draft(ctx, Draft("orders_new", "src", "tgt", (CUSTOMERS, KEYLESS)))

    (block,) = blocking(findings)
    assert (block.rule, block.object) == ("source.replica_identity", "shop.keyless")
    assert "shop.keyless" in block.message
    # The same table is fine in a mode that only copies.
    copy_only = Draft("orders_new", "src", "tgt", (KEYLESS,), mode=Mode.FULL_LOAD_ONLY)
    assert blocking(check_draft(ctx, copy_only)) == []


def test_source_catalog_without_the_password_names_the_connection(cli: Cli) -> None:
    environ = {k: v for k, v in cli.environ().items() if k != "CDC_TUI_SECRET_SRC"}
    context = build_context(cli.env.config, environ=environ)
    try:
        with pytest.raises(CdcTuiError) as caught:
            source_catalog(context, "src")
    finally:
        context.close()
    assert isinstance(caught.value, ConfigError)
    assert "'src'" in caught.value.message
    assert "CDC_TUI_SECRET_SRC" in caught.value.message
    assert cli.env.source_password not in str(caught.value)


def test_source_catalog_with_a_wrong_password_is_one_clean_sentence(cli: Cli) -> None:
    wrong = "wrong-" + cli.env.source_password
    context = build_context(cli.env.config, environ={**cli.environ(), "CDC_TUI_SECRET_SRC": wrong})
    try:
        with pytest.raises(SourceError) as caught:
            source_catalog(context, "src")
    finally:
        context.close()
    message = caught.value.message
    assert message.startswith("Cannot read the tables of source 'src' at 127.0.0.1:")
    assert f"as {SOURCE_ROLE}: " in message
    assert "password authentication failed" in message
    assert wrong not in message
    assert cli.env.source_password not in message
    assert "\n" not in message


def test_source_catalog_of_an_unreachable_source_fails_within_its_timeout(cli: Cli) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the connection attempt
    with cli.env.config.open("a") as fh:
        fh.write(f'\n[connections.dead]\nurl = "postgresql://{SOURCE_ROLE}@127.0.0.1:{port}/x"\n')
    context = build_context(cli.env.config, environ=cli.environ())
    started = time.monotonic()
    try:
        with pytest.raises(SourceError, match=f"source 'dead' at 127.0.0.1:{port}/x"):
            source_catalog(context, "dead", timeout_s=2)
    finally:
        context.close()
    assert time.monotonic() - started < 5


def test_save_draft_stores_the_pipeline_with_its_tables_in_order(
    ctx: AppContext, cli: Cli, source_db: Database
) -> None:
    draft = Draft("orders_new", "src", "tgt", (ITEMS, EVENTS, CUSTOMERS), mode=Mode.CDC_ONLY)
    assert blocking(check_draft(ctx, draft)) == []

    record = save_draft(ctx, draft)

    stored = PipelineRepository(ctx.store).get("orders_new")
    assert record.name == stored.name == "orders_new"
    assert [t.table for t in stored.tables] == [ITEMS, EVENTS, CUSTOMERS]
    assert (stored.source.name, stored.target.name, stored.mode) == ("src", "tgt", Mode.CDC_ONLY)
    doc = cli.status("orders_new")
    assert doc["name"] == "orders_new"
    assert doc["full_load_status"] == "SKIPPED"
    assert [t["table"] for t in doc["full_load"]["tables"]] == [
        'shop."Order Items"',
        "shop.events",
        "shop.customers",
    ]
    # Saving connects nowhere: no slot or publication yet.
    assert source_objects(source_db, "orders_new") == (0, 0)


def test_a_kafka_connect_draft_is_checked_against_connect_then_saved_with_its_url(
    kafka_ctx: AppContext, source_db: Database, kafka_stack: ks.Stack
) -> None:
    ctx = kafka_ctx
    draft = Draft("orders_new", "src", "tgt", (CUSTOMERS, ITEMS), engine=Engine.KAFKA_CONNECT,
                  connect_url=kafka_stack.connect_url)  # fmt: skip

    findings = check_draft(ctx, draft)

    seen = {(f.rule, f.severity) for f in findings}
    assert ("connect.reachable", Severity.OK) in seen
    assert ("connect.plugin", Severity.OK) in seen
    assert ("source.helper_schema", Severity.OK) in seen
    # The PostgreSQL preflight ran too, and nothing blocks the save.
    assert ("source.slot_name", Severity.OK) in seen
    assert blocking(findings) == [], blocking(findings)
    # Checking created nothing: no pipeline, no helper table, no connector.
    assert PipelineRepository(ctx.store).list() == []
    assert source_db.scalar("SELECT to_regclass('cdc_tui.orders_new_signal')") is None

    record = save_draft(ctx, draft)

    stored = PipelineRepository(ctx.store).get("orders_new")
    assert stored == record
    assert (stored.engine, stored.connect_url) == (Engine.KAFKA_CONNECT, kafka_stack.connect_url)
    assert [t.table for t in stored.tables] == [CUSTOMERS, ITEMS]
    assert source_objects(source_db, "orders_new") == (0, 0)


def test_a_kafka_connect_draft_without_a_worker_at_its_url_is_blocked(
    kafka_ctx: AppContext,
) -> None:
    url = "http://127.0.0.1:9"  # the discard port: nothing listens
    draft = Draft("orders_new", "src", "tgt", (CUSTOMERS,), engine=Engine.KAFKA_CONNECT,
                  connect_url=url)  # fmt: skip

    started = time.monotonic()
    findings = check_draft(kafka_ctx, draft)

    assert time.monotonic() - started < 30
    reachable = [f for f in findings if f.rule == "connect.reachable"]
    assert [(f.severity, f.object) for f in reachable] == [(Severity.ERROR, url)]
    assert reachable[0] in blocking(findings)
    assert reachable[0].fix == "start the Connect worker or fix the pipeline's --connect-url"
    # Without the worker there is no plugin to look at; the rest is still checked.
    assert not any(f.rule == "connect.plugin" for f in findings)
    assert any(f.rule == "source.helper_schema" for f in findings)
    assert PipelineRepository(kafka_ctx.store).list() == []


def test_check_draft_of_a_sql_server_target_plans_it_and_reports_the_server(cli: Cli) -> None:
    with cli.env.config.open("a") as fh:
        fh.write('\n[connections.dwh]\nurl = "mssql://loader@127.0.0.1:1/dwh"\n'
                 'password_env = "DWH_PW"\n')  # fmt: skip
    context = build_context(cli.env.config, environ={**cli.environ(), "DWH_PW": "pw"})
    try:
        findings = check_draft(context, Draft("to_dwh", "src", "dwh", (CUSTOMERS, KEYLESS)))
    finally:
        context.close()
    by_rule = {f.rule: f for f in findings}
    assert by_rule["target.connect"].severity == "error"
    assert "127.0.0.1:1/dwh" in by_rule["target.connect"].message
    assert by_rule["target.plan"].severity == "ok"
    assert "2 table(s)" in by_rule["target.plan"].message
    assert PipelineRepository(context.store).find("to_dwh") is None  # a check stores nothing
