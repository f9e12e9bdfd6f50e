"""The new-pipeline form's headless half without a server: catalog rows, blocking findings,
connection choices, and every draft check that must refuse before connecting anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc_tui.domain.findings import Finding, Severity
from cdc_tui.domain.spec import TableRef
from cdc_tui.domain.status import Engine, Mode
from cdc_tui.errors import ConfigError, NotFoundError, UsageError
from cdc_tui.services.context import AppContext, build_context
from cdc_tui.services.drafts import (
    CatalogTable,
    ConnectionChoice,
    Draft,
    _validate,
    blocking,
    check_draft,
    connection_choices,
    save_draft,
    source_catalog,
)
from cdc_tui.store.repositories import PipelineRepository

CUSTOMERS = TableRef("shop", "customers")
ITEMS = TableRef("shop", "Order Items")
DOTTED = TableRef("shop", "v1.orders")
SECRET = "s3cret-pw"
CONNECT_URL = "http://connect.example.invalid:8083"
KAFKA = Engine.KAFKA_CONNECT


def _table(
    key: tuple[str, ...] = ("id",),
    identity: str = "default",
    rows: int | None = 100,
    *,
    ref: TableRef = CUSTOMERS,
    partitioned: bool = False,
) -> CatalogTable:
    return CatalogTable(ref, key, identity, rows, partitioned)


@pytest.mark.parametrize(
    ("key", "identity", "expected"),
    [
        (("id",), "default", True),
        ((), "default", False),
        ((), "full", True),
        (("id",), "full", True),
        ((), "index", True),
        ((), "nothing", False),
        (("id",), "nothing", False),
    ],
)
def test_replicable_follows_the_replica_identity_rule(
    key: tuple[str, ...], identity: str, expected: bool
) -> None:
    assert _table(key, identity).replicable is expected


def test_label_names_table_key_identity_and_rows() -> None:
    assert _table().label == "shop.customers  key: id  identity: default  ~100 rows"


def test_label_quotes_names_and_handles_no_key_unknown_rows_and_partitions() -> None:
    items = _table(("order_id", "Line No"), rows=None, ref=ITEMS)
    assert items.label == (
        'shop."Order Items"  key: order_id, "Line No"  identity: default  rows unknown'
    )
    keyless = _table((), "nothing", 1, ref=TableRef("public", "log"))
    assert keyless.label == "public.log  key: none  identity: nothing  ~1 row"
    events = _table(("id", "at"), rows=1234567, ref=TableRef("shop", "events"), partitioned=True)
    assert events.label == (
        "shop.events  key: id, at  identity: default  ~1,234,567 rows  partitioned"
    )


def test_blocking_keeps_only_errors_in_order() -> None:
    findings = [
        Finding("source.connect", Severity.OK, "h:5432/db", "Connected."),
        Finding("source.replica_identity", Severity.ERROR, "shop.a", "No key.", "Add one."),
        Finding("target.table_conflict", Severity.WARNING, "shop.b", "Exists.", "Drop it."),
        Finding("source.select", Severity.ERROR, "shop.c", "No SELECT.", "Grant it."),
    ]
    assert blocking(findings) == [findings[1], findings[3]]
    assert blocking(findings[:1] + findings[2:3]) == []
    assert blocking([]) == []


# -- with a context: a config file and a SQLite metadata DB, no PostgreSQL server -------------


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'metadata_url = "sqlite:///{tmp_path / "m.db"}"\n\n'
        f'[connections.zeta]\nurl = "postgresql://app:{SECRET}@h.invalid:5432/db"\n\n'
        '[connections.alpha]\nurl = "postgres://cdc@db1.invalid:5433/shop"\n'
        'password_env = "ALPHA_PW"\n\n'
        '[connections.mss]\nurl = "mssql://sa@sql.invalid:1433/dwh"\npassword_env = "MSS_PW"\n'
    )
    config.chmod(0o600)
    context = build_context(config, environ={}, actor="test")
    yield context
    context.close()


def _draft(**changes: object) -> Draft:
    fields: dict[str, object] = {
        "name": "orders",
        "source": "alpha",
        "target": "zeta",
        "tables": (ITEMS, CUSTOMERS),
    }
    fields.update(changes)
    return Draft(**fields)  # type: ignore[arg-type]


def test_connection_choices_are_sorted_and_never_show_a_password(ctx: AppContext) -> None:
    choices = connection_choices(ctx)
    assert choices == [
        ConnectionChoice("alpha", "postgresql", "db1.invalid:5433/shop"),
        ConnectionChoice("mss", "mssql", "sql.invalid:1433/dwh"),
        ConnectionChoice("zeta", "postgresql", "h.invalid:5432/db"),
    ]
    assert SECRET not in repr(choices)


def test_draft_defaults() -> None:
    draft = Draft("orders", "a", "b", (CUSTOMERS,))
    assert (draft.mode, draft.engine, draft.target_schema, draft.connect_url) == (
        Mode.FULL_LOAD_AND_CDC,
        Engine.EMBEDDED,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"name": "Bad Name"}, UsageError, "'Bad Name' is not valid"),
        ({"source": "nope"}, NotFoundError, "No connection named 'nope'"),
        ({"target": "nope"}, NotFoundError, "No connection named 'nope'"),
        ({"source": "mss"}, UsageError, "'mss' is not a PostgreSQL connection"),
        ({"engine": KAFKA}, UsageError, "fill in the Kafka Connect REST URL field"),
        ({"engine": KAFKA, "connect_url": ""}, UsageError, "needs the Kafka Connect REST URL"),
        ({"engine": KAFKA, "connect_url": "connect:8083"}, UsageError, "not an http:// or"),
        ({"engine": KAFKA, "connect_url": "ftp://connect:8083"}, UsageError, "not an http://"),
        (
            {"engine": KAFKA, "connect_url": f"http://u:{SECRET}@connect:8083"},
            UsageError,
            "contains a password",
        ),
        (
            {"engine": KAFKA, "connect_url": CONNECT_URL, "tables": (CUSTOMERS, DOTTED)},
            UsageError,
            "has a ',', '.' or '\"' in its name",
        ),
        ({"connect_url": CONNECT_URL}, UsageError, "only applies to the kafka_connect engine"),
        (
            {"engine": KAFKA, "connect_url": CONNECT_URL, "tables": ()},
            UsageError,
            "'orders' has no tables",
        ),
        ({"tables": ()}, UsageError, "'orders' has no tables"),
        ({"tables": (CUSTOMERS, CUSTOMERS)}, UsageError, "listed twice"),
    ],
)
def test_check_draft_refuses_what_create_would_before_connecting(
    ctx: AppContext, changes: dict[str, object], error: type[Exception], words: str
) -> None:
    # The hosts end in .invalid: had it connected, preflight would have returned findings.
    with pytest.raises(error) as caught:
        check_draft(ctx, _draft(**changes))
    assert type(caught.value) is error
    assert words in str(caught.value)
    assert SECRET not in str(caught.value)
    assert PipelineRepository(ctx.store).list() == []


def test_a_valid_kafka_connect_draft_passes_validation(ctx: AppContext) -> None:
    source, target = _validate(ctx, _draft(engine=KAFKA, connect_url=CONNECT_URL))
    assert (source.name, target.name) == ("alpha", "zeta")
    # The embedded engine takes the dotted name the kafka_connect engine refuses.
    _validate(ctx, _draft(tables=(CUSTOMERS, DOTTED)))


def test_check_draft_refuses_a_taken_name(ctx: AppContext) -> None:
    save_draft(ctx, _draft())
    with pytest.raises(UsageError, match="'orders' already exists"):
        check_draft(ctx, _draft(tables=(CUSTOMERS,)))


def test_source_catalog_refuses_unknown_and_sql_server_sources(ctx: AppContext) -> None:
    with pytest.raises(NotFoundError, match="'nope'"):
        source_catalog(ctx, "nope")
    with pytest.raises(UsageError, match="'mss' is not a PostgreSQL connection"):
        source_catalog(ctx, "mss")


def test_save_draft_stores_every_field_without_connecting(ctx: AppContext) -> None:
    draft = _draft(mode=Mode.FULL_LOAD_ONLY, target_schema="mirror")
    record = save_draft(ctx, draft)
    stored = PipelineRepository(ctx.store).get("orders")
    assert stored == record
    assert [t.table for t in stored.tables] == [ITEMS, CUSTOMERS]
    assert (stored.mode, stored.engine, stored.target_schema) == (
        Mode.FULL_LOAD_ONLY,
        Engine.EMBEDDED,
        "mirror",
    )
    assert (stored.source.name, stored.target.name) == ("alpha", "zeta")
    assert SECRET not in repr(stored.target)


def test_save_draft_stores_the_engine_and_the_connect_url(ctx: AppContext) -> None:
    save_draft(ctx, _draft(engine=KAFKA, connect_url=CONNECT_URL))
    stored = PipelineRepository(ctx.store).get("orders")
    assert (stored.engine, stored.connect_url) == (KAFKA, CONNECT_URL)


def test_save_draft_stores_a_blank_target_schema_as_none(ctx: AppContext) -> None:
    save_draft(ctx, _draft(target_schema=""))
    assert PipelineRepository(ctx.store).get("orders").target_schema is None


def test_check_draft_of_a_sql_server_target_reads_its_password_first(ctx: AppContext) -> None:
    with pytest.raises(ConfigError, match="MSS_PW"):
        check_draft(ctx, _draft(source="zeta", target="mss"))
