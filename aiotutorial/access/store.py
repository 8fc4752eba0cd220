"""Who may read a channel, in PostgreSQL: ``channel_settings`` (a private channel or a
conversation) and ``channel_members`` (each member's role).

A channel without a settings row is public. Every query that lists or reads channels applies
``channel_readable(channel, user)``, the SQL function the migration made, so that the rule
lives in one place; ``access_of`` is the same rule for one channel, with the reader's role.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..accounts import USERNAME_MAX, username_error
from ..db import schema as db
from ..db.compiled import Prepared
from ..db.types import RowsConnection
from ..realtime import publish

__all__ = [
    "PUBLIC",
    "PRIVATE",
    "DM",
    "OWNER",
    "MODERATOR",
    "MEMBER",
    "ROLES",
    "REVOKED",
    "DM_PREFIX",
    "DM_MAX_PEOPLE",
    "Access",
    "PUBLIC_ACCESS",
    "ACCESS_STATEMENT",
    "CHANNEL_STATEMENT",
    "AccessError",
    "access_of",
    "channel_of",
    "channel_with_account",
    "IDENTIFIED_CHANNEL_STATEMENT",
    "create_private",
    "conversation_name",
    "open_conversation",
    "members",
    "memberships",
    "add_member",
    "remove_member",
    "set_role",
    "canonical_username",
    "claim_public",
    "users_named_like",
    "USERNAME_MAX",
]

PUBLIC, PRIVATE, DM = "public", "private", "dm"
OWNER, MODERATOR, MEMBER = "owner", "moderator", "member"
ROLES = (OWNER, MODERATOR, MEMBER)
# The event that closes a removed member's sockets of the channel, on every worker.
REVOKED = "channel.revoked"
# Conversations are named from their members: the prefix is theirs (no channel is created
# with it).
DM_PREFIX = "dm-"
DM_MAX_PEOPLE = 8


class AccessError(Exception):
    """A refusal: ``status`` (404, 403, 409...), ``error`` (the JSON error code), ``detail``."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Access:
    """What a reader has of a channel it may read: the channel's kind, and the reader's role
    (None on a public channel it has no role in, and for visitors).

    Traversal (``channel_of``) also reads, in the same statement, what the channel's pages ask
    for on every request: ``changes`` (the position of its last change, 0 for none),
    ``last_read`` (the reader's read marker, None if never read or signed out), ``admin``
    (the reader is one of the site's administrators) and ``notify`` (the reader's
    notification level there, None for the default); ``access_of`` leaves them out."""

    kind: str
    role: str | None
    changes: int = 0
    last_read: int | None = None
    admin: bool = False
    notify: str | None = None

    @property
    def manages(self) -> bool:
        """May add and remove members (a private channel's owner or moderators)."""
        return self.role in (OWNER, MODERATOR)


PUBLIC_ACCESS = Access(PUBLIC, None)


ACCESS_STATEMENT = Prepared(
    sa.select(
        db.channel_settings.c.kind,
        db.channel_members.c.role,
        db.channel_bans.c.user.isnot(None).label("banned"),
    )
    .select_from(
        db.chats.outerjoin(db.channel_settings, db.channel_settings.c.channel == db.chats.c.channel)
        .outerjoin(
            db.channel_members,
            (db.channel_members.c.channel == db.chats.c.channel)
            & (db.channel_members.c.user == sa.bindparam("user", type_=sa.String)),
        )
        .outerjoin(
            db.channel_bans,
            (db.channel_bans.c.channel == db.chats.c.channel)
            & (db.channel_bans.c.user == sa.bindparam("user", type_=sa.String)),
        )
    )
    .where(db.chats.c.channel == sa.bindparam("name"))
)


def _facts(user: Any) -> list[Any]:
    """The columns ``channel_of`` adds: each a probe by primary key (or the changes' index)."""
    chat = db.chats.c.channel
    changes, markers = db.message_changes, db.read_markers
    levels, admins = db.channel_notifications, db.site_admins
    return [
        sa.select(sa.func.max(changes.c.position))
        .where(changes.c.channel == chat)
        .scalar_subquery()
        .label("changes"),
        sa.select(markers.c.last_read)
        .where((markers.c.username == user) & (markers.c.channel == chat))
        .scalar_subquery()
        .label("last_read"),
        sa.exists().where(admins.c.user == user).label("admin"),
        sa.select(levels.c.level)
        .where((levels.c.username == user) & (levels.c.channel == chat))
        .scalar_subquery()
        .label("notify"),
    ]


