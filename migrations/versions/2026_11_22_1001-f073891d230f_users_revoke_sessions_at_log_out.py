"""users: revoke sessions at log-out

Revision ID: f073891d230f
Revises: c3b7c36e6f56
Create Date: 2026-11-22 10:01:19.401947+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "f073891d230f"
down_revision: str | Sequence[str] | None = "c3b7c36e6f56"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """users.sessions_valid_after: sessions issued before it are refused."""
    op.add_column(
        "users", sa.Column("sessions_valid_after", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    """Drop the column (log-out then only ends the session it is sent with)."""
    op.drop_column("users", "sessions_valid_after")
