"""Compliance: products may be age-restricted (verified at checkout).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add products.age_restricted (false for every existing product)."""
    with op.batch_alter_table("products") as batch:
        batch.add_column(
            sa.Column("age_restricted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    """Drop products.age_restricted."""
    with op.batch_alter_table("products") as batch:
        batch.drop_column("age_restricted")
