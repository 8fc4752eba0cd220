"""The tutorial's schema on ``aiotutorial_testing``, each test rolled back (chapter two)."""

from __future__ import annotations

import datetime
import secrets
from unittest import mock

import psycopg2
import sqlalchemy as sa

from aiotutorial.db import schema as db

from ..dbtest import DatabaseTest

NOW = datetime.datetime(2026, 11, 22, 10, 0, tzinfo=datetime.UTC)
# Functional tests commit rows into this same database: names here must not collide with theirs.
_RUN = secrets.token_hex(3)
ALICE, BOB, LOBBY = f"alice_{_RUN}", f"bob_{_RUN}", f"lobby_{_RUN}"


class UserTest(DatabaseTest):
    async def test_user(self):
        """The tutorial's own test: insert a user, select it back."""
        await self.conn.execute(db.users.insert().values(username="test", phash="hash"))
        result = await self.conn.execute(db.users.select().where(db.users.c.username == "test"))
        row = await result.first()
        self.assertEqual((row.username, row.phash), ("test", "hash"))

    async def test_username_is_the_primary_key(self):
        await self.conn.execute(db.users.insert().values(username="dup"))
        with self.assertRaises(psycopg2.IntegrityError):
            await self.conn.execute(db.users.insert().values(username="dup"))

    async def test_username_longer_than_40_refused(self):
        with self.assertRaises(psycopg2.DataError):
            await self.conn.execute(db.users.insert().values(username="x" * 41))


class IsolationTest(DatabaseTest):
    """Both tests insert the same row: each passes only if the other's row was rolled back."""

    async def check_alone(self):
        await self.conn.execute(db.chats.insert().values(channel="isolation"))
        count = await self.conn.scalar(
            sa.select(sa.func.count())
            .select_from(db.chats)
            .where(db.chats.c.channel == "isolation")
        )
        self.assertEqual(count, 1)

    async def test_first(self):
        await self.check_alone()

    async def test_second(self):
        await self.check_alone()


class MessageTest(DatabaseTest):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        await self.conn.execute(db.users.insert().values(username=ALICE))
        await self.conn.execute(db.chats.insert().values(channel=LOBBY))

    async def test_message_round_trip_and_default_content(self):
        message_id = await self.conn.scalar(
            db.messages.insert()
            .values(channel=LOBBY, user=ALICE, time=NOW)
            .returning(db.messages.c.id)
        )
        query = db.messages.select().where(db.messages.c.id == message_id)
        row = await (await self.conn.execute(query)).first()
        self.assertEqual(row.id, message_id)
        self.assertEqual(row.content, "")
        self.assertEqual(row.time, NOW)

    async def test_server_default_content_for_raw_insert(self):
        content = await self.conn.scalar(
            'INSERT INTO messages (channel, "user", time) '
            f"VALUES ('{LOBBY}', '{ALICE}', now()) RETURNING content"
        )
        self.assertEqual(content, "")

    async def test_message_in_unknown_channel_refused(self):
        with self.assertRaises(psycopg2.IntegrityError):
            await self.conn.execute(
                db.messages.insert().values(channel="nowhere", user=ALICE, time=NOW, content="x")
            )

    async def test_message_from_unknown_user_refused(self):
        with self.assertRaises(psycopg2.IntegrityError):
            await self.conn.execute(
                db.messages.insert().values(channel=LOBBY, user="mallory", time=NOW)
            )

    async def test_message_needs_a_time(self):
        with self.assertRaises(psycopg2.IntegrityError):
            await self.conn.execute(db.messages.insert().values(channel=LOBBY, user=ALICE))


