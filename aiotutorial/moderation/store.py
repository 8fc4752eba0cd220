"""Moderation in PostgreSQL: who moderates a channel, mutes, bans, reports, the log, the
site's administrators and deactivated accounts.

A channel's moderators are its owner and the members it named (``channel_members`` rows with
those roles, in public channels too: there they grant nothing but the role), and every site
administrator (``site_admins``). Each function runs in the caller's transaction, checks who
acts, changes what it changes, and records the action in ``moderation_log`` in the same
transaction: no action without its record, no record of an action that was rolled back.
"""

from __future__ import annotations

import datetime
from typing import Any, cast

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..access.store import DM, MODERATOR, OWNER, PUBLIC, REVOKED, Access, AccessError
from ..accounts.sessions import SESSION_REVOKED
from ..db import schema as db
from ..db.compiled import Prepared
from ..db.types import RowsConnection
from ..realtime import publish

__all__ = [
    "MUTE_MAX_MINUTES",
    "REPORT_REASON_MAX",
    "is_admin",
    "moderates",
    "moderates_with",
    "require_moderator",
    "rank",
    "may_remove",
    "record",
    "muted_until",
    "mute",
    "unmute",
    "ban",
    "unban",
    "is_deactivated",
    "deactivate",
    "reactivate",
    "report",
    "open_reports",
    "settle_report",
    "channel_log",
    "channel_restrictions",
]

MUTE_MAX_MINUTES = 60 * 24 * 30  # a month
REPORT_REASON_MAX = 500


async def is_admin(conn: SAConnection, user: str | None) -> bool:
    """Whether ``user`` is one of the site's administrators."""
    if user is None:
        return False
    found = await conn.scalar(
        sa.select(sa.literal(True)).where(db.site_admins.c.user == user).limit(1)
    )
    return bool(found)


def moderates_with(access: Access, user: str | None) -> bool:
    """``moderates`` for an ``Access`` read with its facts (``access.channel_of``): no query."""
    if user is None:
        return False
    return (access.kind != DM and access.role in (OWNER, MODERATOR)) or access.admin


async def moderates(conn: SAConnection, channel: str, access: Access, user: str | None) -> bool:
    """Whether ``user`` (reading ``channel`` with ``access``) may moderate it: its owner, a
    moderator it named, or a site administrator. Nobody moderates a conversation but the site's
    administrators."""
    if user is None:
        return False
    if access.kind != DM and access.role in (OWNER, MODERATOR):
        return True
    return await is_admin(conn, user)


def _rank_statement() -> Prepared:
    m, s, admins = db.channel_members, db.channel_settings, db.site_admins
    user = sa.bindparam("user", type_=sa.String)
    role = (
        sa.select(m.c.role)
        .select_from(m.outerjoin(s, s.c.channel == m.c.channel))
        .where((m.c.channel == sa.bindparam("channel")) & (m.c.user == user))
        .where(sa.or_(s.c.kind.is_(None), s.c.kind != DM))
        .scalar_subquery()
    )
    return Prepared(sa.select(sa.exists().where(admins.c.user == user), role))


# A user's standing in a channel, in one statement (asked for both sides of a removal).
RANK = _rank_statement()


async def rank(conn: SAConnection, channel: str, user: str) -> int:
    """How far up ``user`` stands in ``channel``: 3 an administrator, 2 its owner, 1 one of
    its moderators, 0 anyone else (a conversation's people included)."""
    rows = await cast(RowsConnection, conn).rows(RANK, channel=channel, user=user)
    admin, role = rows[0]
    if admin:
        return 3
    return {OWNER: 2, MODERATOR: 1}.get(role, 0)


async def may_remove(conn: SAConnection, channel: str, actor: str, author: str) -> bool:
    """Whether ``actor`` may remove ``author``'s message in ``channel``: a moderator the
    members', the owner the moderators' too, an administrator anyone's."""
    mine = await rank(conn, channel, actor)
    if mine == 0:
        return False
    return mine == 3 or mine > await rank(conn, channel, author)


