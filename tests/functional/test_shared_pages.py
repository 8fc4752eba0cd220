"""Sockets of a channel catching up from the same message share one read of the page after it
(``ChatStream._read``, through ``realtime.SharedReads``), unless the page holds a message held
back from some readers (a turn's close guesses): then each reads its own, and the held-back
message reaches its audience only. Sockets catching up from different messages read apart.

The messages are committed in the testing database (the stream reads with connections of its
own) and deleted after each test.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import unittest
from typing import Any
from unittest import mock

import psycopg2

from aiotutorial.chat import streams
from aiotutorial.chat.streams import STREAM, ChatStream
from aiotutorial.db import dsn_from_url, open_engine
from aiotutorial.realtime import VISITOR, Member

from ..chatfakes import RecordingSocket
from ..dbtest import prepare_testing_database


class SharedPageTests(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()

    def sql(self, statement: str, *values: Any) -> list[tuple[Any, ...]]:
        connection = psycopg2.connect(dsn_from_url(self.url))
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(statement, values)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    async def asyncSetUp(self) -> None:
        tag = secrets.token_hex(4)
        self.channel = f"sp-{tag}"
        self.users = [f"sp-a-{tag}", f"sp-b-{tag}"]
        self.sql("INSERT INTO users (username) SELECT unnest(%s::text[])", self.users)
        self.sql("INSERT INTO chats (channel) VALUES (%s)", self.channel)
        rows = self.sql(
            'INSERT INTO messages (channel, "user", time, content) SELECT %s, %s, now(), '
            "'message ' || g FROM generate_series(1, 5) AS g RETURNING id",
            self.channel,
            self.users[0],
        )
        self.ids = sorted(row[0] for row in rows)
        self.engine = await open_engine({"db.pool_min": "1", "db.pool_max": "4"}, url=self.url)
        self.stream = ChatStream(mock.Mock(engine=self.engine))

    async def asyncTearDown(self) -> None:
        self.engine.close()
        await self.engine.wait_closed()
        self.sql("DELETE FROM messages WHERE channel = %s", self.channel)
        self.sql("DELETE FROM chats WHERE channel = %s", self.channel)
        self.sql("DELETE FROM users WHERE username = ANY(%s)", self.users)

    def member(self, user: str) -> tuple[Member, RecordingSocket]:
        ws = RecordingSocket()
        return Member(ws, self.channel, user, 64), ws

    async def catch_up(self, members: list[Member], after: int) -> int:
        """Every member catches up from ``after``, together; the statements it took."""
        with mock.patch.object(streams, "messages_after", wraps=streams.messages_after) as reads:
            for member in members:
                self.stream.prepare(member, {"after": after})
            await asyncio.gather(*(self.stream.catch_up(m, {"after": after}) for m in members))
        return reads.call_count

    @staticmethod
    def ids_sent(ws: RecordingSocket) -> list[int]:
        return [json.loads(data)["id"] for data in ws.sent]

    async def test_members_catching_up_from_one_message_share_one_read(self) -> None:
        joined = [self.member(self.users[0]), self.member(self.users[1]), self.member(VISITOR)]
        reads = await self.catch_up([m for m, _ in joined], self.ids[0])
        self.assertEqual(reads, 1)
        for member, ws in joined:
            with self.subTest(user=member.user):
                self.assertEqual(self.ids_sent(ws), self.ids[1:])
                self.assertEqual(member.cursor(STREAM), self.ids[-1])

    async def test_a_held_back_message_is_read_for_each_reader(self) -> None:
        held = self.ids[2]
        self.sql(
            "INSERT INTO restricted_messages (message, channel, readers) VALUES (%s, %s, %s)",
            held,
            self.channel,
            [self.users[0]],
        )
        (reader, reader_ws), (other, other_ws) = (self.member(u) for u in self.users)
        visitor, visitor_ws = self.member(VISITOR)
        reads = await self.catch_up([reader, other, visitor], self.ids[0])
        self.assertEqual(reads, 4)  # the shared one, then one for each
        self.assertEqual(self.ids_sent(reader_ws), self.ids[1:])
        expected = [i for i in self.ids[1:] if i != held]
        self.assertEqual(self.ids_sent(other_ws), expected)
        self.assertEqual(self.ids_sent(visitor_ws), expected)

    async def test_members_catching_up_from_different_messages_read_apart(self) -> None:
        (first, first_ws), (second, second_ws) = (self.member(u) for u in self.users)
        with mock.patch.object(streams, "messages_after", wraps=streams.messages_after) as reads:
            self.stream.prepare(first, {"after": self.ids[0]})
            self.stream.prepare(second, {"after": self.ids[2]})
            await asyncio.gather(
                self.stream.catch_up(first, {"after": self.ids[0]}),
                self.stream.catch_up(second, {"after": self.ids[2]}),
            )
        self.assertEqual(reads.call_count, 2)
        self.assertEqual(self.ids_sent(first_ws), self.ids[1:])
        self.assertEqual(self.ids_sent(second_ws), self.ids[3:])