# Traversal's one statement for every request below /channels/{name}: the access rule and
# what the channel's pages read on every request (the history page's last change and read
# marker, the channel page's moderator rights and notification level), in one round trip.
CHANNEL_STATEMENT = Prepared(
    ACCESS_STATEMENT.statement.add_columns(*_facts(sa.bindparam("user", type_=sa.String)))
)


# The same when the session names a user not yet confirmed this request: with that user's
# account row (its name, when its sessions were last revoked; NULLs when there is no such
# account), so that traversal confirms the identity in the same round trip.
_ACCOUNT = db.users.c.username == sa.bindparam("user", type_=sa.String)
IDENTIFIED_CHANNEL_STATEMENT = Prepared(
    CHANNEL_STATEMENT.statement.add_columns(
        sa.select(db.users.c.username).where(_ACCOUNT).scalar_subquery().label("account"),
        sa.select(db.users.c.sessions_valid_after)
        .where(_ACCOUNT)
        .scalar_subquery()
        .label("valid_after"),
    )
)


def _access(row: Any, with_facts: bool) -> Access | None:
    kind, role, banned = row[0], row[1], row[2]
    if kind is not None and role is None:
        return None
    if kind is None and banned:  # banned from a public channel: it is not there for them
        return None
    if not with_facts:
        return Access(kind or PUBLIC, role)
    return Access(kind or PUBLIC, role, row[3] or 0, row[4], bool(row[5]), row[6])


async def channel_of(conn: SAConnection, channel: str, user: str | None) -> Access | None:
    """``access_of`` with the channel's facts (``Access.changes``...), in one statement."""
    rows = await cast(RowsConnection, conn).rows(CHANNEL_STATEMENT, name=channel, user=user)
    return _access(rows[0], True) if rows else None


async def channel_with_account(
    conn: SAConnection, channel: str, user: str
) -> tuple[Access | None, tuple[Any, Any]] | None:
    """``channel_of`` for ``user``, and ``user``'s account row ``(username,
    sessions_valid_after)`` (both None: no such account), in one statement; None when the
    channel does not exist. The access holds only once the account is confirmed."""
    rows = await cast(RowsConnection, conn).rows(
        IDENTIFIED_CHANNEL_STATEMENT, name=channel, user=user
    )
    if not rows:
        return None
    row = rows[0]
    return _access(row, True), (row[-2], row[-1])


async def access_of(conn: SAConnection, channel: str, user: str | None) -> Access | None:
    """``user``'s access to ``channel``; None when it does not exist or is not ``user``'s to
    read (the same answer: a private channel does not exist for who is not in it)."""
    rows = await cast(RowsConnection, conn).rows(ACCESS_STATEMENT, name=channel, user=user)
    return _access(rows[0], False) if rows else None


async def canonical_username(conn: SAConnection, name: Any) -> str:
    """The account ``name`` names (usernames are unique ignoring case), else a 404 refusal."""
    if not isinstance(name, str) or not name:
        raise AccessError(400, "bad_parameter", 'Give a "username".')
    if username_error(name) is not None:  # (NUL, a lone surrogate...: nobody's name)
        raise AccessError(404, "no_such_user", f"There is no user {name[:40]!r}.")
    found = await conn.scalar(
        sa.select(db.users.c.username).where(sa.func.lower(db.users.c.username) == name.lower())
    )
    if found is None:
        raise AccessError(404, "no_such_user", f"There is no user {name[:40]!r}.")
    return str(found)


async def users_named_like(conn: SAConnection, prefix: str, limit: int) -> list[str]:
    """Up to ``limit`` active accounts whose names begin with ``prefix`` (lowercase), by name."""
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    lowered = sa.func.lower(db.users.c.username)
    result = await conn.execute(
        sa.select(db.users.c.username)
        .where(lowered.like(pattern, escape="\\"))
        .where(~sa.exists().where(db.deactivated_accounts.c.user == db.users.c.username))
        .order_by(lowered)
        .limit(limit)
    )
    return [row.username for row in await result.fetchall()]


