"""replies and reactions: a message may answer another; readers react with emoji

``message_replies`` says which message a message answers (the tutorial's ``messages`` table is
unchanged); ``message_reactions`` holds each reader's emoji on a message. A reaction is a
change of the message in its channel's stream of changes (``message_changes``), which is not
an edit: ``message_changes.edited`` now keeps the time of the last edit or delete apart from
``changed`` (the last change of any kind).

Revision ID: e7a1c3d5f9b2
Revises: d4f8b2c6e1a0
Create Date: 2026-12-07 02:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e7a1c3d5f9b2"
down_revision: str | Sequence[str] | None = "d4f8b2c6e1a0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add message_replies, message_reactions and message_changes.edited."""
    op.create_table(
        "message_replies",
        sa.Column("message", sa.Integer(), nullable=False),
        sa.Column("reply_to", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message"],
            ["messages.id"],
            name=op.f("fk_message_replies_message_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reply_to"],
            ["messages.id"],
            name=op.f("fk_message_replies_reply_to_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message", name=op.f("pk_message_replies")),
    )
    op.create_index("ix_message_replies_reply_to", "message_replies", ["reply_to"])
    op.create_table(
        "message_reactions",
        sa.Column("message", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=40), nullable=False),
        sa.Column("emoji", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message"],
            ["messages.id"],
            name=op.f("fk_message_reactions_message_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user"], ["users.username"], name=op.f("fk_message_reactions_user_users")
        ),
        sa.PrimaryKeyConstraint("message", "user", "emoji", name=op.f("pk_message_reactions")),
    )
    op.add_column("message_changes", sa.Column("edited", sa.DateTime(timezone=True)))
    op.execute("UPDATE message_changes SET edited = changed")


def downgrade() -> None:
    """Drop message_changes.edited, message_reactions and message_replies."""
    op.execute("UPDATE message_changes SET changed = edited WHERE edited IS NOT NULL")
    op.drop_column("message_changes", "edited")
    op.drop_table("message_reactions")
    op.drop_index("ix_message_replies_reply_to", table_name="message_replies")
    op.drop_table("message_replies")
