"""Initial schema: pipelines, connections, tables, events, step logs, runner leases.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(128)
STATUS = sa.String(32)


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _pipeline_fk(table: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["pipeline_id"],
        ["pipelines.id"],
        name=f"fk_{table}_pipeline_id_pipelines",
        ondelete=ondelete,
    )


def upgrade() -> None:
    """Create every table of the metadata DB."""
    op.create_table(
        "pipelines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("engine", STATUS, nullable=False),
        sa.Column("mode", STATUS, nullable=False),
        sa.Column("target_schema", NAME, nullable=True),
        sa.Column("connect_url", sa.Text(), nullable=True),
        sa.Column("slot_name", NAME, nullable=False),
        sa.Column("publication_name", NAME, nullable=False),
        sa.Column("generation", sa.Integer(), server_default="1", nullable=False),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("full_load_status", STATUS, nullable=False),
        sa.Column("cdc_status", STATUS, nullable=False),
        sa.Column("full_load_lsn", STATUS, nullable=True),
        _ts("full_load_started_at"),
        _ts("full_load_completed_at"),
        sa.Column("applied_lsn", STATUS, nullable=True),
        sa.Column("changes_applied", sa.BigInteger(), server_default="0", nullable=False),
        _ts("last_applied_at"),
        sa.Column("lag_seconds", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pipelines"),
        sa.UniqueConstraint("name", name="uq_pipelines_name"),
    )
    op.create_table(
        "connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", NAME, nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("password_env", NAME, nullable=True),
        sa.Column("password_file", sa.Text(), nullable=True),
        sa.Column("kind", STATUS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_connections"),
        _pipeline_fk("connections", "CASCADE"),
        sa.UniqueConstraint("pipeline_id", "role", name="uq_connections_pipeline_id_role"),
        sa.CheckConstraint("role IN ('source', 'target')", name="ck_connections_role"),
    )
    op.create_table(
        "pipeline_tables",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("schema_name", NAME, nullable=False),
        sa.Column("table_name", NAME, nullable=False),
        sa.Column("state", STATUS, nullable=False),
        sa.Column("rows_copied", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_estimated", sa.BigInteger(), nullable=True),
        _ts("started_at"),
        _ts("completed_at"),
        _ts("updated_at", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_tables"),
        _pipeline_fk("pipeline_tables", "CASCADE"),
        sa.UniqueConstraint(
            "pipeline_id",
            "schema_name",
            "table_name",
            name="uq_pipeline_tables_pipeline_id_schema_name_table_name",
        ),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=True),
        sa.Column("pipeline_name", NAME, nullable=False),
        _ts("at", nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("field", STATUS, nullable=True),
        sa.Column("table_name", sa.Text(), nullable=True),
        sa.Column("from_value", NAME, nullable=True),
        sa.Column("to_value", NAME, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", NAME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        _pipeline_fk("events", "SET NULL"),
    )
    op.create_index("ix_events_pipeline_name_id", "events", ["pipeline_name", "id"])
    op.create_index("ix_events_pipeline_id", "events", ["pipeline_id"])
    op.create_table(
        "step_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        _ts("at", nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_step_logs"),
        _pipeline_fk("step_logs", "CASCADE"),
        sa.CheckConstraint("step IN (0, 1, 2)", name="ck_step_logs_step"),
    )
    op.create_index("ix_step_logs_pipeline_id_id", "step_logs", ["pipeline_id", "id"])
    op.create_index("ix_step_logs_pipeline_id_step_id", "step_logs", ["pipeline_id", "step", "id"])
    op.create_table(
        "runner_leases",
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        _ts("acquired_at", nullable=False),
        _ts("heartbeat_at", nullable=False),
        _ts("expires_at", nullable=False),
        sa.PrimaryKeyConstraint("pipeline_id", name="pk_runner_leases"),
        _pipeline_fk("runner_leases", "CASCADE"),
    )


def downgrade() -> None:
    """Drop every table of the metadata DB."""
    op.drop_table("runner_leases")
    op.drop_index("ix_step_logs_pipeline_id_step_id", table_name="step_logs")
    op.drop_index("ix_step_logs_pipeline_id_id", table_name="step_logs")
    op.drop_table("step_logs")
    op.drop_index("ix_events_pipeline_id", table_name="events")
    op.drop_index("ix_events_pipeline_name_id", table_name="events")
    op.drop_table("events")
    op.drop_table("pipeline_tables")
    op.drop_table("connections")
    op.drop_table("pipelines")
