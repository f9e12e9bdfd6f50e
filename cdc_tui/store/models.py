"""SQLAlchemy models of the metadata DB; migrations/versions must create exactly this schema."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names let later migrations (and SQLite batch mode) address them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LEN = 128
STATUS_LEN = 32


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so values are stored as naive UTC
    and given back their UTC tzinfo when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the metadata DB; use UTC-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Pipeline(Base):
    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    engine: Mapped[str] = mapped_column(String(STATUS_LEN))
    mode: Mapped[str] = mapped_column(String(STATUS_LEN))
    target_schema: Mapped[str | None] = mapped_column(String(NAME_LEN))
    connect_url: Mapped[str | None] = mapped_column(Text)
    slot_name: Mapped[str] = mapped_column(String(NAME_LEN))
    publication_name: Mapped[str] = mapped_column(String(NAME_LEN))
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    status: Mapped[str] = mapped_column(String(STATUS_LEN))
    full_load_status: Mapped[str] = mapped_column(String(STATUS_LEN))
    cdc_status: Mapped[str] = mapped_column(String(STATUS_LEN))
    full_load_lsn: Mapped[str | None] = mapped_column(String(STATUS_LEN))
    full_load_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    full_load_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    applied_lsn: Mapped[str | None] = mapped_column(String(STATUS_LEN))
    changes_applied: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lag_seconds: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stop_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # JSON [[schema, table, previous identity], ...]: what drop restores on the source.
    replica_identity_changes: Mapped[str | None] = mapped_column(Text)
    stalled_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    numeric_policy: Mapped[str | None] = mapped_column(String(STATUS_LEN))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    connections: Mapped[list[Connection]] = relationship(
        back_populates="pipeline", passive_deletes=True, order_by="Connection.id"
    )
    tables: Mapped[list[PipelineTable]] = relationship(
        back_populates="pipeline", passive_deletes=True, order_by="PipelineTable.position"
    )


class Connection(Base):
    __tablename__ = "connections"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "role"),
        CheckConstraint("role IN ('source', 'target')", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(NAME_LEN))
    url: Mapped[str] = mapped_column(Text)
    password_env: Mapped[str | None] = mapped_column(String(NAME_LEN))
    password_file: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(STATUS_LEN))

    pipeline: Mapped[Pipeline] = relationship(back_populates="connections")


class PipelineTable(Base):
    __tablename__ = "pipeline_tables"
    __table_args__ = (UniqueConstraint("pipeline_id", "schema_name", "table_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    schema_name: Mapped[str] = mapped_column(String(NAME_LEN))
    table_name: Mapped[str] = mapped_column(String(NAME_LEN))
    state: Mapped[str] = mapped_column(String(STATUS_LEN))
    rows_copied: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    rows_estimated: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # kafka_connect: the source WAL position just before this table's resync signal.
    resync_lsn: Mapped[str | None] = mapped_column(String(STATUS_LEN))

    pipeline: Mapped[Pipeline] = relationship(back_populates="tables")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index(None, "pipeline_name", "id"), Index(None, "pipeline_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SET NULL rather than CASCADE: the history of a dropped pipeline is kept for audit.
    pipeline_id: Mapped[int | None] = mapped_column(ForeignKey("pipelines.id", ondelete="SET NULL"))
    pipeline_name: Mapped[str] = mapped_column(String(NAME_LEN))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    field: Mapped[str | None] = mapped_column(String(STATUS_LEN))
    table_name: Mapped[str | None] = mapped_column(Text)
    from_value: Mapped[str | None] = mapped_column(String(NAME_LEN))
    to_value: Mapped[str | None] = mapped_column(String(NAME_LEN))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(NAME_LEN))


class StepLog(Base):
    __tablename__ = "step_logs"
    __table_args__ = (
        Index(None, "pipeline_id", "id"),
        Index(None, "pipeline_id", "step", "id"),
        CheckConstraint("step IN (0, 1, 2)", name="step"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    message: Mapped[str] = mapped_column(Text)


class RunnerLease(Base):
    __tablename__ = "runner_leases"

    pipeline_id: Mapped[int] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True
    )
    owner: Mapped[str] = mapped_column(String(64))
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
