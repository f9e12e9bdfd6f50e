"""Source and target preflight against real clusters: each rule fires, and nothing is created."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from cdc_tui.domain.findings import Finding, Severity, has_errors
from cdc_tui.domain.spec import TableRef, publication_name_for, slot_name_for
from cdc_tui.localpg import LocalCluster
from cdc_tui.pgconn import PgParams
from cdc_tui.pgerrors import short_reason
from cdc_tui.sources.postgres.preflight import run_source_preflight
from cdc_tui.targets.postgres.preflight import run_target_preflight
from tests.pg import Database, create_database, drop_database

pytestmark = pytest.mark.integration

ORDERS = TableRef("public", "orders")
ITEMS = TableRef("public", "Order Items")


@dataclass
class Role:
    name: str
    password: str
    db: Database

    def params(self, password: str | None = None) -> PgParams:
        return PgParams(self.db.url(user=self.name), password=password or self.password)

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.name)


def _admin(db: Database, statement: sql.Composed | str) -> None:
    text = sql.SQL(statement) if isinstance(statement, str) else statement
    with db.admin() as conn:
        conn.execute(text)


def _make_role(db: Database, *attributes: str, prefix: str = "Repl User") -> Role:
    name = f"{prefix} {uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    attrs = sql.SQL(" ").join(sql.SQL(a) for a in ("LOGIN", *attributes))
    _admin(
        db,
        sql.SQL("CREATE ROLE {} {} PASSWORD {}").format(
            sql.Identifier(name), attrs, sql.Literal(password)
        ),
    )
    return Role(name, password, db)


def _drop_role(role: Role) -> None:
    _admin(role.db, sql.SQL("DROP OWNED BY {}").format(role.ident))
    _admin(role.db, sql.SQL("DROP ROLE {}").format(role.ident))


@pytest.fixture
def make_role(source_db: Database) -> Iterator[Callable[..., Role]]:
    """Roles are cluster-wide, so each test's roles are dropped when it ends."""
    made: list[Role] = []

    def factory(*attributes: str, db: Database | None = None, prefix: str = "Repl User") -> Role:
        role = _make_role(db or source_db, *attributes, prefix=prefix)
        made.append(role)
        return role

    yield factory
    for role in made:
        _drop_role(role)


def _snapshot(db: Database) -> tuple[object, ...]:
    """Everything a careless preflight could create or alter, on the whole cluster and the db."""
    with db.admin() as conn:
        return (
            conn.execute(
                "SELECT array_agg(slot_name ORDER BY slot_name) FROM pg_replication_slots"
            ).fetchone(),
            conn.execute(
                "SELECT array_agg(pubname ORDER BY pubname) FROM pg_publication"
            ).fetchone(),
            conn.execute("SELECT count(*), max(oid::int8) FROM pg_class").fetchone(),
            conn.execute("SELECT count(*) FROM pg_namespace").fetchone(),
            conn.execute(
                "SELECT array_agg(relname::text || relreplident::text ORDER BY relname) "
                "FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            ).fetchone(),
            conn.execute("SELECT array_agg(rolname ORDER BY rolname) FROM pg_roles").fetchone(),
        )


def _pipeline() -> str:
    return f"p_{uuid.uuid4().hex[:10]}"


def _good_source(db: Database, role: Role) -> None:
    """Tables with primary keys owned by the role, CREATE on the database: a complete setup."""
    _admin(db, "CREATE TABLE public.orders (id int PRIMARY KEY, note text)")
    _admin(
        db,
        'CREATE TABLE public."Order Items" (order_id int, line int, PRIMARY KEY (order_id, line))',
    )
    for ref in (ORDERS, ITEMS):
        table = sql.Identifier(ref.schema, ref.name)
        _admin(db, sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, role.ident))
    _admin(
        db, sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(sql.Identifier(db.name), role.ident)
    )


def _run(
    role: Role,
    tables: list[TableRef],
    *,
    mode: str = "full_load_and_cdc",
    pipeline: str | None = None,
    password: str | None = None,
) -> list[Finding]:
    """Run the source preflight and assert it left the cluster exactly as it was."""
    before = _snapshot(role.db)
    findings = run_source_preflight(
        role.params(password), tables, pipeline=pipeline or _pipeline(), mode=mode
    )
    assert _snapshot(role.db) == before
    return findings


def _only(findings: list[Finding], rule: str, severity: Severity) -> list[Finding]:
    return [f for f in findings if f.rule == rule and f.severity == severity]


def test_good_setup_has_no_errors_and_reports_each_rule(
    source_db: Database, make_role: Callable[..., Role]
) -> None:
    role = make_role("REPLICATION")
    _good_source(source_db, role)
    findings = _run(role, [ORDERS, ITEMS])
    assert not has_errors(findings), [f for f in findings if f.severity != Severity.OK]
    assert {f.rule for f in findings} == {
        "source.connect",
        "source.wal_level",
        "source.replication_role",
        "source.slots",
        "source.slot_name",
        "source.wal_senders",
        "source.publication_privilege",
        "source.table_exists",
        "source.select",
        "source.replica_identity",
    }
    assert {f.object for f in _only(findings, "source.select", Severity.OK)} == {
        str(ORDERS),
        str(ITEMS),
    }


