"""create schema

The tutorial's five tables: users, chats, messages, games and scores.

Revision ID: ec6808f67a7b
Revises:
Create Date: 2026-11-22 09:36:17.318948+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "ec6808f67a7b"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the five tables and their indexes."""
    op.create_table(
        "users",
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("phash", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_users")),
    )
    op.create_table(
        "chats",
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_chats")),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("user", sa.String(length=40), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel"], ["chats.channel"], name=op.f("fk_messages_channel_chats")
        ),
        sa.ForeignKeyConstraint(["user"], ["users.username"], name=op.f("fk_messages_user_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index(op.f("ix_messages_time"), "messages", ["time"], unique=False)
    op.create_table(
        "games",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel"], ["chats.channel"], name=op.f("fk_games_channel_chats")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_games")),
    )
    op.create_index(op.f("ix_games_finished"), "games", ["finished"], unique=False)
    op.create_table(
        "scores",
        sa.Column("game", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=40), nullable=False),
        sa.Column("points", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["game"], ["games.id"], name=op.f("fk_scores_game_games")),
        sa.ForeignKeyConstraint(["user"], ["users.username"], name=op.f("fk_scores_user_users")),
        sa.PrimaryKeyConstraint("game", "user", name=op.f("pk_scores")),
    )


def downgrade() -> None:
    """Drop everything upgrade() created, dependents first."""
    op.drop_table("scores")
    op.drop_index(op.f("ix_games_finished"), table_name="games")
    op.drop_table("games")
    op.drop_index(op.f("ix_messages_time"), table_name="messages")
    op.drop_table("messages")
    op.drop_table("chats")
    op.drop_table("users")
