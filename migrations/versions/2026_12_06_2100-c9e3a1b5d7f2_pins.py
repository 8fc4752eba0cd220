"""pins: messages pinned in a channel

The third feature on the realtime hub (``aiotutorial.pins``): a row per message ever pinned in
a channel, whether it is pinned now, and its last change's position in the channel's stream
of pin changes.

Revision ID: c9e3a1b5d7f2
Revises: b7d2e4f1a3c9
Create Date: 2026-12-06 21:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c9e3a1b5d7f2"
down_revision: str | Sequence[str] | None = "b7d2e4f1a3c9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add pins and pin_positions."""
    op.execute(sa.schema.CreateSequence(sa.Sequence("pin_positions")))
    op.create_table(
        "pins",
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Integer(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("pinned_by", sa.String(length=40), nullable=False),
        sa.Column("changed", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel"], ["chats.channel"], name=op.f("fk_pins_channel_chats"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["message"], ["messages.id"], name=op.f("fk_pins_message_messages"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["pinned_by"], ["users.username"], name=op.f("fk_pins_pinned_by_users")
        ),
        sa.PrimaryKeyConstraint("channel", "message", name=op.f("pk_pins")),
    )
    op.create_index("ix_pins_channel_position", "pins", ["channel", "position"], unique=True)


def downgrade() -> None:
    """Drop pins and pin_positions."""
    op.drop_index("ix_pins_channel_position", table_name="pins")
    op.drop_table("pins")
    op.execute(sa.schema.DropSequence(sa.Sequence("pin_positions")))
