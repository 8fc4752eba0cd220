"""Statements compiled once: the same structure with other values gives the right rows, the
cache is used, and what must not be cached (an IN list, positional parameters, text) is not.
"""

from __future__ import annotations

import secrets
import unittest

import sqlalchemy as sa

from aiotutorial.db import open_engine
from aiotutorial.db import schema as db
from aiotutorial.db.compiled import CachingEngine

from ..dbtest import prepare_testing_database


class EngineCase(unittest.IsolatedAsyncioTestCase):
    """An app engine on the testing database, and four fresh channels."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()

    async def asyncSetUp(self) -> None:
        self.engine = await open_engine({"db.pool_min": "1", "db.pool_max": "2"}, url=self.url)
        self.assertIsInstance(self.engine, CachingEngine)
        self.names = [f"cc-{secrets.token_hex(4)}" for _ in range(4)]
        async with self.engine.acquire() as conn:
            for name in self.names:
                await conn.execute(db.chats.insert().values(channel=name))

    async def asyncTearDown(self) -> None:
        async with self.engine.acquire() as conn:
            await conn.execute(db.chats.delete().where(db.chats.c.channel.in_(self.names)))
        self.engine.close()
        await self.engine.wait_closed()


class CompiledCacheTests(EngineCase):
    def lookup(self, name: str) -> sa.sql.Select:
        return sa.select(db.chats.c.channel).where(db.chats.c.channel == name)

    async def test_one_structure_many_values(self) -> None:
        async with self.engine.acquire() as conn:
            before = len(self.engine._compiled)
            for name in self.names:
                self.assertEqual(await conn.scalar(self.lookup(name)), name)
            self.assertIsNone(await conn.scalar(self.lookup("no-such-channel")))
            self.assertEqual(len(self.engine._compiled), before + 1, "compiled once")
            # Parameters given at execution time override the statement's own.
            query = sa.select(db.chats.c.channel).where(
                db.chats.c.channel == sa.bindparam("wanted")
            )
            for name in self.names[:2]:
                self.assertEqual(await conn.scalar(query, wanted=name), name)

    async def test_limits_and_in_lists_of_any_length(self) -> None:
        async with self.engine.acquire() as conn:
            for size in (1, 3, 2, 4):
                query = (
                    sa.select(db.chats.c.channel)
                    .where(db.chats.c.channel.in_(self.names[:size]))
                    .order_by(db.chats.c.channel)
                    .limit(size)
                )
                rows = await (await conn.execute(query)).fetchall()
                self.assertEqual([row[0] for row in rows], sorted(self.names[:size]))

    async def test_writes_and_returning(self) -> None:
        async with self.engine.acquire() as conn:
            extra = [f"cc-{secrets.token_hex(4)}" for _ in range(2)]
            for name in extra:
                inserted = await conn.scalar(
                    db.chats.insert().values(channel=name).returning(db.chats.c.channel)
                )
                self.assertEqual(inserted, name)
            deleted = await conn.execute(db.chats.delete().where(db.chats.c.channel == extra[0]))
            self.assertEqual(deleted.rowcount, 1)
            self.names.extend(extra)
            # Text and plain strings run as before.
            self.assertEqual(await conn.scalar(sa.text("SELECT :x").bindparams(x=7)), 7)
            self.assertEqual(await conn.scalar("SELECT %s", (8,)), 8)


class PreparedRowsTests(EngineCase):
    """``rows()``: a prepared SELECT's rows as plain tuples, its cursor closed at once."""

    async def test_rows_are_tuples_by_position(self) -> None:
        from aiotutorial.db.compiled import Prepared

        query = Prepared(
            sa.select(db.chats.c.channel, sa.literal(1).label("one"))
            .where(db.chats.c.channel == sa.any_(sa.bindparam("names")))
            .order_by(db.chats.c.channel)
            .limit(sa.bindparam("limit", type_=sa.Integer))
        )
        async with self.engine.acquire() as conn:
            for limit in (1, 3):
                rows = await conn.rows(query, names=self.names, limit=limit)
                self.assertEqual(rows, [(name, 1) for name in sorted(self.names)[:limit]])
                self.assertIs(type(rows[0]), tuple)
                self.assertEqual(len(conn._cursors), 0, "the cursor is closed")

    async def test_scalar_of_a_prepared_statement(self) -> None:
        from aiotutorial.db.compiled import Prepared

        find = Prepared(
            sa.select(db.chats.c.channel).where(db.chats.c.channel == sa.bindparam("n"))
        )
        touch = Prepared(
            db.chats.update()
            .where(db.chats.c.channel == sa.bindparam("n"))
            .values(channel=sa.bindparam("n"))
        )
        async with self.engine.acquire() as conn:
            self.assertEqual(await conn.scalar(find, n=self.names[1]), self.names[1])
            self.assertIsNone(await conn.scalar(find, n="no-such-channel"))
            # A statement that returns no rows has no first column: None, and no error.
            self.assertIsNone(await conn.scalar(touch, n=self.names[1]))
            self.assertEqual(await conn.rows(touch, n=self.names[1]), [])
            self.assertEqual(len(conn._cursors), 0)

    async def test_history_page_shapes_read_the_same_rows(self) -> None:
        from aiotutorial import chat

        channel = self.names[0]
        async with self.engine.acquire() as conn:
            await conn.execute(db.users.insert().values(username=f"u-{channel}", phash=None))
            ids = []
            for number in range(5):
                posted = await chat.post_message(conn, channel, f"u-{channel}", f"m{number}")
                ids.append(posted["id"])
            try:
                newest = await chat.messages_page(conn, channel, limit=3)
                self.assertEqual([m["id"] for m in newest], ids[2:])
                self.assertEqual(newest[0]["content"], "m2")
                self.assertTrue(newest[0]["time"].endswith("+00:00"))
                between = await chat.messages_page(conn, channel, before=ids[4], after=ids[0])
                self.assertEqual([m["id"] for m in between], ids[1:4])
                everyone = await chat.messages_page(conn, channel, visible_to=chat.EVERYONE)
                self.assertEqual([m["id"] for m in everyone], ids)
                self.assertEqual(await chat.latest_id(conn, channel), ids[-1])
            finally:
                await conn.execute(db.messages.delete().where(db.messages.c.channel == channel))
                await conn.execute(db.users.delete().where(db.users.c.username == f"u-{channel}"))
