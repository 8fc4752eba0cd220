"""Who is connected to which channel, on every worker of every server.

The UNLOGGED ``presence`` table has one row per worker, channel and user with an open socket.
A change is announced with a ``presence_changed`` event; each worker then re-reads the users of
the channels it has members in (changes arriving together are read once) and sends the list to
its members. Workers re-assert their rows every ``realtime.presence_refresh_seconds`` (10)
and drop rows not refreshed for three times as long, so a crashed worker's users do not
linger, and rows lost in an outage (or with the UNLOGGED table after a crash restart) come
back.

Joins and leaves are written in group commits (``db.GroupCommit``): those that arrive while one
commit is in flight go together in the next, one statement each way and one
``presence_changed`` per channel, so a whole deployment restarting (every socket joining again
at once) costs each worker a few commits, not one commit and one event per socket.

Other features (the game) listen to ``presence_changed`` too, through the hub's registry.

Visitors (members without a user) get the lists but are not in them: no row, not online, never
a game's player.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..db import CONNECTION_ERRORS, run_transaction, transaction
from ..db import schema as db
from ..db.compiled import Prepared
from ..db.groupcommit import GroupCommit
from ..db.types import Connection, RowsConnection
from .bus import encode, publish, publish_many
from .member import Member

__all__ = ["Presence", "PRESENCE_CHANGED", "online_users", "online_counts", "online_anywhere"]

log = logging.getLogger(__name__)

PRESENCE_CHANGED = "presence_changed"
PRESENCE_REFRESH = 10.0
ALL_CHANNELS = "*"
# The most joins and leaves one commit writes (two arrays of names: cheap to send).
PRESENCE_BATCH = 1000


def _reassert() -> Any:
    """A presence row put back, if its channel still exists: the channel is whatever the
    presence table's foreign key names (the realtime layer knows channels, not the chat)."""
    (key,) = db.presence.c.channel.foreign_keys
    channels = key.column
    values = sa.select(
        sa.bindparam("worker"), sa.bindparam("channel"), sa.bindparam("user"), sa.func.now()
    ).where(sa.exists().where(channels == sa.bindparam("channel")))
    insert = postgresql.insert(db.presence).from_select(
        ["worker", "channel", "username", "seen"], values
    )
    return insert.on_conflict_do_update(
        index_elements=["worker", "channel", "username"], set_={"seen": sa.func.now()}
    )


_REASSERT = _reassert()


def _join_many() -> Any:
    """Rows for many (channel, user) pairs of one worker, those whose channel still exists."""
    (key,) = db.presence.c.channel.foreign_keys
    channels = key.column
    return sa.text(
        "INSERT INTO presence (worker, channel, username, seen) "
        "SELECT :worker, j.channel, j.username, now() "
        "FROM unnest(CAST(:channels AS text[]), CAST(:users AS text[])) AS j(channel, username) "
        f"WHERE EXISTS (SELECT 1 FROM {channels.table.name} c "
        f"WHERE c.{channels.name} = j.channel) "
        "ON CONFLICT (worker, channel, username) DO UPDATE SET seen = now()"
    )


_JOIN_MANY = _join_many()
_LEAVE_MANY = sa.text(
    "DELETE FROM presence WHERE worker = :worker AND (channel, username) IN "
    "(SELECT * FROM unnest(CAST(:channels AS text[]), CAST(:users AS text[])))"
)
# A join (True) or a leave (False) of a user on a channel, for the group commit.
_Change = tuple[bool, str, str]


class _Hub(Protocol):
    """What presence uses of the hub that owns it (``realtime.hub.Hub``)."""

    worker: str
    settings: dict[str, Any]
    engine: Any
    delivery_engine: Any
    members: dict[str, set[Member]]

    def on(
        self, event_type: str, handler: Callable[[dict[str, Any], str], Awaitable[None] | None]
    ) -> None: ...


