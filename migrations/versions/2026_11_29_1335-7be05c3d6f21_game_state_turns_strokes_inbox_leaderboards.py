"""game: state, turns, strokes, inbox, leaderboards

The draw-and-guess game: one running game per channel (a partial unique index on the
tutorial's games), its state with its owner's lease, its turns and their strokes, the owner's
inbox, the sequence of game event positions, and the leaderboards' totals.

Revision ID: 7be05c3d6f21
Revises: a41c2b7e9d10
Create Date: 2026-11-29 13:34:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "7be05c3d6f21"
down_revision: str | Sequence[str] | None = "a41c2b7e9d10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the game's tables, indexes and sequence."""
    op.execute(sa.schema.CreateSequence(sa.Sequence("game_events")))
    op.create_table(
        "channel_player_totals",
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("user", sa.String(length=40), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("games", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel"], ["chats.channel"], name=op.f("fk_channel_player_totals_channel_chats")
        ),
        sa.ForeignKeyConstraint(
            ["user"], ["users.username"], name=op.f("fk_channel_player_totals_user_users")
        ),
        sa.PrimaryKeyConstraint("channel", "user", name=op.f("pk_channel_player_totals")),
    )
    op.create_index(
        "ix_channel_player_totals_rank",
        "channel_player_totals",
        ["channel", sa.literal_column("points DESC"), "user"],
        unique=False,
    )
    op.create_table(
        "player_totals",
        sa.Column("user", sa.String(length=40), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("games", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user"], ["users.username"], name=op.f("fk_player_totals_user_users")
        ),
        sa.PrimaryKeyConstraint("user", name=op.f("pk_player_totals")),
    )
    op.create_index(
        "ix_player_totals_rank",
        "player_totals",
        [sa.literal_column("points DESC"), "user"],
        unique=False,
    )
    op.create_table(
        "game_inbox",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("game", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("member", sa.String(length=120), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["game"], ["games.id"], name=op.f("fk_game_inbox_game_games"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_game_inbox")),
    )
    op.create_index("ix_game_inbox_game_id", "game_inbox", ["game", "id"], unique=False)
    op.create_table(
        "game_turns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("game", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("number", sa.SmallInteger(), nullable=False),
        sa.Column("round", sa.SmallInteger(), nullable=False),
        sa.Column("drawer", sa.String(length=40), nullable=False),
        sa.Column("word", sa.String(length=30), nullable=True),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel"], ["chats.channel"], name=op.f("fk_game_turns_channel_chats")
        ),
        sa.ForeignKeyConstraint(
            ["drawer"], ["users.username"], name=op.f("fk_game_turns_drawer_users")
        ),
        sa.ForeignKeyConstraint(
            ["game"], ["games.id"], name=op.f("fk_game_turns_game_games"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_game_turns")),
    )
    op.create_index(
        "ix_game_turns_channel_id_ended",
        "game_turns",
        ["channel", "id"],
        unique=False,
        postgresql_where=sa.text("ended IS NOT NULL"),
    )
    op.create_index("ix_game_turns_game", "game_turns", ["game"], unique=False)
    op.create_table(
        "game_state",
        sa.Column("game", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("drawer", sa.String(length=40), nullable=True),
        sa.Column("turn", sa.Integer(), nullable=True),
        sa.Column("strokes", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("players", sa.SmallInteger(), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel"], ["chats.channel"], name=op.f("fk_game_state_channel_chats")
        ),
        sa.ForeignKeyConstraint(
            ["game"], ["games.id"], name=op.f("fk_game_state_game_games"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["turn"], ["game_turns.id"], name=op.f("fk_game_state_turn_game_turns")
        ),
        sa.PrimaryKeyConstraint("game", name=op.f("pk_game_state")),
        sa.UniqueConstraint("channel", name=op.f("uq_game_state_channel")),
    )
    op.create_index(op.f("ix_game_state_lease_until"), "game_state", ["lease_until"], unique=False)
    op.create_table(
        "game_strokes",
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ops", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["turn"],
            ["game_turns.id"],
            name=op.f("fk_game_strokes_turn_game_turns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("turn", "seq", name=op.f("pk_game_strokes")),
    )
    op.create_index(
        "uq_games_channel_running",
        "games",
        ["channel"],
        unique=True,
        postgresql_where=sa.text("finished IS NULL"),
    )


def downgrade() -> None:
    """Remove them."""
    op.drop_index(
        "uq_games_channel_running", table_name="games", postgresql_where=sa.text("finished IS NULL")
    )
    op.drop_table("game_strokes")
    op.drop_index(op.f("ix_game_state_lease_until"), table_name="game_state")
    op.drop_table("game_state")
    op.drop_index("ix_game_turns_game", table_name="game_turns")
    op.drop_index(
        "ix_game_turns_channel_id_ended",
        table_name="game_turns",
        postgresql_where=sa.text("ended IS NOT NULL"),
    )
    op.drop_table("game_turns")
    op.drop_index("ix_game_inbox_game_id", table_name="game_inbox")
    op.drop_table("game_inbox")
    op.drop_index("ix_player_totals_rank", table_name="player_totals")
    op.drop_table("player_totals")
    op.drop_index("ix_channel_player_totals_rank", table_name="channel_player_totals")
    op.drop_table("channel_player_totals")
    op.execute(sa.schema.DropSequence(sa.Sequence("game_events")))