async def require_moderator(
    conn: SAConnection, channel: str, access: Access, user: str | None
) -> None:
    """``moderates`` or a 403 refusal."""
    if not await moderates(conn, channel, access, user):
        raise AccessError(403, "forbidden", "Only the channel's owner and moderators do that.")


async def record(
    conn: SAConnection,
    channel: str | None,
    actor: str,
    action: str,
    *,
    target: str | None = None,
    message: int | None = None,
    detail: str = "",
) -> None:
    """Add an action to the moderation log (in the caller's transaction)."""
    await conn.execute(
        db.moderation_log.insert().values(
            channel=channel,
            actor=actor,
            action=action,
            target=target,
            message=message,
            detail=detail,
            at=sa.func.clock_timestamp(),
        )
    )


# --- mutes ---------------------------------------------------------------------------------

_MUTED = sa.text(
    'SELECT m."user", m.until FROM channel_mutes m WHERE m.channel = :channel '
    'AND m."user" = ANY(CAST(:users AS varchar[])) AND m.until > clock_timestamp()'
)


async def muted_until(
    conn: SAConnection, channel: str, users: list[str]
) -> dict[str, datetime.datetime]:
    """Which of ``users`` are muted in ``channel`` now, and until when (one statement)."""
    if not users:
        return {}
    result = await conn.execute(_MUTED, channel=channel, users=sorted(set(users)))
    return {row.user: row.until for row in await result.fetchall()}


def _minutes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AccessError(400, "bad_parameter", '"minutes" is a whole number of minutes.')
    if not 1 <= value <= MUTE_MAX_MINUTES:
        raise AccessError(
            400, "bad_parameter", f'"minutes" is between 1 and {MUTE_MAX_MINUTES} (a month).'
        )
    return value


async def _not_a_moderator(conn: SAConnection, channel: str, username: str) -> None:
    m = db.channel_members
    role = await conn.scalar(
        sa.select(m.c.role).where((m.c.channel == channel) & (m.c.user == username))
    )
    if role in (OWNER, MODERATOR) or await is_admin(conn, username):
        raise AccessError(409, "moderator", f"{username} moderates this channel.")


async def mute(
    conn: SAConnection, channel: str, by: str, username: str, minutes: Any
) -> datetime.datetime:
    """Mute ``username`` in ``channel`` for ``minutes`` (replacing a mute it had); the end."""
    length = _minutes(minutes)
    await _not_a_moderator(conn, channel, username)
    result = await conn.execute(
        sa.text(
            'INSERT INTO channel_mutes (channel, "user", until, by) VALUES (:channel, :user, '
            "clock_timestamp() + make_interval(mins => :minutes), :by) "
            'ON CONFLICT (channel, "user") DO UPDATE SET until = EXCLUDED.until, by = EXCLUDED.by '
            "RETURNING until"
        ),
        channel=channel,
        user=username,
        minutes=length,
        by=by,
    )
    until: datetime.datetime = (await result.first()).until
    await record(conn, channel, by, "mute", target=username, detail=f"{length} min")
    return until


async def unmute(conn: SAConnection, channel: str, by: str, username: str) -> bool:
    """Lift ``username``'s mute in ``channel``; False when there was none."""
    m = db.channel_mutes
    result = await conn.execute(
        m.delete().where(
            (m.c.channel == channel) & (m.c.user == username) & (m.c.until > sa.func.now())
        )
    )
    if not result.rowcount:
        return False
    await record(conn, channel, by, "unmute", target=username)
    return True


# --- bans ----------------------------------------------------------------------------------