class PreviousMessageTest(DatabaseTest):
    """A posted message names the one before it that everyone may read (the client's gap
    check, docs/protocol.md): restricted messages are not counted, released ones are."""

    async def asyncSetUp(self):
        await super().asyncSetUp()
        await self.conn.execute(db.users.insert().values(username=ALICE))
        await self.conn.execute(db.chats.insert().values(channel=LOBBY))

    async def announced(self, *posts: tuple[str, list[str] | None]) -> list[tuple[int, int]]:
        """Post each (content, readers); (id, prev) of each as announced on the bus."""
        from aiotutorial.chat import messages

        sent: list[dict] = []

        async def publish_many(conn, events):
            sent.extend(event for event, _ in events)

        with mock.patch.object(messages, "publish_many", publish_many):
            for content, readers in posts:
                await messages.insert_message(self.conn, LOBBY, ALICE, content, readers=readers)
        return [(event["id"], event["prev"]) for event in sent]

    async def test_prev_skips_what_only_some_may_read(self):
        (one, first), (two, second), (three, third) = await self.announced(
            ("one", None), ("two", [BOB]), ("three", None)
        )
        self.assertEqual((first, second, third), (0, one, one))

    async def test_each_reader_of_a_restricted_message_reads_it(self):
        # Restricted to two readers: both read it in the history and the changes, others do
        # not (a reader once had it hidden whenever another reader was listed).
        from aiotutorial.chat import edits, messages

        await self.conn.execute(db.users.insert().values([{"username": BOB}, {"username": "c"}]))
        (one, _), (two, _) = await self.announced(("one", None), ("two", [ALICE, BOB]))
        for reader, expected in (
            (ALICE, [one, two]),
            (BOB, [one, two]),
            ("c", [one]),
            (None, [one]),
        ):
            with self.subTest(reader=reader):
                page = await messages.messages_page(self.conn, LOBBY, visible_to=reader)
                self.assertEqual([m["id"] for m in page], expected)
                after = await messages.messages_after(self.conn, LOBBY, 0, visible_to=reader)
                self.assertEqual([m["id"] for m in after], expected)
        with mock.patch.object(edits, "publish", mock.AsyncMock()):
            row = await edits.message_to_change(self.conn, LOBBY, two, ALICE)
            await edits.change_message(self.conn, row, "two, edited")
        for reader, seen in ((ALICE, True), (BOB, True), ("c", False)):
            with self.subTest(changes_for=reader):
                changes = await edits.changes_after(self.conn, LOBBY, 0, visible_to=reader)
                self.assertEqual(bool(changes), seen)

    async def test_a_released_message_counts_again(self):
        from aiotutorial.chat import messages

        (one, _), (two, _) = await self.announced(("one", None), ("two", [BOB]))
        await messages.release_restricted(self.conn, LOBBY)
        [(three, third)] = await self.announced(("three", None))
        self.assertEqual(third, two)


class GameAndScoreTest(DatabaseTest):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        await self.conn.execute(db.users.insert().values([{"username": ALICE}, {"username": BOB}]))
        await self.conn.execute(db.chats.insert().values(channel=LOBBY))
        self.game = await self.conn.scalar(
            db.games.insert().values(channel=LOBBY).returning(db.games.c.id)
        )

    async def test_game_unfinished_by_default(self):
        finished = await self.conn.scalar(
            sa.select(db.games.c.finished).where(db.games.c.id == self.game)
        )
        self.assertIsNone(finished)

    async def test_game_in_unknown_channel_refused(self):
        with self.assertRaises(psycopg2.IntegrityError):
            await self.conn.execute(db.games.insert().values(channel="nowhere"))

    async def test_points_default_to_zero(self):
        await self.conn.execute(db.scores.insert().values(game=self.game, user=ALICE))
        points = sa.select(db.scores.c.points).where(db.scores.c.game == self.game)
        self.assertEqual(await self.conn.scalar(points), 0)

    async def test_one_score_per_user_and_game(self):
        await self.conn.execute(db.scores.insert().values(game=self.game, user=ALICE, points=3))
        await self.conn.execute(db.scores.insert().values(game=self.game, user=BOB, points=1))
        with self.assertRaises(psycopg2.IntegrityError):
            await self.conn.execute(db.scores.insert().values(game=self.game, user=ALICE))

    async def test_one_running_game_per_channel(self):
        with self.assertRaises(psycopg2.IntegrityError):
            await self.conn.execute(db.games.insert().values(channel=LOBBY))

    async def test_same_user_in_two_games(self):
        # A finished game and the running one (only one may run in a channel at a time).
        other = await self.conn.scalar(
            db.games.insert().values(channel=LOBBY, finished=sa.func.now()).returning(db.games.c.id)
        )
        await self.conn.execute(db.scores.insert().values(game=self.game, user=ALICE))
        await self.conn.execute(db.scores.insert().values(game=other, user=ALICE))
        count = await self.conn.scalar(
            sa.select(sa.func.count()).select_from(db.scores).where(db.scores.c.user == ALICE)
        )
        self.assertEqual(count, 2)

    async def test_score_for_unknown_game_refused(self):
        with self.assertRaises(psycopg2.IntegrityError):
            await self.conn.execute(db.scores.insert().values(game=self.game + 1000, user=BOB))


class IndexTest(DatabaseTest):
    async def indexed_columns(self, table):
        result = await self.conn.execute(
            sa.text(
                "SELECT a.attname FROM pg_index i "
                "JOIN pg_class t ON t.oid = i.indrelid "
                "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey) "
                "WHERE t.relname = :table AND NOT i.indisprimary"
            ),
            table=table,
        )
        return {row[0] for row in await result.fetchall()}

    async def test_message_time_indexed(self):
        self.assertIn("time", await self.indexed_columns("messages"))

    async def test_game_finished_indexed(self):
        self.assertIn("finished", await self.indexed_columns("games"))
