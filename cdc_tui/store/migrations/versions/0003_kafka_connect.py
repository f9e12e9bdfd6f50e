"""The kafka_connect engine: the source replica identities it changed, a stalled stream, and
the WAL position a table's incremental-snapshot resync was requested at.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add pipelines.replica_identity_changes, pipelines.stalled_since and
    pipeline_tables.resync_lsn."""
    with op.batch_alter_table("pipelines") as batch:
        batch.add_column(sa.Column("replica_identity_changes", sa.Text(), nullable=True))
        batch.add_column(sa.Column("stalled_since", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("pipeline_tables") as batch:
        batch.add_column(sa.Column("resync_lsn", sa.String(32), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("pipeline_tables") as batch:
        batch.drop_column("resync_lsn")
    with op.batch_alter_table("pipelines") as batch:
        batch.drop_column("stalled_since")
        batch.drop_column("replica_identity_changes")
