"""SQLAlchemy Core schema: the tutorial's users, chats, messages, games and scores, then what
later migrations add (presence, the bus, restricted messages, the game's state and turns,
leaderboards, the chat's acknowledged sends, edits, read markers and mentions)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

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
    "bus_payloads",
    "restricted_messages",
    "game_state",
    "game_turns",
    "game_strokes",
    "game_inbox",
    "game_events",
    "player_totals",
    "channel_player_totals",
    "throttle_buckets",
    "chat_refs",
    "message_changes",
    "message_change_positions",
    "read_markers",
    "mentions",
    "pins",
    "pin_positions",
    "channel_settings",
    "channel_members",
    "message_replies",
    "message_reactions",
    "avatars",
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
# Full-text search (chat/search.py): the words of each message, in no language's dictionary.
Index(
    "ix_messages_content_fts",
    func.to_tsvector(text("'simple'::regconfig"), messages.c.content),
    postgresql_using="gin",
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

# Events too big for a NOTIFY payload travel by reference to a row here (realtime.bus). As
# short-lived as the notification queue itself, so UNLOGGED; rows are dropped after minutes.
bus_payloads = Table(
    "bus_payloads",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("payload", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False, server_default=func.now()),
    prefixes=["UNLOGGED"],
)

# A message only `readers` may read, live and in the history, until its channel's
# restrictions are released (chat.messages). Holds only the messages of turns in progress.
restricted_messages = Table(
    "restricted_messages",
    metadata,
    Column("message", Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(40), nullable=False, index=True),
    Column("readers", ARRAY(String(40)), nullable=False),
)

# --- the draw-and-guess game (aiotutorial/game/) -------------------------------------------
# `games` and `scores` are the tutorial's: a game of a channel, finished when it ends, and
# each player's running total in it. One game runs per channel at a time:
Index(
    "uq_games_channel_running",
    games.c.channel,
    unique=True,
    postgresql_where=games.c.finished.is_(None),
)

# Each turn: who drew, in which round; the word is written only once the turn has ended (until
# then it lives in game_state.state, which nothing a player can ask for reads).
game_turns = Table(
    "game_turns",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("game", Integer, ForeignKey("games.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(40), ForeignKey("chats.channel"), nullable=False),
    Column("number", SmallInteger, nullable=False),
    Column("round", SmallInteger, nullable=False),
    Column("drawer", String(40), ForeignKey("users.username"), nullable=False),
    Column("word", String(30)),
    Column("started", DateTime(timezone=True), nullable=False),
    Column("ended", DateTime(timezone=True)),
    # Once the turn has ended: its drawing as it stood (what undo and clear took back left
    # out), one batch of operations per stroke or fill, for the gallery; game_strokes then
    # holds nothing of it. And what the others thought of it.
    Column("drawing", JSONB),
    Column("likes", SmallInteger, nullable=False, server_default=text("0")),
    Column("dislikes", SmallInteger, nullable=False, server_default=text("0")),
    Index("ix_game_turns_game", "game"),
)
# The gallery: a channel's last finished turns that have a word, newest first. The whole
# condition in the predicate: a page's ids come from the index alone, whatever the planner
# thinks of how the channel's turns are spread over the table.
Index(
    "ix_game_turns_channel_id_ended",
    game_turns.c.channel,
    game_turns.c.id,
    postgresql_where=game_turns.c.ended.isnot(None) & game_turns.c.word.isnot(None),
)

# The drawing of a turn being played: the drawer's batches of operations in order (seq 1, 2,
# ...). When the turn ends they are compacted into game_turns.drawing and deleted.
game_strokes = Table(
    "game_strokes",
    metadata,
    Column("turn", Integer, ForeignKey("game_turns.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("ops", JSONB, nullable=False),
)

# Positions of game events in a channel's game stream: one sequence for every game, drawn
# while the game's state row is locked, so the positions of a game grow in commit order.
game_events = Sequence("game_events", metadata=metadata)

# A running game: its owner process (a lease, fenced by `epoch`), the columns other workers
# test (phase, drawer, turn, strokes, version), and the rules' whole state in `state` (with the
# secret word: read only by the server, never sent as it is to anyone).
game_state = Table(
    "game_state",
    metadata,
    Column("game", Integer, ForeignKey("games.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(40), ForeignKey("chats.channel"), nullable=False, unique=True),
    Column("owner", String(80), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=False, index=True),
    Column("phase", String(16), nullable=False),
    Column("drawer", String(40)),
    Column("turn", Integer, ForeignKey("game_turns.id")),
    Column("strokes", Integer, nullable=False, server_default=text("0")),
    # Bytes of the current turn's batches: a turn's drawing is bounded (game.store).
    Column("stroke_bytes", Integer, nullable=False, server_default=text("0")),
    Column("version", BigInteger, nullable=False),
    Column("players", SmallInteger, nullable=False),
    Column("state", JSONB, nullable=False),
)

# How a finished game ended beyond its scores: who won (ties share it) and who was removed by
# the others (not ranked), for a socket that missed its end and for the leaderboards.
game_results = Table(
    "game_results",
    metadata,
    Column("game", Integer, ForeignKey("games.id", ondelete="CASCADE"), primary_key=True),
    Column("winners", ARRAY(String(40)), nullable=False),
    Column("kicked", ARRAY(String(40)), nullable=False),
)

# Players' commands waiting for the game's owner (a guess, a word chosen, a kick vote), in
# order; the owner deletes each in the transaction that applies it: applied exactly once,
# even when the owner dies and another process takes over.
game_inbox = Table(
    "game_inbox",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("game", Integer, ForeignKey("games.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("username", String(40), nullable=False),
    Column("member", String(120), nullable=False),
    Column("body", JSONB, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_game_inbox_game_id", "game", "id"),
)

# Leaderboards over finished games, kept up to date when a game finishes (in its transaction):
# each page is read from an index, however many games there were.
player_totals = Table(
    "player_totals",
    metadata,
    Column("user", String(40), ForeignKey("users.username"), primary_key=True),
    Column("points", Integer, nullable=False),
    Column("games", Integer, nullable=False),
    Column("wins", Integer, nullable=False),
)
Index("ix_player_totals_rank", player_totals.c.points.desc(), player_totals.c.user)

channel_player_totals = Table(
    "channel_player_totals",
    metadata,
    Column("channel", String(40), ForeignKey("chats.channel"), primary_key=True),
    Column("user", String(40), ForeignKey("users.username"), primary_key=True),
    Column("points", Integer, nullable=False),
    Column("games", Integer, nullable=False),
    Column("wins", Integer, nullable=False),
)
Index(
    "ix_channel_player_totals_rank",
    channel_player_totals.c.channel,
    channel_player_totals.c.points.desc(),
    channel_player_totals.c.user,
)

# Rate limits shared by every worker and server (log-ins, registrations): a token bucket per
# key; a row whose bucket is full again (`full_at` passed) means nothing and is deleted.
throttle_buckets = Table(
    "throttle_buckets",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("full_at", DateTime(timezone=True), nullable=False, index=True),
)

# --- the chat as people expect it (aiotutorial/chat/) ----------------------------------------
# The tutorial's `messages` table keeps its columns: what the chat added lives beside it.

# A client's own id (`ref`) for each message it sent, per user, for a day: a message sent
# again with the same ref (after a reconnection) is stored once and answered with the stored
# one. `message` is null while another feature (the game) holds the message it took.
chat_refs = Table(
    "chat_refs",
    metadata,
    Column("username", String(40), primary_key=True),
    Column("ref", String(64), primary_key=True),
    Column("message", Integer, ForeignKey("messages.id", ondelete="CASCADE")),
    Column("created", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_chat_refs_created", "created"),
)

# The last change of each edited or deleted message (`messages.content` holds the current
# text, '' once deleted). `position` places the change in its channel's stream of changes:
# drawn while the channel's row is locked, so it grows in commit order within a channel, and
# a client that was away catches up with the changes after the last position it has.
message_change_positions = Sequence("message_change_positions", metadata=metadata)
message_changes = Table(
    "message_changes",
    metadata,
    Column("message", Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(40), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("changed", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    # The last edit or delete (``changed`` is the last change of any kind: a reaction too).
    Column("edited", DateTime(timezone=True)),
    # Who deleted it when it was not its author: a channel's moderator or a site administrator.
    Column("removed_by", String(40)),
    Index("ix_message_changes_channel_position", "channel", "position", unique=True),
)

# How much of a channel a user wants to hear of (no row: ``all``): ``mentions`` counts and
# notifies only mentions, ``nothing`` nothing at all.
channel_notifications = Table(
    "channel_notifications",
    metadata,
    Column("username", String(40), ForeignKey("users.username"), primary_key=True),
    Column(
        "channel", String(40), ForeignKey("chats.channel", ondelete="CASCADE"), primary_key=True
    ),
    Column("level", String(10), nullable=False),
    CheckConstraint("level IN ('all', 'mentions', 'nothing')", name="level"),
)

# The last message id each user has read in each channel they opened (written in batches,
# at most every few seconds per worker): the lobby's unread counts start after it.
read_markers = Table(
    "read_markers",
    metadata,
    Column("username", String(40), ForeignKey("users.username"), primary_key=True),
    Column(
        "channel", String(40), ForeignKey("chats.channel", ondelete="CASCADE"), primary_key=True
    ),
    Column("last_read", Integer, nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# `@username` in a message, for each existing user named (the author excepted): the lobby
# counts a user's mentions after their read marker from the primary key alone.
mentions = Table(
    "mentions",
    metadata,
    Column("username", String(40), ForeignKey("users.username"), primary_key=True),
    Column("channel", String(40), primary_key=True),
    Column("message", Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_mentions_message", "message"),
)

# --- pins (aiotutorial/pins/): messages pinned in a channel ---------------------------------
# A row per message ever pinned in a channel: ``pinned`` says whether it is now; ``position``
# places its last change (pin or unpin) in the channel's stream of pin changes, drawn from
# ``pin_positions`` while the channel's row is locked (so it grows in commit order).
pin_positions = Sequence("pin_positions", metadata=metadata)
pins = Table(
    "pins",
    metadata,
    Column(
        "channel", String(40), ForeignKey("chats.channel", ondelete="CASCADE"), primary_key=True
    ),
    Column("message", Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("pinned", Boolean, nullable=False),
    Column("pinned_by", String(40), ForeignKey("users.username"), nullable=False),
    Column("changed", DateTime(timezone=True), nullable=False),
    Column("position", BigInteger, nullable=False),
    Index("ix_pins_channel_position", "channel", "position", unique=True),
)

# --- replies and reactions (aiotutorial/chat/reactions.py) -------------------------------
# Which message a message answers (the tutorial's ``messages`` stays as it was), and each
# reader's emoji on a message (a change of it in the channel's stream of changes).
message_replies = Table(
    "message_replies",
    metadata,
    Column("message", Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("reply_to", Integer, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Index("ix_message_replies_reply_to", "reply_to"),
)
message_reactions = Table(
    "message_reactions",
    metadata,
    Column("message", Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("user", String(40), ForeignKey("users.username"), primary_key=True),
    Column("emoji", String(64), primary_key=True),
    Column("created", DateTime(timezone=True), nullable=False),
)

# --- access (aiotutorial/access/): private channels and conversations ----------------------
# A channel without a settings row is public. A private channel or a conversation (``dm``) has
# one, and only its members (``channel_members``, each with a role) may read it: the SQL
# function ``channel_readable(channel, user)`` (made by the migration) is that rule in queries.
channel_settings = Table(
    "channel_settings",
    metadata,
    Column(
        "channel", String(40), ForeignKey("chats.channel", ondelete="CASCADE"), primary_key=True
    ),
    Column("kind", String(10), nullable=False),
    Column("created_by", String(40), ForeignKey("users.username"), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    CheckConstraint("kind IN ('private', 'dm')", name="kind"),
)
channel_members = Table(
    "channel_members",
    metadata,
    Column(
        "channel", String(40), ForeignKey("chats.channel", ondelete="CASCADE"), primary_key=True
    ),
    Column("user", String(40), ForeignKey("users.username"), primary_key=True),
    Column("role", String(10), nullable=False),
    Column("added", DateTime(timezone=True), nullable=False),
    CheckConstraint("role IN ('owner', 'moderator', 'member')", name="role"),
    Index("ix_channel_members_user", "user"),
)

# --- moderation (aiotutorial/moderation/) ---------------------------------------------------
# Members who may read a channel but not post in it until ``until``.
channel_mutes = Table(
    "channel_mutes",
    metadata,
    Column(
        "channel", String(40), ForeignKey("chats.channel", ondelete="CASCADE"), primary_key=True
    ),
    Column("user", String(40), ForeignKey("users.username"), primary_key=True),
    Column("until", DateTime(timezone=True), nullable=False),
    Column("by", String(40), ForeignKey("users.username"), nullable=False),
)
# Users banned from a public channel: to them it does not exist (``channel_readable``).
channel_bans = Table(
    "channel_bans",
    metadata,
    Column(
        "channel", String(40), ForeignKey("chats.channel", ondelete="CASCADE"), primary_key=True
    ),
    Column("user", String(40), ForeignKey("users.username"), primary_key=True),
    Column("by", String(40), ForeignKey("users.username"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
# Every moderation action: who did what to whom (or to which message), when.
moderation_log = Table(
    "moderation_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("channel", String(40), ForeignKey("chats.channel", ondelete="CASCADE")),
    Column("actor", String(40), ForeignKey("users.username"), nullable=False),
    Column("action", String(20), nullable=False),
    Column("target", String(40)),
    Column("message", Integer),
    Column("detail", Text, nullable=False, server_default=text("''")),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_moderation_log_channel_id", "channel", "id"),
)
# Messages reported by their readers, until an administrator or a moderator settles them.
message_reports = Table(
    "message_reports",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("message", Integer, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(40), ForeignKey("chats.channel", ondelete="CASCADE"), nullable=False),
    Column("reporter", String(40), ForeignKey("users.username"), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("settled_by", String(40), ForeignKey("users.username")),
    Column("settled", DateTime(timezone=True)),
    Index("uq_message_reports_message_reporter", "message", "reporter", unique=True),
    Index("ix_message_reports_open", "id", postgresql_where=text("settled IS NULL")),
)
# The site's administrators (``python -m aiotutorial.admin promote NAME``), and accounts an
# administrator deactivated (they cannot sign in; their sessions ended when it happened).
site_admins = Table(
    "site_admins",
    metadata,
    Column("user", String(40), ForeignKey("users.username"), primary_key=True),
    Column("since", DateTime(timezone=True), nullable=False),
)
deactivated_accounts = Table(
    "deactivated_accounts",
    metadata,
    Column("user", String(40), ForeignKey("users.username"), primary_key=True),
    Column("by", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# --- uploads (aiotutorial/uploads/) -------------------------------------------------------
# A file uploaded to a channel: what it is served as (``type``: an image's own type, else
# application/octet-stream), its bytes and its thumbnail's in a ``BlobStore`` under ``key`` and
# ``thumb_key`` (``upload_blobs`` by default).
uploads = Table(
    "uploads",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("channel", String(40), ForeignKey("chats.channel", ondelete="CASCADE"), nullable=False),
    Column("user", String(40), ForeignKey("users.username"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    Column("key", String(64), nullable=False),
    Column("thumb_key", String(64)),
    Column("thumb_type", String(100)),
    Column("created", DateTime(timezone=True), nullable=False),
    # A user's uploads of the last day (the daily quota).
    Index("ix_uploads_user_created", "user", "created"),
)
# The bytes of the PostgreSQL blob store (``uploads.storage.PostgresBlobStore``).
upload_blobs = Table(
    "upload_blobs",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
# The uploads a message carries, in the order given; an upload is attached once.
message_uploads = Table(
    "message_uploads",
    metadata,
    Column("upload", BigInteger, ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True),
    Column("message", Integer, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("position", SmallInteger, nullable=False),
    Index("ix_message_uploads_message", "message", "position"),
)

# --- avatars (aiotutorial/avatars/) -------------------------------------------------------
# A user's picture, made square and small by the server (``type``: image/webp or image/png);
# ``etag`` changes with every new picture. No row: the user's initials are shown.
avatars = Table(
    "avatars",
    metadata,
    Column(
        "username",
        String(40),
        ForeignKey("users.username", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("data", LargeBinary, nullable=False),
    Column("type", String(40), nullable=False),
    Column("etag", String(40), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
)

# The tutorial's singular names (`db.user`, `db.message`, ...).
user = users
chat = chats
message = messages
game = games
score = scores
