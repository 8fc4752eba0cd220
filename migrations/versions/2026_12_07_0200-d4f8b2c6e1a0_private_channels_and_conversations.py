"""private channels and conversations: who may read a channel that is not public

A channel without a ``channel_settings`` row is public, as every channel was (the tutorial's
``chats`` table is unchanged). A private channel, or a conversation (``dm``: two to eight
people, named from its members), has one, and its members are ``channel_members`` rows, each
with its role (owner, moderator, member). ``channel_readable(channel, user)`` is the one rule
every query that lists or reads channels applies.

Revision ID: d4f8b2c6e1a0
Revises: c9e3a1b5d7f2
Create Date: 2026-12-07 02:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d4f8b2c6e1a0"
down_revision: str | Sequence[str] | None = "c9e3a1b5d7f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READABLE = """
CREATE FUNCTION channel_readable(ch varchar, who varchar) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NOT EXISTS (SELECT FROM channel_settings s WHERE s.channel = ch)
        OR EXISTS (SELECT FROM channel_members m WHERE m.channel = ch AND m."user" = who)
$$
"""


def upgrade() -> None:
    """Add channel_settings, channel_members and channel_readable()."""
    op.create_table(
        "channel_settings",
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('private', 'dm')", name=op.f("ck_channel_settings_kind")),
        sa.ForeignKeyConstraint(
            ["channel"],
            ["chats.channel"],
            name=op.f("fk_channel_settings_channel_chats"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.username"], name=op.f("fk_channel_settings_created_by_users")
        ),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_channel_settings")),
    )
    op.create_table(
        "channel_members",
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("user", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("added", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('owner', 'moderator', 'member')", name=op.f("ck_channel_members_role")
        ),
        sa.ForeignKeyConstraint(
            ["channel"],
            ["chats.channel"],
            name=op.f("fk_channel_members_channel_chats"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user"], ["users.username"], name=op.f("fk_channel_members_user_users")
        ),
        sa.PrimaryKeyConstraint("channel", "user", name=op.f("pk_channel_members")),
    )
    op.create_index("ix_channel_members_user", "channel_members", ["user"])
    op.execute(READABLE)


def downgrade() -> None:
    """Drop channel_readable(), channel_members and channel_settings."""
    op.execute("DROP FUNCTION channel_readable(varchar, varchar)")
    op.drop_index("ix_channel_members_user", table_name="channel_members")
    op.drop_table("channel_members")
    op.drop_table("channel_settings")