async def ban(conn: SAConnection, channel: str, access: Access, by: str, username: str) -> bool:
    """Ban ``username`` from the public ``channel``: it no longer exists for them, and their
    sockets of it close on every worker. False when they were banned already."""
    if access.kind != PUBLIC:
        raise AccessError(
            409, "not_public", "Remove the member instead: a private channel is members only."
        )
    if username == by:
        raise AccessError(409, "yourself", "You cannot ban yourself.")
    await _not_a_moderator(conn, channel, username)
    result = await conn.execute(
        sa.text(
            'INSERT INTO channel_bans (channel, "user", by, at) VALUES (:channel, :user, :by, '
            "clock_timestamp()) ON CONFLICT DO NOTHING"
        ),
        channel=channel,
        user=username,
        by=by,
    )
    if not result.rowcount:
        return False
    await record(conn, channel, by, "ban", target=username)
    await publish(conn, {"type": REVOKED, "channel": channel, "user": username})
    return True


async def unban(conn: SAConnection, channel: str, by: str, username: str) -> bool:
    """Lift ``username``'s ban from ``channel``; False when there was none."""
    b = db.channel_bans
    result = await conn.execute(b.delete().where((b.c.channel == channel) & (b.c.user == username)))
    if not result.rowcount:
        return False
    await record(conn, channel, by, "unban", target=username)
    return True


async def channel_restrictions(conn: SAConnection, channel: str) -> dict[str, Any]:
    """The channel's mutes in force and its bans, for its moderators."""
    m, b = db.channel_mutes, db.channel_bans
    mutes = await conn.execute(
        sa.select(m.c.user, m.c.until, m.c.by)
        .where((m.c.channel == channel) & (m.c.until > sa.func.now()))
        .order_by(m.c.until)
    )
    bans = await conn.execute(
        sa.select(b.c.user, b.c.by, b.c.at).where(b.c.channel == channel).order_by(b.c.at)
    )
    return {
        "mutes": [
            {"username": row.user, "until": _iso(row.until), "by": row.by}
            for row in await mutes.fetchall()
        ],
        "bans": [
            {"username": row.user, "by": row.by, "at": _iso(row.at)}
            for row in await bans.fetchall()
        ],
    }


def _iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(datetime.UTC).isoformat()


# --- the log -------------------------------------------------------------------------------

LOG_PAGE = 100


