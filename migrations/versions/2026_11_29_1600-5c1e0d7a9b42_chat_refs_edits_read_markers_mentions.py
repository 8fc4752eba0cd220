"""chat: refs, edits and deletes, read markers, mentions

The chat as people expect it: the refs of recent sends per user (a resend is stored once),
the last change of each edited or deleted message with its position in the channel's stream
of changes, each user's read marker per channel, and the mentions of users in messages. The
tutorial's `messages` table keeps its columns.

Revision ID: 5c1e0d7a9b42
Revises: a238c319ac79
Create Date: 2026-11-29 16:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5c1e0d7a9b42"
down_revision: str | Sequence[str] | None = "a238c319ac79"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add chat_refs, message_changes (and its sequence), read_markers and mentions."""
    op.create_table(
        "chat_refs",
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Integer(), nullable=True),
        sa.Column(
            "created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["message"],
            ["messages.id"],
            name=op.f("fk_chat_refs_message_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("username", "ref", name=op.f("pk_chat_refs")),
    )
    op.create_index(op.f("ix_chat_refs_created"), "chat_refs", ["created"], unique=False)

    op.execute(sa.schema.CreateSequence(sa.Sequence("message_change_positions")))
    op.create_table(
        "message_changes",
        sa.Column("message", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("changed", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["message"],
            ["messages.id"],
            name=op.f("fk_message_changes_message_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message", name=op.f("pk_message_changes")),
    )
    op.create_index(
        op.f("ix_message_changes_channel_position"),
        "message_changes",
        ["channel", "position"],
        unique=True,
    )

    op.create_table(
        "read_markers",
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("last_read", sa.Integer(), nullable=False),
        sa.Column(
            "updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["channel"],
            ["chats.channel"],
            name=op.f("fk_read_markers_channel_chats"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["username"], ["users.username"], name=op.f("fk_read_markers_username_users")
        ),
        sa.PrimaryKeyConstraint("username", "channel", name=op.f("pk_read_markers")),
    )

    op.create_table(
        "mentions",
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message"],
            ["messages.id"],
            name=op.f("fk_mentions_message_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["username"], ["users.username"], name=op.f("fk_mentions_username_users")
        ),
        sa.PrimaryKeyConstraint("username", "channel", "message", name=op.f("pk_mentions")),
    )
    op.create_index(op.f("ix_mentions_message"), "mentions", ["message"], unique=False)


def downgrade() -> None:
    """Remove them."""
    op.drop_index(op.f("ix_mentions_message"), table_name="mentions")
    op.drop_table("mentions")
    op.drop_table("read_markers")
    op.drop_index(op.f("ix_message_changes_channel_position"), table_name="message_changes")
    op.drop_table("message_changes")
    op.execute(sa.schema.DropSequence(sa.Sequence("message_change_positions")))
    op.drop_index(op.f("ix_chat_refs_created"), table_name="chat_refs")
    op.drop_table("chat_refs")
