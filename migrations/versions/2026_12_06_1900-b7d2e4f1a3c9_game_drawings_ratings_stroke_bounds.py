"""game: finished drawings kept compacted, ratings, stroke bounds, results


A finished turn's drawing is kept in `game_turns.drawing` (one batch per stroke or fill, what
undo and clear took back left out) and its rows of `game_strokes` are deleted, so that the
table only holds the turns being played; `likes` and `dislikes` are the players' ratings of
the drawing; `game_state.stroke_bytes` bounds a turn's drawing; `game_results` keeps a
finished game's winners and the players removed from it. The drawings of turns that
ended before this revision are compacted here.

Revision ID: b7d2e4f1a3c9
Revises: 5c1e0d7a9b42
Create Date: 2026-12-06 19:00:00.000000+00:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from aiotutorial.game.drawing import gallery_batches

# revision identifiers, used by Alembic.
revision: str = "b7d2e4f1a3c9"
down_revision: str | Sequence[str] | None = "5c1e0d7a9b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the columns, then compact every finished turn's strokes into its row."""
    op.add_column("game_turns", sa.Column("drawing", sa.dialects.postgresql.JSONB()))
    op.add_column(
        "game_turns",
        sa.Column("likes", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "game_turns",
        sa.Column("dislikes", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "game_state",
        sa.Column("stroke_bytes", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    # The gallery's index covers its whole condition (turns that ended with a word).
    op.drop_index("ix_game_turns_channel_id_ended", table_name="game_turns")
    op.create_index(
        "ix_game_turns_channel_id_ended",
        "game_turns",
        ["channel", "id"],
        postgresql_where=sa.text("ended IS NOT NULL AND word IS NOT NULL"),
    )
    op.create_table(
        "game_results",
        sa.Column("game", sa.Integer(), nullable=False),
        sa.Column("winners", sa.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("kicked", sa.ARRAY(sa.String(length=40)), nullable=False),
        sa.ForeignKeyConstraint(
            ["game"], ["games.id"], name=op.f("fk_game_results_game_games"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("game", name=op.f("pk_game_results")),
    )
    if op.get_context().as_sql:
        return  # offline (--sql): there are no rows to compact in a script
    bind = op.get_bind()
    ended = bind.execute(
        sa.text("SELECT id, word FROM game_turns WHERE ended IS NOT NULL ORDER BY id")
    ).fetchall()
    for turn, word in ended:
        if word is not None:
            rows = bind.execute(
                sa.text("SELECT ops FROM game_strokes WHERE turn = :turn ORDER BY seq"),
                {"turn": turn},
            ).fetchall()
            drawing = gallery_batches([row[0] for row in rows])
            bind.execute(
                sa.text("UPDATE game_turns SET drawing = CAST(:drawing AS jsonb) WHERE id = :id"),
                {"drawing": json.dumps(drawing, separators=(",", ":")), "id": turn},
            )
        bind.execute(sa.text("DELETE FROM game_strokes WHERE turn = :turn"), {"turn": turn})


def downgrade() -> None:
    """Drop the columns; the compacted drawings go back to game_strokes, one row a batch."""
    bind = op.get_bind()
    kept = (
        []
        if op.get_context().as_sql
        else bind.execute(
            sa.text("SELECT id, drawing FROM game_turns WHERE drawing IS NOT NULL")
        ).fetchall()
    )
    for turn, drawing in kept:
        for seq, ops in enumerate(drawing, start=1):
            bind.execute(
                sa.text(
                    "INSERT INTO game_strokes (turn, seq, ops) "
                    "VALUES (:turn, :seq, CAST(:ops AS jsonb))"
                ),
                {"turn": turn, "seq": seq, "ops": json.dumps(ops, separators=(",", ":"))},
            )
    op.drop_table("game_results")
    op.drop_index("ix_game_turns_channel_id_ended", table_name="game_turns")
    op.create_index(
        "ix_game_turns_channel_id_ended",
        "game_turns",
        ["channel", "id"],
        postgresql_where=sa.text("ended IS NOT NULL"),
    )
    op.drop_column("game_state", "stroke_bytes")
    op.drop_column("game_turns", "dislikes")
    op.drop_column("game_turns", "likes")
    op.drop_column("game_turns", "drawing")
