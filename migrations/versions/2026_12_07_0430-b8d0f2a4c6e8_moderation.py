"""moderation: moderators' removals, mutes, bans, reports, the log; site administrators

A message deleted by someone other than its author keeps who did it
(``message_changes.removed_by``). ``channel_mutes`` keeps members who may read but not post
until a time; ``channel_bans`` users to whom a public channel does not exist, which
``channel_readable`` now says too. ``moderation_log`` records every action, ``message_reports``
what readers reported. ``site_admins`` and ``deactivated_accounts`` are the site's own roles.

Revision ID: b8d0f2a4c6e8
Revises: f2b4d6a8c0e1
Create Date: 2026-12-07 04:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b8d0f2a4c6e8"
down_revision: str | Sequence[str] | None = "f2b4d6a8c0e1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READABLE_WITH_BANS = """
CREATE OR REPLACE FUNCTION channel_readable(ch varchar, who varchar) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (NOT EXISTS (SELECT FROM channel_settings s WHERE s.channel = ch)
            AND NOT EXISTS (SELECT FROM channel_bans b WHERE b.channel = ch AND b."user" = who))
        OR EXISTS (SELECT FROM channel_members m WHERE m.channel = ch AND m."user" = who)
$$
"""

READABLE_BEFORE = """
CREATE OR REPLACE FUNCTION channel_readable(ch varchar, who varchar) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NOT EXISTS (SELECT FROM channel_settings s WHERE s.channel = ch)
        OR EXISTS (SELECT FROM channel_members m WHERE m.channel = ch AND m."user" = who)
$$
"""


def _channel_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["channel"], ["chats.channel"], name=op.f(f"fk_{table}_channel_chats"), ondelete="CASCADE"
    )


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["users.username"], name=op.f(f"fk_{table}_{column}_users")
    )


def upgrade() -> None:
    """Add the moderation tables and bans to channel_readable()."""
    op.add_column("message_changes", sa.Column("removed_by", sa.String(length=40)))
    op.create_table(
        "channel_mutes",
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("user", sa.String(length=40), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=40), nullable=False),
        _channel_fk("channel_mutes"),
        _user_fk("channel_mutes", "user"),
        _user_fk("channel_mutes", "by"),
        sa.PrimaryKeyConstraint("channel", "user", name=op.f("pk_channel_mutes")),
    )
    op.create_table(
        "channel_bans",
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("user", sa.String(length=40), nullable=False),
        sa.Column("by", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _channel_fk("channel_bans"),
        _user_fk("channel_bans", "user"),
        _user_fk("channel_bans", "by"),
        sa.PrimaryKeyConstraint("channel", "user", name=op.f("pk_channel_bans")),
    )
    op.create_table(
        "moderation_log",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=40)),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=40)),
        sa.Column("message", sa.Integer()),
        sa.Column("detail", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _channel_fk("moderation_log"),
        _user_fk("moderation_log", "actor"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_log")),
    )
    op.create_index("ix_moderation_log_channel_id", "moderation_log", ["channel", "id"])
    op.create_table(
        "message_reports",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("reporter", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_by", sa.String(length=40)),
        sa.Column("settled", sa.DateTime(timezone=True)),
        sa.ForeignKeyConstraint(
            ["message"],
            ["messages.id"],
            name=op.f("fk_message_reports_message_messages"),
            ondelete="CASCADE",
        ),
        _channel_fk("message_reports"),
        _user_fk("message_reports", "reporter"),
        _user_fk("message_reports", "settled_by"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_reports")),
    )
    op.create_index(
        "uq_message_reports_message_reporter",
        "message_reports",
        ["message", "reporter"],
        unique=True,
    )
    op.create_index(
        "ix_message_reports_open",
        "message_reports",
        ["id"],
        postgresql_where=sa.text("settled IS NULL"),
    )
    op.create_table(
        "site_admins",
        sa.Column("user", sa.String(length=40), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        _user_fk("site_admins", "user"),
        sa.PrimaryKeyConstraint("user", name=op.f("pk_site_admins")),
    )
    op.create_table(
        "deactivated_accounts",
        sa.Column("user", sa.String(length=40), nullable=False),
        sa.Column("by", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _user_fk("deactivated_accounts", "user"),
        sa.PrimaryKeyConstraint("user", name=op.f("pk_deactivated_accounts")),
    )
    op.execute(READABLE_WITH_BANS)


def downgrade() -> None:
    """Drop the moderation tables; channel_readable() without bans."""
    op.execute(READABLE_BEFORE)
    op.drop_table("deactivated_accounts")
    op.drop_table("site_admins")
    op.drop_index("ix_message_reports_open", table_name="message_reports")
    op.drop_index("uq_message_reports_message_reporter", table_name="message_reports")
    op.drop_table("message_reports")
    op.drop_index("ix_moderation_log_channel_id", table_name="moderation_log")
    op.drop_table("moderation_log")
    op.drop_table("channel_bans")
    op.drop_table("channel_mutes")
    op.drop_column("message_changes", "removed_by")
