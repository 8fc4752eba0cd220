"""Live delivery: one LISTEN connection per worker, the channels' local members, presence.

Every event (a message, a presence change) goes through PostgreSQL's NOTIFY, also to the worker
that sent it, so all workers of all servers on one database deliver the same events in the
same order: PostgreSQL delivers notifications in commit order. The listening connection is
re-opened when it drops, and the messages committed meanwhile are read back from the table.

Each websocket is a ``Member`` with a bounded queue of encoded frames and a writer task; a
client too slow to read fills its queue and is dropped with 1008 instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections import defaultdict, deque
from typing import Any

import aiopg
import sqlalchemy as sa
from aiopg.sa.engine import Engine
from pyramid.registry import Registry

from . import chat
from . import database as db
from .aio.websocket import WebsocketConnection
from .throttle import Throttle

__all__ = ["Hub", "Member", "get_hub"]

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
SEND_QUEUE_FRAMES = 256
SEND_TIMEOUT = 20.0
PRESENCE_REFRESH = 10.0
PRESENCE_EXPIRY = 30.0
LISTENER_CHECK = 15.0
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


class Member:
    """One websocket in one channel: frames go out in order through a bounded queue.

    Frames are UTF-8 bytes encoded once per event, however many members get them. A writer
    task exists only while frames are waiting, so an idle socket costs no task.
    """

    def __init__(
        self,
        ws: WebsocketConnection,
        channel: str,
        user: str,
        max_frames: int,
        *,
        after: int | None = None,
    ) -> None:
        self.ws = ws
        self.channel = channel
        self.user = user
        self.max_frames = max_frames
        self.last_id = after or 0  # highest message id queued: later duplicates are skipped
        self._frames: deque[bytes] = deque()
        # With ``after``, live messages are left to the catch-up from the moment the member
        # joins (they are in the table: committed before announced); only the highest live
        # id is noted, so that the catch-up reads on until it has reached it (Hub.catch_up).
        self._catching_up = after is not None
        self.live_max = 0
        self._writer: asyncio.Task | None = None
        self.dropped = False
        self.has_presence = False  # has it had the channel's current presence list?

    def send_frame(self, data: bytes) -> None:
        """Queue a frame that is not a message (presence, errors, ready)."""
        self._put(data)

    def send_message(self, message_id: int, data: bytes) -> None:
        """Queue a message frame unless it was already queued (ids only grow)."""
        if self._catching_up:
            self.live_max = max(self.live_max, message_id)
            return
        if message_id <= self.last_id:
            return
        self.last_id = message_id
        self._put(data)

    async def send_with_backpressure(self, data: bytes) -> None:
        """Queue a frame, first waiting (bounded) until the client has read half its queue:
        a long catch-up streams at the client's pace instead of overflowing the queue."""
        waited = 0.0
        while len(self._frames) >= self.max_frames // 2 and not self.dropped:
            if waited >= SEND_TIMEOUT:
                self._overflow()
                return
            await asyncio.sleep(0.01)
            waited += 0.01
        self._put(data)

    def end_catch_up(self) -> None:
        self._catching_up = False

    def _put(self, data: bytes) -> None:
        if self.dropped:
            return
        if len(self._frames) >= self.max_frames:
            self._overflow()
            return
        self._frames.append(data)
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write())

    def _overflow(self) -> None:
        if not self.dropped:
            log.info("dropping %s in %s: it does not read its frames", self.user, self.channel)
            self.dropped = True
            self._frames.clear()
            asyncio.ensure_future(self.ws.close(POLICY_VIOLATION, "too slow: reconnect"))

    async def _write(self) -> None:
        # No timeout around each send: a send waits only when the socket's buffer is full,
        # and then the queue fills up and the member is dropped (or the heartbeat drops it).
        frames = self._frames
        try:
            while frames and not self.dropped:
                await self.ws.send_encoded(frames.popleft())
        except (ConnectionError, RuntimeError):
            self.dropped = True
            frames.clear()
            if not self.ws.closed:
                with contextlib.suppress(Exception):
                    await self.ws.close(POLICY_VIOLATION, "send failed")
        finally:
            self._writer = None

    async def stop(self) -> None:
        """Let what is queued go out (bounded by SEND_TIMEOUT)."""
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(writer), SEND_TIMEOUT)
            writer.cancel()


