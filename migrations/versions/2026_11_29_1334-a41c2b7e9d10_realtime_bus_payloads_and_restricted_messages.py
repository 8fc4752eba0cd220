"""realtime: bus payloads and restricted messages

The realtime package's table for NOTIFY payloads too big to send (UNLOGGED), and the chat's
restricted messages (readable by some users only until released).

Revision ID: a41c2b7e9d10
Revises: f073891d230f
Create Date: 2026-11-29 13:34:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "a41c2b7e9d10"
down_revision: str | Sequence[str] | None = "f073891d230f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add bus_payloads and restricted_messages."""
    op.create_table(
        "bus_payloads",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column(
            "created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bus_payloads")),
        prefixes=["UNLOGGED"],
    )
    op.create_table(
        "restricted_messages",
        sa.Column("message", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("readers", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.ForeignKeyConstraint(
            ["message"],
            ["messages.id"],
            name=op.f("fk_restricted_messages_message_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message", name=op.f("pk_restricted_messages")),
    )
    op.create_index(
        op.f("ix_restricted_messages_channel"), "restricted_messages", ["channel"], unique=False
    )


def downgrade() -> None:
    """Remove them."""
    op.drop_index(op.f("ix_restricted_messages_channel"), table_name="restricted_messages")
    op.drop_table("restricted_messages")
    op.drop_table("bus_payloads")
