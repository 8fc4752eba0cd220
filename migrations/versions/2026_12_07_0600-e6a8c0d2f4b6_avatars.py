"""avatars: a picture for each user who gave one

``avatars`` holds each user's picture as the server made it (square, small, re-encoded
without metadata), its type and an etag that changes with every new picture. A user without
a row is shown by their initials.

Revision ID: e6a8c0d2f4b6
Revises: d5f7a9b1c3e5
Create Date: 2026-12-07 06:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e6a8c0d2f4b6"
down_revision: str | Sequence[str] | None = "d5f7a9b1c3e5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add avatars."""
    op.create_table(
        "avatars",
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("etag", sa.String(length=40), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
            name=op.f("fk_avatars_username_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_avatars")),
    )


def downgrade() -> None:
    """Drop avatars."""
    op.drop_table("avatars")