class Hub:
    """This worker's channels: local members, the LISTEN connection, presence bookkeeping."""

    def __init__(self, engine: Engine, dsn: str, settings: dict[str, Any]) -> None:
        self.engine = engine
        self.dsn = dsn
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"[:80]
        self.max_frames = int(settings.get("chat.send_queue_frames", SEND_QUEUE_FRAMES))
        self.members: dict[str, set[Member]] = defaultdict(set)
        self.local_users: dict[str, dict[str, int]] = defaultdict(dict)
        self.throttle = Throttle(
            float(settings.get("chat.rate_per_second", chat.RATE_PER_SECOND)),
            int(settings.get("chat.rate_burst", chat.RATE_BURST)),
        )
        self._listener: Any = None
        self._tasks: list[asyncio.Task] = []
        self._presence_dirty: set[str] = set()
        self._presence_last: dict[str, list[str]] = {}
        self._presence_flush: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._closing = False

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        with contextlib.suppress(Exception):
            await self._listen()
        self._tasks = [
            asyncio.ensure_future(self._receive_forever()),
            asyncio.ensure_future(self._refresh_presence_forever()),
        ]

    async def stop(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            async with self.engine.acquire() as conn:
                await self._run_presence_change(
                    conn, sa.delete(db.presence).where(db.presence.c.worker == self.worker)
                )
        if self._listener is not None:
            self._listener.close()

    async def _listen(self) -> None:
        listener = await aiopg.connect(self.dsn, timeout=10, enable_hstore=False)
        async with listener.cursor() as cursor:
            await cursor.execute(f'LISTEN "{chat.NOTIFY_CHANNEL}"')
        self._listener = listener
        self._connected.set()

    async def _receive_forever(self) -> None:
        attempt = 0
        while not self._closing:
            if self._listener is None or self._listener.closed:
                self._connected.clear()
                try:
                    await self._listen()
                except Exception as exc:
                    delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                    attempt += 1
                    log.warning("LISTEN connection failed (%s); retrying in %ss", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                attempt = 0
                log.info("LISTEN connection (re)established; catching up")
                await self._recover()
            try:
                notification = await asyncio.wait_for(self._listener.notifies.get(), LISTENER_CHECK)
            except TimeoutError:
                await self._check_listener()
                continue
            except Exception as exc:
                log.warning("LISTEN connection lost: %s", exc)
                with contextlib.suppress(Exception):
                    self._listener.close()
                continue
            try:
                await self._dispatch(json.loads(notification.payload), notification.payload)
            except Exception:
                log.exception("could not dispatch %r", notification.payload[:200])

    async def _check_listener(self) -> None:
        """A quiet connection may be dead without knowing it: ask it something."""
        try:
            async with self._listener.cursor(timeout=5) as cursor:
                await cursor.execute("SELECT 1")
        except Exception as exc:
            log.warning("LISTEN connection does not answer: %s", exc)
            with contextlib.suppress(Exception):
                self._listener.close()

    async def _recover(self) -> None:
        """After (re)connecting: what was committed meanwhile, and presence again.

        Each channel resumes after the lowest id its members have queued; members skip what
        they already have, so nothing is lost and nothing sent twice.
        """
        for channel, members in list(self.members.items()):
            if not members:
                continue
            after = min(member.last_id for member in members)
            with contextlib.suppress(Exception):
                await self._deliver_after(channel, after)
            self._mark_presence(channel)

    async def _deliver_after(self, channel: str, after: int) -> None:
        while True:
            async with self.engine.acquire() as conn:
                events = await chat.messages_after(conn, channel, after)
            for event in events:
                self._dispatch_message(event, chat.encode(event))
                after = event["id"]
            if len(events) < chat.HISTORY_MAX_LIMIT:
                return

    # --- events -------------------------------------------------------------------------

    async def _dispatch(self, event: dict[str, Any], text: str) -> None:
        kind = event.get("type")
        if kind == "message":
            self._dispatch_message(event, text)
        elif kind == "message_ref":
            if self.members.get(event["channel"]):
                async with self.engine.acquire() as conn:
                    full = await chat.message_by_id(conn, event["id"])
                if full is not None:
                    self._dispatch_message(full, chat.encode(full))
        elif kind == "presence_changed":
            self._mark_presence(event["channel"])

    def _dispatch_message(self, event: dict[str, Any], text: str) -> None:
        members = self.members.get(event["channel"])
        if not members:
            return
        data = text.encode("utf-8")  # once, for every member
        for member in list(members):
            member.send_message(event["id"], data)

    # --- members ------------------------------------------------------------------------

    async def join(self, member: Member) -> None:
        """Start delivering ``member``'s channel to it, and count its user present."""
        self.members[member.channel].add(member)
        users = self.local_users[member.channel]
        users[member.user] = users.get(member.user, 0) + 1
        if users[member.user] == 1:
            await self._upsert_presence(member.channel, member.user)
        else:
            self._mark_presence(member.channel)

    async def leave(self, member: Member) -> None:
        members = self.members.get(member.channel)
        if members is not None:
            members.discard(member)
            if not members:
                del self.members[member.channel]
        users = self.local_users.get(member.channel, {})
        count = users.get(member.user, 0) - 1
        if count > 0:
            users[member.user] = count
        else:
            users.pop(member.user, None)
            if not users:
                self.local_users.pop(member.channel, None)
            with contextlib.suppress(Exception):
                async with self.engine.acquire() as conn:
                    await self._run_presence_change(
                        conn,
                        sa.delete(db.presence).where(
                            (db.presence.c.worker == self.worker)
                            & (db.presence.c.channel == member.channel)
                            & (db.presence.c.username == member.user)
                        ),
                        member.channel,
                    )
        await member.stop()

    async def start_live(self, member: Member) -> None:
        """A member without ``after`` gets messages committed from now on only."""
        async with self.engine.acquire() as conn:
            latest = await chat.latest_id(conn, member.channel)
        member.last_id = max(member.last_id, latest)

    async def catch_up(self, member: Member) -> int:
        """Send a member made with ``after`` every message after it, then the live ones held
        meanwhile (skipping those already sent); the last id sent."""
        try:
            while not member.dropped:
                async with self.engine.acquire() as conn:
                    events = await chat.messages_after(conn, member.channel, member.last_id)
                for event in events:
                    member.last_id = event["id"]
                    await member.send_with_backpressure(chat.encode(event).encode("utf-8"))
                # Live from here once the table has nothing newer and no newer live message
                # was seen; no await between this test and end_catch_up(): none is missed.
                if len(events) < chat.HISTORY_MAX_LIMIT and member.live_max <= member.last_id:
                    break
        finally:
            member.end_catch_up()
        return member.last_id

    async def _upsert_presence(self, channel: str, user: str) -> None:
        statement = sa.text(
            "INSERT INTO presence (worker, channel, username, seen) "
            "VALUES (:worker, :channel, :user, now()) "
            "ON CONFLICT (worker, channel, username) DO UPDATE SET seen = now()"
        ).bindparams(worker=self.worker, channel=channel, user=user)
        async with self.engine.acquire() as conn:
            await self._run_presence_change(conn, statement, channel)

    async def _run_presence_change(
        self, conn: Any, statement: Any, channel: str | None = None
    ) -> None:
        async with conn.begin():
            await conn.execute(statement)
            await chat.notify(conn, {"type": "presence_changed", "channel": channel or "*"})

    # --- presence -----------------------------------------------------------------------

    def _mark_presence(self, channel: str) -> None:
        """Re-read who is in ``channel`` soon (changes arriving together are read once)."""
        if channel == "*":
            self._presence_dirty.update(self.members)
        elif self.members.get(channel):
            self._presence_dirty.add(channel)
        if self._presence_dirty and (self._presence_flush is None or self._presence_flush.done()):
            self._presence_flush = asyncio.ensure_future(self._flush_presence())

    async def _flush_presence(self) -> None:
        # Loops until nothing is left: a change noted while the database was being read is
        # read again in the next round rather than lost.
        while self._presence_dirty:
            await asyncio.sleep(0.02)
            channels, self._presence_dirty = self._presence_dirty, set()
            try:
                async with self.engine.acquire() as conn:
                    for channel in channels:
                        users = await online_users(conn, channel)
                        members = self.members.get(channel)
                        if not members:
                            self._presence_last.pop(channel, None)
                            continue
                        # Everyone hears of a change; when the list is the same, only the
                        # members that have not had it yet (joining N sockets stays O(N)).
                        changed = self._presence_last.get(channel) != users
                        self._presence_last[channel] = users
                        frame = {"type": "presence", "channel": channel, "users": users}
                        data = chat.encode(frame).encode("utf-8")
                        for member in list(members):
                            if changed or not member.has_presence:
                                member.has_presence = True
                                member.send_frame(data)
            except Exception:
                log.warning("could not read presence", exc_info=True)

    async def _refresh_presence_forever(self) -> None:
        """Keep this worker's rows fresh and drop the rows of workers that stopped doing so."""
        while True:
            await asyncio.sleep(PRESENCE_REFRESH)
            try:
                async with self.engine.acquire() as conn:
                    await conn.execute(
                        sa.update(db.presence)
                        .where(db.presence.c.worker == self.worker)
                        .values(seen=sa.func.now())
                    )
                    result = await conn.execute(
                        sa.delete(db.presence)
                        .where(
                            db.presence.c.seen
                            < sa.func.now() - sa.text(f"interval '{int(PRESENCE_EXPIRY)} seconds'")
                        )
                        .returning(db.presence.c.channel)
                    )
                    expired = {row.channel for row in await result.fetchall()}
                    for channel in expired:
                        await chat.notify(conn, {"type": "presence_changed", "channel": channel})
            except Exception:
                log.warning("could not refresh presence", exc_info=True)


async def online_users(conn: Any, channel: str) -> list[str]:
    """Who has a socket open on ``channel`` on any worker of any server."""
    result = await conn.execute(
        sa.select(db.presence.c.username)
        .where(db.presence.c.channel == channel)
        .distinct()
        .order_by(db.presence.c.username)
    )
    return [row.username for row in await result.fetchall()]


async def online_counts(conn: Any) -> dict[str, int]:
    result = await conn.execute(
        sa.select(
            db.presence.c.channel, sa.func.count(sa.distinct(db.presence.c.username))
        ).group_by(db.presence.c.channel)
    )
    return {row[0]: row[1] for row in await result.fetchall()}


def get_hub(registry: Registry) -> Hub:
    hub = registry.get("chat.hub")
    if hub is None:
        raise RuntimeError("the chat hub is not running: startup hooks have not run")
    return hub


async def _start_hub(registry: Registry) -> None:
    from .db import dsn_from_url, get_engine

    dsn = dsn_from_url(registry.settings["sqlalchemy.url"])
    hub = Hub(get_engine(registry), dsn, registry.settings)
    await hub.start()
    registry["chat.hub"] = hub


async def _stop_hub(registry: Registry) -> None:
    hub = registry.pop("chat.hub", None)
    if hub is not None:
        await hub.stop()


def includeme(config: Any) -> None:
    config.add_startup_hook(_start_hub)
    config.add_shutdown_hook(_stop_hub)