def test_wal_level_replica_is_an_error_naming_the_setting(
    replica_wal_cluster: LocalCluster,
) -> None:
    db = create_database(replica_wal_cluster, "walrep")
    role = _make_role(db, "REPLICATION")
    try:
        _good_source(db, role)
        findings = _run(role, [ORDERS])
    finally:
        _drop_role(role)
        drop_database(db)
    [error] = _only(findings, "source.wal_level", Severity.ERROR)
    assert error.object == "wal_level"
    assert "wal_level" in error.message and "'replica'" in error.message
    assert error.fix is not None
    assert "ALTER SYSTEM SET wal_level = logical" in error.fix and "restart" in error.fix


def test_role_without_replication_is_named_with_a_quoted_fix(
    source_db: Database, make_role: Callable[..., Role]
) -> None:
    role = make_role()
    _good_source(source_db, role)
    findings = _run(role, [ORDERS])
    [error] = _only(findings, "source.replication_role", Severity.ERROR)
    assert error.object == role.name and role.name in error.message
    assert error.fix == f'Run ALTER ROLE "{role.name}" REPLICATION; as a superuser.'
    # A full load alone needs no replication privilege.
    assert not has_errors(_run(role, [ORDERS], mode="full_load_only"))


def test_table_without_primary_key_lists_the_options(
    source_db: Database, make_role: Callable[..., Role]
) -> None:
    role = make_role("REPLICATION")
    _good_source(source_db, role)
    _admin(source_db, "CREATE TABLE public.nokey (a int NOT NULL, b text)")
    _admin(source_db, "CREATE UNIQUE INDEX nokey_a ON public.nokey (a)")
    _admin(source_db, "CREATE TABLE public.nothing (id int PRIMARY KEY)")
    _admin(source_db, "ALTER TABLE public.nothing REPLICA IDENTITY NOTHING")
    _admin(source_db, "CREATE TABLE public.fullident (a int)")
    _admin(source_db, "ALTER TABLE public.fullident REPLICA IDENTITY FULL")
    for name in ("nokey", "nothing", "fullident"):
        _admin(
            source_db, sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(name), role.ident)
        )
    refs = [TableRef("public", n) for n in ("nokey", "nothing", "fullident")]
    findings = _run(role, refs, mode="full_load_only")
    assert _only(findings, "source.replica_identity", Severity.ERROR) == []
    findings = _run(role, refs)
    errors = {f.object: f for f in _only(findings, "source.replica_identity", Severity.ERROR)}
    assert set(errors) == {"public.nokey", "public.nothing"}
    fix = errors["public.nokey"].fix or ""
    assert "public.nokey" in errors["public.nokey"].message
    assert "ADD PRIMARY KEY" in fix and "REPLICA IDENTITY USING INDEX nokey_a" in fix
    assert "REPLICA IDENTITY FULL" in fix and "full_load_only" in fix
    [warning] = _only(findings, "source.replica_identity", Severity.WARNING)
    assert warning.object == "public.fullident"


def test_missing_table_is_named(source_db: Database, make_role: Callable[..., Role]) -> None:
    role = make_role("REPLICATION")
    _good_source(source_db, role)
    missing = TableRef("public", "No Such Table")
    findings = _run(role, [ORDERS, missing])
    [error] = _only(findings, "source.table_exists", Severity.ERROR)
    assert error.object == str(missing) == 'public."No Such Table"'
    assert str(missing) in error.message


def test_no_select_is_an_error_with_the_grant(
    source_db: Database, make_role: Callable[..., Role]
) -> None:
    role = make_role("REPLICATION")
    _good_source(source_db, role)
    _admin(source_db, 'CREATE TABLE public."Secret Stuff" (id int PRIMARY KEY)')
    secret = TableRef("public", "Secret Stuff")
    findings = _run(role, [ORDERS, secret])
    [error] = _only(findings, "source.select", Severity.ERROR)
    assert error.object == str(secret)
    assert error.fix == f'Run GRANT SELECT ON public."Secret Stuff" TO "{role.name}";'
    # Not owning it also blocks CREATE PUBLICATION ... FOR TABLE.
    [owner] = _only(findings, "source.publication_privilege", Severity.ERROR)
    assert owner.object == str(secret) and "GRANT postgres TO" in (owner.fix or "")