async def create_private(conn: SAConnection, name: str, owner: str) -> bool:
    """Create the private channel ``name`` owned by ``owner``; False when the name is taken."""
    result = await conn.execute(
        sa.text("INSERT INTO chats (channel) VALUES (:name) ON CONFLICT DO NOTHING"), name=name
    )
    if result.rowcount == 0:
        return False
    await conn.execute(
        db.channel_settings.insert().values(
            channel=name, kind=PRIVATE, created_by=owner, created=sa.func.now()
        )
    )
    await conn.execute(
        db.channel_members.insert().values(
            channel=name, user=owner, role=OWNER, added=sa.func.now()
        )
    )
    return True


def conversation_name(people: list[str]) -> str:
    """The channel of the conversation of ``people`` (canonical usernames): the same for the
    same people, whoever opens it."""
    key = "\0".join(sorted({person.lower() for person in people}))
    return DM_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


async def open_conversation(conn: SAConnection, opener: str, people: list[str]) -> tuple[str, bool]:
    """The conversation of ``opener`` and ``people`` (canonical usernames), made if it is not
    there yet: ``(channel, created)``."""
    everyone = sorted({opener, *people})
    name = conversation_name(everyone)
    result = await conn.execute(
        sa.text("INSERT INTO chats (channel) VALUES (:name) ON CONFLICT DO NOTHING"), name=name
    )
    if result.rowcount == 0:
        kind = await conn.scalar(
            sa.select(db.channel_settings.c.kind).where(db.channel_settings.c.channel == name)
        )
        if kind != DM:  # (a channel made with this name before the prefix was reserved)
            raise AccessError(409, "exists", "That conversation's name is taken.")
        return name, False
    await conn.execute(
        db.channel_settings.insert().values(
            channel=name, kind=DM, created_by=opener, created=sa.func.now()
        )
    )
    await conn.execute(
        db.channel_members.insert().values(
            [
                {"channel": name, "user": person, "role": MEMBER, "added": sa.func.now()}
                for person in everyone
            ]
        )
    )
    # Read up to nothing: everything the others write counts as unread (and as a mention).
    await conn.execute(
        db.read_markers.insert().values(
            [{"username": person, "channel": name, "last_read": 0} for person in everyone]
        )
    )
    return name, True


async def members(conn: SAConnection, channel: str) -> list[dict[str, Any]]:
    """The members of a private channel or conversation: owner first, then moderators, then
    by name."""
    m = db.channel_members
    order = sa.case({OWNER: 0, MODERATOR: 1}, value=m.c.role, else_=2)
    result = await conn.execute(
        sa.select(m.c.user, m.c.role).where(m.c.channel == channel).order_by(order, m.c.user)
    )
    return [{"username": row.user, "role": row.role} for row in await result.fetchall()]


async def memberships(conn: SAConnection, user: str) -> dict[str, dict[str, Any]]:
    """``user``'s private channels and conversations: channel -> ``{"kind", "role",
    "members"}`` (``members``: the others in a conversation)."""
    mine = db.channel_members.alias("mine")
    s = db.channel_settings
    result = await conn.execute(
        sa.select(s.c.channel, s.c.kind, mine.c.role)
        .select_from(mine.join(s, s.c.channel == mine.c.channel))
        .where(mine.c.user == user)
    )
    found = {
        row.channel: {"kind": row.kind, "role": row.role, "members": None}
        for row in await result.fetchall()
    }
    conversations = [name for name, entry in found.items() if entry["kind"] == DM]
    if conversations:
        m = db.channel_members
        others = await conn.execute(
            sa.select(m.c.channel, m.c.user)
            .where(m.c.channel.in_(conversations) & (m.c.user != user))
            .order_by(m.c.channel, m.c.user)
        )
        for row in await others.fetchall():
            entry = found[row.channel]
            entry["members"] = [*(entry["members"] or []), row.user]
        for name in conversations:
            if found[name]["members"] is None:
                found[name]["members"] = []
    return found


async def _role(conn: SAConnection, channel: str, user: str) -> str | None:
    m = db.channel_members
    return await conn.scalar(
        sa.select(m.c.role).where((m.c.channel == channel) & (m.c.user == user)).with_for_update()
    )


