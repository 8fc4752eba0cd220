"""channel notifications: how much of each channel each user wants to hear of

No row is ``all`` (every message counts as unread, mentions notify); ``mentions`` counts and
notifies only what mentions the user; ``nothing`` mutes the channel for them.

Revision ID: d5f7a9b1c3e5
Revises: c4e6a8b0d2f4
Create Date: 2026-12-07 05:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d5f7a9b1c3e5"
down_revision: str | Sequence[str] | None = "c4e6a8b0d2f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add channel_notifications."""
    op.create_table(
        "channel_notifications",
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.CheckConstraint(
            "level IN ('all', 'mentions', 'nothing')", name=op.f("ck_channel_notifications_level")
        ),
        sa.ForeignKeyConstraint(
            ["channel"],
            ["chats.channel"],
            name=op.f("fk_channel_notifications_channel_chats"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["username"], ["users.username"], name=op.f("fk_channel_notifications_username_users")
        ),
        sa.PrimaryKeyConstraint("username", "channel", name=op.f("pk_channel_notifications")),
    )


def downgrade() -> None:
    """Drop channel_notifications."""
    op.drop_table("channel_notifications")
