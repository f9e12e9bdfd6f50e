"""Creating, listing and dropping pipelines: the metadata side of the CLI verbs."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from cdc_tui.config.connections import resolve_connection, strip_password, url_has_password
from cdc_tui.domain.connection import ConnectionRef
from cdc_tui.domain.spec import TableRef, validate_pipeline_name
from cdc_tui.domain.status import Engine, Mode
from cdc_tui.engines.kafka_connect.configs import check_mssql_sink_names
from cdc_tui.engines.kafka_connect.naming import check_tables_nameable
from cdc_tui.errors import NotAvailableError, UsageError
from cdc_tui.services.context import AppContext
from cdc_tui.store.records import PipelineRecord
from cdc_tui.store.repositories import PipelineRepository
from cdc_tui.targets.mssql.types import NumericPolicy

log = logging.getLogger(__name__)


def create_pipeline(
    ctx: AppContext,
    *,
    name: str,
    source: str,
    target: str,
    tables: Sequence[TableRef],
    mode: Mode = Mode.FULL_LOAD_AND_CDC,
    engine: Engine = Engine.EMBEDDED,
    target_schema: str | None = None,
    connect_url: str | None = None,
    numeric_policy: str | None = None,
) -> PipelineRecord:
    """Validate the request and store the pipeline; connects to nothing (`check` does that)."""
    validate_pipeline_name(name)
    src = resolve_source(ctx, source)
    tgt = resolve_target(ctx, target)
    if engine == Engine.KAFKA_CONNECT and not connect_url:
        raise UsageError(
            "The kafka_connect engine needs the Kafka Connect REST URL; pass --connect-url URL."
        )
    if engine == Engine.EMBEDDED and connect_url:
        raise UsageError("--connect-url only applies to --engine kafka_connect; remove it.")
    if engine == Engine.KAFKA_CONNECT and connect_url:
        check_connect_url(connect_url)
        check_tables_nameable(name, list(tables))
        if tgt.kind == "mssql":
            check_mssql_sink_names(name, list(tables), target_schema)
    check_numeric_policy(numeric_policy, tgt)
    record = PipelineRepository(ctx.store).create(
        name=name,
        engine=engine,
        mode=mode,
        source=src,
        target=tgt,
        tables=list(tables),
        target_schema=target_schema,
        connect_url=connect_url,
        actor=ctx.actor,
        numeric_policy=numeric_policy,
    )
    log.info("pipeline %s created with %d tables", name, len(tables))
    return record


def check_connect_url(url: str) -> None:
    """An http(s) URL of Connect's REST API, with no password in it."""
    scheme = url.partition("://")[0].lower()
    if scheme not in ("http", "https") or "://" not in url:
        raise UsageError(
            f"--connect-url {strip_password(url)!r} is not an http:// or https:// URL; pass "
            "Kafka Connect's REST URL, for example http://connect.example.com:8083."
        )
    if url_has_password(url):
        raise UsageError(
            "--connect-url contains a password; Connect's REST API behind basic auth is not "
            "supported yet: reach it through a proxy that adds the credentials."
        )


def resolve_source(ctx: AppContext, source: str) -> ConnectionRef:
    """A source connection name or URL, refused unless it is PostgreSQL."""
    src = resolve_connection(source, ctx.settings, role="source")
    if src.kind != "postgresql":
        raise UsageError(
            f"Source {source!r} is not a PostgreSQL connection; cdc-tui replicates from "
            "PostgreSQL only, so pass a postgresql:// URL or connection name."
        )
    return src


def resolve_target(ctx: AppContext, target: str) -> ConnectionRef:
    """A target connection name or URL: PostgreSQL or SQL Server."""
    return resolve_connection(target, ctx.settings, role="target")


def check_numeric_policy(policy: str | None, target: ConnectionRef) -> None:
    """A numeric policy names a known policy and only goes with a SQL Server target."""
    if policy is None:
        return
    choices = ", ".join(p.value for p in NumericPolicy)
    if policy not in {p.value for p in NumericPolicy}:
        raise UsageError(f"--numeric-policy {policy!r} is not one of {choices}; choose one.")
    if target.kind != "mssql":
        raise UsageError(
            "--numeric-policy only applies to SQL Server targets (PostgreSQL keeps every "
            "numeric exactly); remove it."
        )


def numeric_policy(pipeline: PipelineRecord) -> NumericPolicy:
    """The pipeline's numeric policy for a SQL Server target; error unless one was chosen."""
    return NumericPolicy(pipeline.numeric_policy or NumericPolicy.ERROR.value)


def refuse_mssql_verb(pipeline: PipelineRecord, verb: str) -> None:
    """Verbs that compare or rebuild PostgreSQL targets only."""
    if pipeline.target.kind == "mssql":
        raise NotAvailableError(
            f"Pipeline {pipeline.name!r} has a SQL Server target, where {verb} is not available "
            f"yet; compare the tables with your own queries (docs/sqlserver.md shows how)."
        )


def list_pipelines(ctx: AppContext) -> list[PipelineRecord]:
    return PipelineRepository(ctx.store).list()
