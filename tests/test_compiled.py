"""Statements compiled once: the same structure with other values gives the right rows, the
cache is used, and what must not be cached (an IN list, positional parameters, text) is not.
"""

from __future__ import annotations

import secrets
import unittest

import sqlalchemy as sa

from aiotutorial import database as db
from aiotutorial.compiled import CachingEngine
from aiotutorial.db import open_engine

from .dbtest import prepare_testing_database


class CompiledCacheTests(unittest.IsolatedAsyncioTestCase):
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