class Presence:
    """One worker's presence rows and the lists it sends to its members."""

    def __init__(self, hub: _Hub) -> None:
        self.hub = hub
        self.refresh_every = float(
            hub.settings.get("realtime.presence_refresh_seconds", PRESENCE_REFRESH)
        )
        # A row not refreshed for three rounds belongs to a worker that is gone.
        self.expiry = 3 * self.refresh_every
        self.local_users: dict[str, dict[str, int]] = defaultdict(dict)
        self._dirty: set[str] = set()
        self._last: dict[str, list[str]] = {}
        self._flush: asyncio.Task[None] | None = None
        self.rows: GroupCommit[_Change, None] = GroupCommit(
            hub.engine, self._write_rows, max_batch=PRESENCE_BATCH
        )

    def register(self) -> None:
        self.hub.on(PRESENCE_CHANGED, self._changed)

    def _changed(self, event: dict[str, Any], text: str) -> None:
        self.mark(event["channel"])

    # --- this worker's rows -----------------------------------------------------------

    async def joined(self, member: Member) -> None:
        if member.is_visitor:
            self.mark(member.channel)  # the list, for it alone (``has_presence``)
            return
        users = self.local_users[member.channel]
        users[member.user] = users.get(member.user, 0) + 1
        if users[member.user] == 1:
            await self.rows.submit(PRESENCE_CHANGED, (True, member.channel, member.user))
        else:
            self.mark(member.channel)

    async def left(self, member: Member) -> None:
        if member.is_visitor:
            return
        users = self.local_users.get(member.channel, {})
        count = users.get(member.user, 0) - 1
        if count > 0:
            users[member.user] = count
            return
        users.pop(member.user, None)
        if not users:
            self.local_users.pop(member.channel, None)
        try:
            await self.rows.submit(PRESENCE_CHANGED, (False, member.channel, member.user))
        except CONNECTION_ERRORS as exc:
            # The next refresh removes it (``refresh`` re-asserts this worker's rows).
            log.warning("could not remove %s from %s: %s", member.user, member.channel, exc)

    async def stop(self) -> None:
        """The list being sent, if any, is not needed any more: the sockets are closing."""
        flush = self._flush
        if flush is not None and not flush.done():
            flush.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flush

    async def forget_worker(self) -> None:
        """On shutdown: this worker's rows go, and everyone hears of it."""
        try:
            await self._change(
                sa.delete(db.presence).where(db.presence.c.worker == self.hub.worker)
            )
        except CONNECTION_ERRORS as exc:
            log.warning("could not remove this worker's presence rows: %s", exc)

    async def _write_rows(self, conn: Connection, changes: list[_Change]) -> list[None]:
        """One group commit's joins and leaves: the last word on each (channel, user) pair
        (a join then a leave in one batch is a leave), one statement each way, one
        ``presence_changed`` a channel."""
        last: dict[tuple[str, str], bool] = {}
        for joined, channel, user in changes:
            last[(channel, user)] = joined
        for statement, wanted in ((_JOIN_MANY, True), (_LEAVE_MANY, False)):
            pairs = [pair for pair, joined in last.items() if joined is wanted]
            if pairs:
                await conn.execute(
                    statement,
                    worker=self.hub.worker,
                    channels=[channel for channel, _ in pairs],
                    users=[user for _, user in pairs],
                )
        channels = sorted({channel for channel, _ in last})
        await publish_many(
            conn, [({"type": PRESENCE_CHANGED, "channel": channel}, None) for channel in channels]
        )
        return [None] * len(changes)

    async def _change(self, statement: Any, channel: str = ALL_CHANNELS) -> None:
        async def change(conn: Connection) -> None:
            await conn.execute(statement)
            await publish(conn, {"type": PRESENCE_CHANGED, "channel": channel})

        await run_transaction(self.hub.engine, change)

    async def refresh_forever(self) -> None:
        """Every ``PRESENCE_REFRESH`` s: re-assert this worker's rows, drop expired ones."""
        while True:
            await asyncio.sleep(self.refresh_every)
            try:
                await self.refresh()
            except CONNECTION_ERRORS as exc:
                log.warning("could not refresh presence: %s", exc)

    async def refresh(self) -> None:
        """Make this worker's rows say what its sockets are (a row lost with an outage or a
        crash restart of the UNLOGGED table comes back; one a failed delete left goes), mark
        them fresh, and drop the rows of workers that stopped refreshing theirs."""
        worker = self.hub.worker
        wanted = {(c, u) for c, users in self.local_users.items() for u in users}
        changed: set[str] = set()
        async with self.hub.engine.acquire() as conn:
            async with transaction(conn):
                result = await conn.execute(
                    sa.update(db.presence)
                    .where(db.presence.c.worker == worker)
                    .values(seen=sa.func.now())
                    .returning(db.presence.c.channel, db.presence.c.username)
                )
                present = {(row.channel, row.username) for row in await result.fetchall()}
                for channel, user in present - wanted:
                    await conn.execute(
                        sa.delete(db.presence).where(
                            (db.presence.c.worker == worker)
                            & (db.presence.c.channel == channel)
                            & (db.presence.c.username == user)
                        )
                    )
                    changed.add(channel)
                for channel, user in wanted - present:
                    await conn.execute(_REASSERT, worker=worker, channel=channel, user=user)
                    changed.add(channel)
                result = await conn.execute(
                    sa.delete(db.presence)
                    .where(
                        db.presence.c.seen
                        < sa.func.now() - sa.text(f"interval '{float(self.expiry)} seconds'")
                    )
                    .returning(db.presence.c.channel)
                )
                changed.update(row.channel for row in await result.fetchall())
                for channel in sorted(changed):
                    await publish(conn, {"type": PRESENCE_CHANGED, "channel": channel})

    # --- the lists members get --------------------------------------------------------

    def mark(self, channel: str) -> None:
        """Re-read who is in ``channel`` soon (changes arriving together are read once)."""
        members = self.hub.members
        if channel == ALL_CHANNELS:
            self._dirty.update(members)
        elif members.get(channel):
            self._dirty.add(channel)
        if self._dirty and (self._flush is None or self._flush.done()):
            self._flush = asyncio.ensure_future(self._send_lists())

    async def _send_lists(self) -> None:
        # Loops until nothing is left: a change noted while the database was being read is
        # read again in the next round rather than lost.
        while self._dirty:
            await asyncio.sleep(0.02)
            channels, self._dirty = self._dirty, set()
            try:
                async with self.hub.delivery_engine.acquire() as conn:
                    for channel in channels:
                        users = await online_users(conn, channel)
                        members = self.hub.members.get(channel)
                        if not members:
                            self._last.pop(channel, None)
                            continue
                        # Everyone hears of a change; when the list is the same, only the
                        # members that have not had it yet (joining N sockets stays O(N)).
                        changed = self._last.get(channel) != users
                        self._last[channel] = users
                        frame = {"type": "presence", "channel": channel, "users": users}
                        data = encode(frame).encode("utf-8")
                        for member in list(members):
                            if changed or not member.has_presence:
                                member.has_presence = True
                                member.send_frame(data)
            except CONNECTION_ERRORS as exc:
                log.warning("could not read presence: %s", exc)


async def online_users(conn: Connection, channel: str) -> list[str]:
    """Who has a socket open on ``channel`` on any worker of any server."""
    result = await conn.execute(
        sa.select(db.presence.c.username)
        .where(db.presence.c.channel == channel)
        .distinct()
        .order_by(db.presence.c.username)
    )
    return [row.username for row in await result.fetchall()]


async def online_anywhere(conn: Connection, users: list[str]) -> set[str]:
    """Which of ``users`` have a socket open on any channel of any worker."""
    if not users:
        return set()
    result = await conn.execute(
        sa.select(db.presence.c.username)
        .where(db.presence.c.username.in_(sorted(set(users))))
        .distinct()
    )
    return {row.username for row in await result.fetchall()}


# Read by every lobby and channel list: built and compiled once, prepared on the server.
ONLINE_COUNTS = Prepared(
    sa.select(db.presence.c.channel, sa.func.count(sa.distinct(db.presence.c.username))).group_by(
        db.presence.c.channel
    )
)


async def online_counts(conn: Connection) -> dict[str, int]:
    """Channel -> how many people are connected there (on any worker)."""
    return dict(await cast(RowsConnection, conn).rows(ONLINE_COUNTS))
