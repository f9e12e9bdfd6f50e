"""The kafka_connect engine: the source replica identities it changed, and a stalled stream.

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
    """Add pipelines.replica_identity_changes and pipelines.stalled_since."""
    with op.batch_alter_table("pipelines") as batch:
        batch.add_column(sa.Column("replica_identity_changes", sa.Text(), nullable=True))
        batch.add_column(sa.Column("stalled_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("pipelines") as batch:
        batch.drop_column("stalled_since")
        batch.drop_column("replica_identity_changes")