def test_wrong_password_is_a_connect_error_without_the_password(
    source_db: Database, make_role: Callable[..., Role]
) -> None:
    role = make_role("REPLICATION")
    wrong = "Wr0ng-pässword-" + uuid.uuid4().hex
    findings = _run(role, [ORDERS], password=wrong)
    [finding] = findings
    assert finding.rule == "source.connect" and finding.severity == Severity.ERROR
    assert f"127.0.0.1:{source_db.cluster.port}/{source_db.name}" in finding.object
    assert role.name in finding.message and "password authentication failed" in finding.message
    dumped = json.dumps([f.to_json() for f in findings])
    assert wrong not in dumped and role.password not in dumped


def test_existing_slot_with_the_pipeline_name_is_an_error(
    source_db: Database, make_role: Callable[..., Role]
) -> None:
    role = make_role("REPLICATION")
    _good_source(source_db, role)
    pipeline = _pipeline()
    slot = slot_name_for(pipeline)
    source_db.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    try:
        findings = _run(role, [ORDERS], pipeline=pipeline)
    finally:
        source_db.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    [error] = _only(findings, "source.slot_name", Severity.ERROR)
    assert error.object == slot and "never reuses a slot" in error.message
    assert _only(findings, "source.slots", Severity.OK)


def test_existing_publication_is_accepted_only_when_exact(
    source_db: Database, make_role: Callable[..., Role]
) -> None:
    role = make_role("REPLICATION")
    _good_source(source_db, role)
    pipeline = _pipeline()
    pub = sql.Identifier(publication_name_for(pipeline))
    _admin(
        source_db,
        sql.SQL('CREATE PUBLICATION {} FOR TABLE public.orders, public."Order Items"').format(pub),
    )
    findings = _run(role, [ORDERS, ITEMS], pipeline=pipeline)
    assert not has_errors(findings)
    findings = _run(role, [ORDERS], pipeline=pipeline)
    [error] = _only(findings, "source.publication_privilege", Severity.ERROR)
    assert error.object == publication_name_for(pipeline)


def test_missing_create_on_database_is_an_error(
    source_db: Database, make_role: Callable[..., Role]
) -> None:
    role = make_role("REPLICATION")
    _good_source(source_db, role)
    _admin(
        source_db,
        sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(
            sql.Identifier(source_db.name), role.ident
        ),
    )
    findings = _run(role, [ORDERS])
    [error] = _only(findings, "source.publication_privilege", Severity.ERROR)
    assert error.object == source_db.name
    assert error.fix == f'Run GRANT CREATE ON DATABASE {source_db.name} TO "{role.name}";'


def _run_target(
    role: Role, target_schema: str | None, tables: list[TableRef], password: str | None = None
) -> list[Finding]:
    before = _snapshot(role.db)
    findings = run_target_preflight(
        role.params(password), target_schema=target_schema, tables=tables
    )
    assert _snapshot(role.db) == before
    return findings


@pytest.fixture
def target_role(target_db: Database) -> Iterator[Role]:
    role = _make_role(target_db, prefix="writer")
    yield role
    _drop_role(role)


def test_target_without_create_is_an_error(target_db: Database, target_role: Role) -> None:
    # PostgreSQL 15+ grants neither CREATE on the database nor on schema public to PUBLIC.
    findings = _run_target(target_role, "Replica Schema", [ORDERS])
    [error] = _only(findings, "target.create", Severity.ERROR)
    assert error.object == "Replica Schema"
    assert error.fix is not None
    assert f'GRANT CREATE ON DATABASE {target_db.name} TO "{target_role.name}"' in error.fix
    findings = _run_target(target_role, None, [ORDERS])
    [error] = _only(findings, "target.create", Severity.ERROR)
    assert error.object == "public"
    assert f'GRANT CREATE, USAGE ON SCHEMA public TO "{target_role.name}"' in (error.fix or "")


def test_target_with_grants_warns_about_an_existing_table(
    target_db: Database, target_role: Role
) -> None:
    _admin(
        target_db,
        sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(target_db.name), target_role.ident
        ),
    )
    _admin(
        target_db, sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(target_role.ident)
    )
    _admin(target_db, "CREATE TABLE public.orders (id int PRIMARY KEY)")
    findings = _run_target(target_role, None, [ORDERS, ITEMS])
    assert not has_errors(findings)
    [warning] = _only(findings, "target.table_conflict", Severity.WARNING)
    assert warning.object == str(ORDERS)
    assert not has_errors(_run_target(target_role, "brand new", [ORDERS]))


def test_target_wrong_password(target_db: Database, target_role: Role) -> None:
    findings = _run_target(target_role, None, [ORDERS], password="nope-" + uuid.uuid4().hex)
    [finding] = findings
    assert finding.rule == "target.connect" and finding.severity == Severity.ERROR
    assert "nope-" not in json.dumps([f.to_json() for f in findings])


def test_short_reason_blanks_secrets() -> None:
    exc = psycopg.OperationalError(
        'connection failed: connection to server at "h", port 1 failed: FATAL:  '
        'password "s3cret" authentication failed\n\tmore'
    )
    assert short_reason(exc, ["s3cret", None]) == 'password "***" authentication failed'
