"""What a worker's sockets do together costs the bus one commit, on the testing database
(rows committed, then removed), heard as the hubs hear it (LISTEN):

- presence rows in group commits: joins and leaves that arrive together are one transaction,
  one statement each way and one ``presence_changed`` a channel; the last word on a user wins;
  a channel deleted meanwhile is skipped, not a failed batch (README, Scaling: a whole
  deployment restarting);
- typing events that arrive together are one publish (one notification).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import unittest
from typing import Any

import aiopg

from aiotutorial.chat.feature import ChatFeature
from aiotutorial.db import dsn_from_url, open_engine
from aiotutorial.realtime import NOTIFY_CHANNEL
from aiotutorial.realtime.presence import PRESENCE_CHANGED, Presence

from ..dbtest import prepare_testing_database


class _Hub:
    """What ``Presence`` uses of a hub, with the real engine."""

    def __init__(self, engine: Any) -> None:
        self.worker = f"test-presence-{secrets.token_hex(4)}"
        self.settings: dict[str, Any] = {}
        self.engine = engine
        self.delivery_engine = engine
        self.members: dict[str, set[Any]] = {}

    def on(self, event_type: str, handler: Any) -> None:
        pass


class _Member:
    is_visitor = False

    def __init__(self, channel: str, user: str) -> None:
        self.channel = channel
        self.user = user


def _events(payload: str) -> list[dict[str, Any]]:
    event = json.loads(payload)
    return event["events"] if "events" in event else [event]


class PresenceRowsTests(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        url = prepare_testing_database()
        self.engine = await open_engine({"db.pool_min": "1", "db.pool_max": "4"}, url=url)
        self.addAsyncCleanup(self._close_engine)
        self.hub = _Hub(self.engine)
        self.presence = Presence(self.hub)
        self.channels = [f"rows-{secrets.token_hex(4)}" for _ in range(3)]
        await self.sql("INSERT INTO chats (channel) SELECT unnest(%s::text[])", self.channels)
        self.addAsyncCleanup(
            self.sql, "DELETE FROM chats WHERE channel = ANY(%s::text[])", self.channels
        )
        self.listener = await aiopg.connect(dsn_from_url(url))
        self.addAsyncCleanup(self.listener.close)
        async with self.listener.cursor() as cursor:
            await cursor.execute(f'LISTEN "{NOTIFY_CHANNEL}"')

    async def _close_engine(self) -> None:
        self.engine.close()
        await self.engine.wait_closed()

    async def sql(self, statement: str, *params: Any) -> list[Any]:
        async with self.engine.acquire() as conn, conn.connection.cursor() as cursor:
            await cursor.execute(statement, params)
            return list(await cursor.fetchall()) if cursor.description else []

    async def rows(self) -> set[tuple[str, str]]:
        found = await self.sql(
            "SELECT channel, username FROM presence WHERE worker = %s", self.hub.worker
        )
        return {(row[0], row[1]) for row in found}

    async def notifications(self) -> list[list[dict[str, Any]]]:
        """The events of each notification heard so far that concern these tests' channels."""
        await asyncio.sleep(0.2)
        heard = []
        while not self.listener.notifies.empty():
            note = self.listener.notifies.get_nowait()
            events = [e for e in _events(note.payload) if e.get("channel") in self.channels]
            if events:
                heard.append(events)
        return heard

    async def announced(self) -> list[str]:
        """The channels of the ``presence_changed`` events heard so far, in order."""
        return [
            event["channel"]
            for events in await self.notifications()
            for event in events
            if event["type"] == PRESENCE_CHANGED
        ]

    async def test_joins_arriving_together_are_one_commit_and_one_event_a_channel(self) -> None:
        members = [_Member(channel, f"user{n}") for n in range(40) for channel in self.channels[:2]]
        await asyncio.gather(*(self.presence.joined(member) for member in members))
        self.assertEqual(await self.rows(), {(m.channel, m.user) for m in members})
        # 80 sockets joining in one moment: one commit, one event for each of the channels.
        self.assertEqual(self.presence.rows.batches, 1)
        self.assertEqual(sorted(await self.announced()), sorted(self.channels[:2]))

        await asyncio.gather(*(self.presence.left(member) for member in members))
        self.assertEqual(await self.rows(), set())
        self.assertEqual(self.presence.rows.batches, 2)
        self.assertEqual(self.presence.local_users, {})

    async def test_the_last_word_on_a_user_wins_within_a_batch(self) -> None:
        stays, goes = _Member(self.channels[0], "stays"), _Member(self.channels[0], "goes")
        await asyncio.gather(
            self.presence.joined(goes), self.presence.joined(stays), self.presence.left(goes)
        )
        self.assertEqual(self.presence.rows.batches, 1)
        self.assertEqual(await self.rows(), {(stays.channel, "stays")})
        # Later, apart: a commit each.
        await self.presence.joined(goes)
        await self.presence.left(stays)
        self.assertEqual(self.presence.rows.batches, 3)
        self.assertEqual(await self.rows(), {(goes.channel, "goes")})
        await self.presence.left(goes)

    async def test_a_channel_deleted_meanwhile_is_skipped_not_a_failed_batch(self) -> None:
        gone = f"rows-gone-{secrets.token_hex(4)}"
        members = [_Member(self.channels[0], "kept"), _Member(gone, "lost")]
        await asyncio.gather(*(self.presence.joined(member) for member in members))
        self.assertEqual(await self.rows(), {(self.channels[0], "kept")})

    async def test_typing_events_arriving_together_are_one_notification(self) -> None:
        typing = ChatFeature.typing_publisher(self.engine)
        events = [
            {"type": "typing", "channel": channel, "user": f"user{n}", "ms": 3000}
            for n in range(30)
            for channel in self.channels
        ]
        await asyncio.gather(*(typing.submit("typing", event) for event in events))
        self.assertEqual(typing.batches, 1)
        heard = await self.notifications()
        self.assertEqual(len(heard), 1)
        self.assertEqual(heard[0], events)
