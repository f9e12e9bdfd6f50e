"""SQL Server targets: the pipeline's numeric policy for numerics wider than decimal(38).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add pipelines.numeric_policy (NULL means error, the default)."""
    with op.batch_alter_table("pipelines") as batch:
        batch.add_column(sa.Column("numeric_policy", sa.String(32), nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("pipelines") as batch:
        batch.drop_column("numeric_policy")