async def channel_log(
    conn: SAConnection, channel: str, before: int | None = None, limit: int = LOG_PAGE
) -> list[dict[str, Any]]:
    """The channel's moderation log, newest first (``before``: an entry's id, to page)."""
    log = db.moderation_log
    query = sa.select(log).where(log.c.channel == channel).order_by(log.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(log.c.id < before)
    rows = await (await conn.execute(query)).fetchall()
    return [_log_entry(row) for row in rows]


def _log_entry(row: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": row.id,
        "action": row.action,
        "by": row.actor,
        "at": _iso(row.at),
    }
    if row.channel is not None:
        entry["channel"] = row.channel
    if row.target is not None:
        entry["username"] = row.target
    if row.message is not None:
        entry["message"] = row.message
    if row.detail:
        entry["detail"] = row.detail
    return entry


# --- reports -------------------------------------------------------------------------------


def _reason(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AccessError(400, "bad_parameter", '"reason" is text.')
    reason = value.strip()
    if len(reason) > REPORT_REASON_MAX:
        raise AccessError(
            413, "too_long", f"A report's reason is at most {REPORT_REASON_MAX} characters."
        )
    if "\0" in reason or not _encodable(reason):
        raise AccessError(
            400, "bad_parameter", '"reason" may not hold NUL characters or lone surrogates.'
        )
    return reason


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def report(
    conn: SAConnection, channel: str, message_id: int, reporter: str, reason: Any
) -> bool:
    """``reporter`` reports the message ``message_id`` of ``channel`` (which they may read:
    the caller checked the channel; a message restricted to others is not found). False when
    they had reported it already."""
    text = _reason(reason)
    from ..chat.messages import hidden_from  # (the chat's rule of who reads a message)

    msg = db.messages
    found = await conn.scalar(
        sa.select(msg.c.id).where(
            (msg.c.id == message_id) & (msg.c.channel == channel) & sa.not_(hidden_from(reporter))
        )
    )
    if found is None:
        raise AccessError(404, "not_found", f"There is no message {message_id} in #{channel}.")
    result = await conn.execute(
        sa.text(
            "INSERT INTO message_reports (message, channel, reporter, reason, at) VALUES "
            "(:message, :channel, :reporter, :reason, clock_timestamp()) ON CONFLICT DO NOTHING"
        ),
        message=message_id,
        channel=channel,
        reporter=reporter,
        reason=text,
    )
    return bool(result.rowcount)


async def open_reports(
    conn: SAConnection, *, channel: str | None = None, limit: int = LOG_PAGE
) -> list[dict[str, Any]]:
    """Reports not settled yet, oldest first, each with the message as it is now."""
    r, msg = db.message_reports, db.messages
    query = (
        sa.select(
            r.c.id,
            r.c.message,
            r.c.channel,
            r.c.reporter,
            r.c.reason,
            r.c.at,
            msg.c.user.label("author"),
            msg.c.content,
        )
        .select_from(r.join(msg, msg.c.id == r.c.message))
        .where(r.c.settled.is_(None))
        # A message a game's turn still keeps from some readers stays out until the turn
        # ends: a moderator or an administrator may be one of those it is kept from.
        .where(~sa.exists().where(db.restricted_messages.c.message == r.c.message))
        .order_by(r.c.id)
        .limit(limit)
    )
    if channel is not None:
        query = query.where(r.c.channel == channel)
    rows = await (await conn.execute(query)).fetchall()
    return [
        {
            "id": row.id,
            "message": row.message,
            "channel": row.channel,
            "reporter": row.reporter,
            "reason": row.reason,
            "at": _iso(row.at),
            "author": row.author,
            "content": row.content,
        }
        for row in rows
    ]


async def settle_report(conn: SAConnection, report_id: int, by: str) -> str:
    """Mark a report settled (by a site administrator); the report's channel."""
    r = db.message_reports
    result = await conn.execute(
        r.update()
        .where((r.c.id == report_id) & r.c.settled.is_(None))
        .values(settled_by=by, settled=sa.func.clock_timestamp())
        .returning(r.c.channel, r.c.message)
    )
    row = await result.first()
    if row is None:
        raise AccessError(404, "not_found", f"There is no open report {report_id}.")
    await record(conn, row.channel, by, "settle", message=row.message, detail=f"report {report_id}")
    return str(row.channel)


# --- accounts ------------------------------------------------------------------------------


async def is_deactivated(conn: SAConnection, user: str) -> bool:
    found = await conn.scalar(
        sa.select(sa.literal(True)).where(db.deactivated_accounts.c.user == user).limit(1)
    )
    return bool(found)


async def deactivate(conn: SAConnection, by: str, username: str) -> bool:
    """Deactivate ``username``'s account: it cannot sign in, its sessions end and its sockets
    close at once, as at log-out. False when it was deactivated already."""
    if username == by:
        raise AccessError(409, "yourself", "You cannot deactivate your own account.")
    if await is_admin(conn, username):
        raise AccessError(409, "admin", "Demote an administrator before deactivating them.")
    result = await conn.execute(
        sa.text(
            'INSERT INTO deactivated_accounts ("user", by, at) VALUES (:user, :by, '
            "clock_timestamp()) ON CONFLICT DO NOTHING"
        ),
        user=username,
        by=by,
    )
    if not result.rowcount:
        return False
    await conn.execute(
        sa.update(db.users)
        .where(db.users.c.username == username)
        .values(sessions_valid_after=sa.func.clock_timestamp())
    )
    await publish(conn, {"type": SESSION_REVOKED, "user": username})
    await record(conn, None, by, "deactivate", target=username)
    return True


async def reactivate(conn: SAConnection, by: str, username: str) -> bool:
    """Let ``username`` sign in again; False when it was not deactivated."""
    d = db.deactivated_accounts
    result = await conn.execute(d.delete().where(d.c.user == username))
    if not result.rowcount:
        return False
    await record(conn, None, by, "reactivate", target=username)
    return True
