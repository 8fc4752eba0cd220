"""uploads: images and files in the chat

``uploads`` holds what was uploaded to a channel (by whom, its name, the type it is served as,
its size, an image's dimensions) and where its bytes are; ``upload_blobs`` is the default
store of those bytes (``bytea``); ``message_uploads`` says which message carries which upload.

Revision ID: c4e6a8b0d2f4
Revises: b8d0f2a4c6e8
Create Date: 2026-12-07 05:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c4e6a8b0d2f4"
down_revision: str | Sequence[str] | None = "b8d0f2a4c6e8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add uploads, upload_blobs and message_uploads."""
    op.create_table(
        "uploads",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("user", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("thumb_key", sa.String(length=64)),
        sa.Column("thumb_type", sa.String(length=100)),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel"],
            ["chats.channel"],
            name=op.f("fk_uploads_channel_chats"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user"], ["users.username"], name=op.f("fk_uploads_user_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index("ix_uploads_user_created", "uploads", ["user", "created"])
    op.create_table(
        "upload_blobs",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_upload_blobs")),
    )
    op.create_table(
        "message_uploads",
        sa.Column("upload", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Integer(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload"],
            ["uploads.id"],
            name=op.f("fk_message_uploads_upload_uploads"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message"],
            ["messages.id"],
            name=op.f("fk_message_uploads_message_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload", name=op.f("pk_message_uploads")),
    )
    op.create_index("ix_message_uploads_message", "message_uploads", ["message", "position"])


def downgrade() -> None:
    """Drop message_uploads, upload_blobs and uploads."""
    op.drop_index("ix_message_uploads_message", table_name="message_uploads")
    op.drop_table("message_uploads")
    op.drop_table("upload_blobs")
    op.drop_index("ix_uploads_user_created", table_name="uploads")
    op.drop_table("uploads")
