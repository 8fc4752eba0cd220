"""users: usernames unique regardless of case

Accounts (issue 4): the primary key keeps the case a name was registered with; this index
refuses a second name differing only in case, and serves log-in's case-insensitive lookup.

Revision ID: fc275b6b31cf
Revises: ec6808f67a7b
Create Date: 2026-11-22 09:45:57.660420+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "fc275b6b31cf"
down_revision: str | Sequence[str] | None = "ec6808f67a7b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """A unique index on lower(username): `Bob` and `bob` cannot both register."""
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_username_lower", table_name="users")
