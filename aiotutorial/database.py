"""SQLAlchemy Core schema of the tutorial: users, chats, messages, games and scores."""

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)

__all__ = [
    "NAMING_CONVENTION",
    "metadata",
    "users",
    "chats",
    "messages",
    "games",
    "scores",
    "user",
    "chat",
    "message",
    "game",
    "score",
    "presence",
]

# Deterministic constraint and index names, so that the names in the migration scripts are the
# ones the metadata would produce: `alembic check` stays clean and downgrades can drop by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Timestamps are `timestamp with time zone`, not the tutorial's naive DateTime: the application
# stores aware UTC datetimes and clients get ISO times with an explicit +00:00 offset, so the
# column must keep the instant unambiguous whatever the server's or the session's TimeZone is.

users = Table(
    "users",
    metadata,
    Column("username", String(40), primary_key=True),
    Column("phash", String(128)),
    # Sessions issued before this instant are refused: logging out revokes every session of
    # the user, although session cookies are signed, not stored.
    Column("sessions_valid_after", DateTime(timezone=True)),
)

chats = Table(
    "chats",
    metadata,
    Column("channel", String(40), primary_key=True),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("channel", String(40), ForeignKey("chats.channel"), nullable=False),
    Column("user", String(40), ForeignKey("users.username"), nullable=False),
    Column("time", DateTime(timezone=True), index=True, nullable=False),
    Column("content", Text, nullable=False, default="", server_default=text("''")),
)

games = Table(
    "games",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("channel", String(40), ForeignKey("chats.channel"), nullable=False),
    Column("finished", DateTime(timezone=True), index=True),
)

scores = Table(
    "scores",
    metadata,
    Column("game", Integer, ForeignKey("games.id"), primary_key=True),
    Column("user", String(40), ForeignKey("users.username"), primary_key=True),
    Column("points", SmallInteger, nullable=False, default=0, server_default=text("0")),
)

# Usernames keep the case they were registered with but are unique regardless of case
# (`Bob` and `bob` cannot both exist); log-in looks them up by lower(username) through this.
Index("uq_users_username_lower", func.lower(users.c.username), unique=True)

# History pages and catch-up read one channel's messages by id ("id > :after", "id < :before",
# newest first): this index serves them directly, however many messages there are.
Index("ix_messages_channel_id", messages.c.channel, messages.c.id)

# Who is connected where: one row per worker process, channel and user with an open socket.
# Ephemeral (UNLOGGED: no WAL, emptied after a crash); workers refresh `seen` while alive and
# rows not refreshed for a while are dropped, so a crashed worker's users do not linger.
presence = Table(
    "presence",
    metadata,
    Column("worker", String(80), primary_key=True),
    Column(
        "channel", String(40), ForeignKey("chats.channel", ondelete="CASCADE"), primary_key=True
    ),
    Column("username", String(40), primary_key=True),
    Column("connections", Integer, nullable=False, server_default=text("1")),
    Column("seen", DateTime(timezone=True), nullable=False, server_default=func.now()),
    prefixes=["UNLOGGED"],
)

# The tutorial's singular names (`db.user`, `db.message`, ...).
user = users
chat = chats
message = messages
game = games
score = scores
