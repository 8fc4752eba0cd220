"""chat: history index and presence

The first real schema upgrade: an index on messages (channel, id) for history pages and
catch-up, and the UNLOGGED presence table (who is connected to which channel, per worker).

Revision ID: c3b7c36e6f56
Revises: fc275b6b31cf
Create Date: 2026-11-22 09:54:15.334749+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c3b7c36e6f56"
down_revision: str | Sequence[str] | None = "fc275b6b31cf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the presence table and the (channel, id) index."""
    op.create_table(
        "presence",
        sa.Column("worker", sa.String(length=80), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("connections", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "seen", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["channel"],
            ["chats.channel"],
            name=op.f("fk_presence_channel_chats"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("worker", "channel", "username", name=op.f("pk_presence")),
        prefixes=["UNLOGGED"],
    )
    op.create_index("ix_messages_channel_id", "messages", ["channel", "id"], unique=False)


def downgrade() -> None:
    """Remove them."""
    op.drop_index("ix_messages_channel_id", table_name="messages")
    op.drop_table("presence")
