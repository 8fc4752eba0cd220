"""message search: PostgreSQL full-text search over messages

A GIN index of each message's words (the ``simple`` configuration: no language's stemming or
stop words, so a search in any language finds the words as written), which ``GET /search``
asks with ``websearch_to_tsquery``.

Revision ID: f2b4d6a8c0e1
Revises: e7a1c3d5f9b2
Create Date: 2026-12-07 03:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "f2b4d6a8c0e1"
down_revision: str | Sequence[str] | None = "e7a1c3d5f9b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ix_messages_content_fts."""
    op.execute(
        "CREATE INDEX ix_messages_content_fts ON messages "
        "USING gin (to_tsvector('simple'::regconfig, content))"
    )


def downgrade() -> None:
    """Drop ix_messages_content_fts."""
    op.drop_index("ix_messages_content_fts", table_name="messages")
