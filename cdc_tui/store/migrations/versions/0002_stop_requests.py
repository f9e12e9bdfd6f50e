"""Stop requests: `cdc-tui stop` marks the pipeline, the runner sees it at its next heartbeat.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add pipelines.stop_requested_at."""
    with op.batch_alter_table("pipelines") as batch:
        batch.add_column(sa.Column("stop_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop pipelines.stop_requested_at."""
    with op.batch_alter_table("pipelines") as batch:
        batch.drop_column("stop_requested_at")