def _private_only(access: Access) -> None:
    if access.kind == PUBLIC:
        raise AccessError(
            409, "public", "A public channel is open to everyone: it has no member list."
        )
    if access.kind == DM:
        raise AccessError(
            409, "conversation", "A conversation's members are the ones it began with."
        )


async def add_member(conn: SAConnection, channel: str, by: Access, username: str) -> bool:
    """Add ``username`` to the private channel (by its owner or a moderator); False when it
    was a member already."""
    _private_only(by)
    if not by.manages:
        raise AccessError(403, "forbidden", "Only the channel's owner and moderators add members.")
    result = await conn.execute(
        sa.text(
            'INSERT INTO channel_members (channel, "user", role, added) '
            "VALUES (:channel, :user, 'member', now()) ON CONFLICT DO NOTHING"
        ),
        channel=channel,
        user=username,
    )
    return bool(result.rowcount)


async def remove_member(
    conn: SAConnection, channel: str, by_user: str, by: Access, username: str
) -> None:
    """Remove ``username`` from the private channel: oneself (leaving), or by the owner (any
    other member) or a moderator (a member); their sockets of the channel close."""
    _private_only(by)
    role = await _role(conn, channel, username)
    if role is None:
        raise AccessError(404, "not_a_member", f"{username} is not a member of this channel.")
    if username == by_user:
        if role == OWNER:
            raise AccessError(
                409, "owner", "The owner cannot leave: give the channel another owner first."
            )
    elif not by.manages or role == OWNER or (role == MODERATOR and by.role != OWNER):
        raise AccessError(403, "forbidden", "You may not remove that member.")
    m = db.channel_members
    await conn.execute(m.delete().where((m.c.channel == channel) & (m.c.user == username)))
    await publish(conn, {"type": REVOKED, "channel": channel, "user": username})


async def set_role(conn: SAConnection, channel: str, by: Access, username: str, role: Any) -> str:
    """The owner makes a member a moderator or a member again, or hands the channel over
    (``owner``: the old owner becomes a moderator). Returns the new role."""
    if by.kind == DM:
        _private_only(by)
    if by.role != OWNER:
        raise AccessError(403, "forbidden", "Only the channel's owner changes roles.")
    if role not in ROLES:
        raise AccessError(400, "bad_parameter", '"role" is one of owner, moderator, member.')
    if by.kind == PUBLIC:
        return await _set_public_role(conn, channel, username, role)
    current = await _role(conn, channel, username)
    if current is None:
        raise AccessError(404, "not_a_member", f"{username} is not a member of this channel.")
    if current == OWNER:
        raise AccessError(409, "owner", "Hand the channel to another member to step down.")
    m = db.channel_members
    if role == OWNER:
        await conn.execute(
            m.update().where((m.c.channel == channel) & (m.c.role == OWNER)).values(role=MODERATOR)
        )
    await conn.execute(
        m.update().where((m.c.channel == channel) & (m.c.user == username)).values(role=role)
    )
    return str(role)


async def _set_public_role(conn: SAConnection, channel: str, username: str, role: str) -> str:
    """In a public channel everyone reads; a role row only names its owner and moderators
    (``member``: the row goes)."""
    m = db.channel_members
    current = await _role(conn, channel, username)
    if current == OWNER:
        raise AccessError(409, "owner", "Hand the channel to someone else to step down.")
    if role == OWNER:
        await conn.execute(
            m.update().where((m.c.channel == channel) & (m.c.role == OWNER)).values(role=MODERATOR)
        )
    if role == MEMBER:
        await conn.execute(m.delete().where((m.c.channel == channel) & (m.c.user == username)))
        return MEMBER
    await conn.execute(
        sa.text(
            'INSERT INTO channel_members (channel, "user", role, added) VALUES '
            '(:channel, :user, :role, now()) ON CONFLICT (channel, "user") '
            "DO UPDATE SET role = EXCLUDED.role"
        ),
        channel=channel,
        user=username,
        role=role,
    )
    return role


async def claim_public(conn: SAConnection, channel: str, owner: str) -> None:
    """The creator of a public channel owns it (names its moderators)."""
    await conn.execute(
        db.channel_members.insert().values(
            channel=channel, user=owner, role=OWNER, added=sa.func.now()
        )
    )
