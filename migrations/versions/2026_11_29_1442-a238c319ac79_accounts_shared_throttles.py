"""accounts: shared throttles

Log-in and registration limits move from each worker's memory to PostgreSQL: one token bucket
per key for every worker and server, kept across restarts, rows dropped once full again.

Revision ID: a238c319ac79
Revises: 7be05c3d6f21
Create Date: 2026-11-29 14:42:28.356172+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "a238c319ac79"
down_revision: str | Sequence[str] | None = "7be05c3d6f21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add throttle_buckets."""
    op.create_table(
        "throttle_buckets",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("full_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_throttle_buckets")),
    )
    op.create_index(
        op.f("ix_throttle_buckets_full_at"), "throttle_buckets", ["full_at"], unique=False
    )


def downgrade() -> None:
    """Remove it."""
    op.drop_index(op.f("ix_throttle_buckets_full_at"), table_name="throttle_buckets")
    op.drop_table("throttle_buckets")
