"""``Prepared`` statements prepared on the server: once per connection, outside transactions,
with the same rows and types as the text; what the server cannot prepare, or forgot, is sent
as text; an engine told not to (``db.prepare = false``, behind a pooler) prepares nothing.
"""

from __future__ import annotations

import secrets
import unittest
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from aiotutorial import chat
from aiotutorial.chat import search
from aiotutorial.db import open_engine
from aiotutorial.db import schema as db
from aiotutorial.db.compiled import Prepared, positional
from aiotutorial.db.transactions import transaction

from ..dbtest import prepare_testing_database

LOOKUP = Prepared(sa.select(db.chats.c.channel).where(db.chats.c.channel == sa.bindparam("name")))


async def prepared_on(conn: Any) -> list[str]:
    """The text of the statements prepared on ``conn``'s session."""
    result = await conn.execute(sa.text("SELECT statement FROM pg_prepared_statements"))
    return [row[0] for row in await result.fetchall()]


class ServerPreparedTests(unittest.IsolatedAsyncioTestCase):
    settings: dict[str, str] = {}

    @classmethod
    def setUpClass(cls) -> None:
        cls.url = prepare_testing_database()

    async def asyncSetUp(self) -> None:
        # One connection: every statement of a test meets the same session.
        settings = {"db.pool_min": "1", "db.pool_max": "1", **self.settings}
        self.engine = await open_engine(settings, url=self.url)
        self.name = f"sp-{secrets.token_hex(4)}"
        async with self.engine.acquire() as conn:
            await conn.execute(db.chats.insert().values(channel=self.name))

    async def asyncTearDown(self) -> None:
        async with self.engine.acquire() as conn:
            await conn.execute(db.messages.delete().where(db.messages.c.channel == self.name))
            await conn.execute(db.chats.delete().where(db.chats.c.channel == self.name))
            await conn.execute(db.users.delete().where(db.users.c.username == self.name))
        self.engine.close()
        await self.engine.wait_closed()


class PreparingTests(ServerPreparedTests):
    async def test_prepared_once_per_connection_and_planned_generically(self) -> None:
        async with self.engine.acquire() as conn:
            for _ in range(3):
                self.assertEqual(await conn.scalar(LOOKUP, name=self.name), self.name)
                self.assertIsNone(await conn.scalar(LOOKUP, name="no-such-channel"))
            statements = await prepared_on(conn)
            self.assertEqual(len([s for s in statements if "FROM chats" in s]), 1, statements)
            mode = await conn.scalar(sa.text("SHOW plan_cache_mode"))
        self.assertEqual(mode, "force_generic_plan")

    async def test_not_prepared_inside_a_transaction_but_executed_there_once_prepared(
        self,
    ) -> None:
        async with self.engine.acquire() as conn:
            async with transaction(conn):
                self.assertEqual(await conn.scalar(LOOKUP, name=self.name), self.name)
                self.assertEqual(await prepared_on(conn), [], "no PREPARE in a transaction")
            self.assertEqual(await conn.scalar(LOOKUP, name=self.name), self.name)
            self.assertEqual(len(await prepared_on(conn)), 1)
            async with transaction(conn):
                self.assertEqual(await conn.scalar(LOOKUP, name=self.name), self.name)

    async def test_values_keep_their_types(self) -> None:
        query = Prepared(
            sa.select(
                sa.literal(1).label("one"),
                sa.literal(True).label("yes"),
                sa.literal("text").label("word"),
                sa.bindparam("untyped").label("number"),
                sa.bindparam("fraction").label("fraction"),
            )
        )
        async with self.engine.acquire() as conn:
            for _ in range(2):  # the PREPARE, then an EXECUTE
                rows = await conn.rows(query, untyped=2**40, fraction=1.5)
                # (psycopg2 writes a float as a numeric literal: a Decimal comes back)
                self.assertEqual(rows, [(1, True, "text", 2**40, Decimal("1.5"))])
            self.assertEqual(len(await prepared_on(conn)), 1)

    async def test_an_id_past_the_integer_range_reads_a_page(self) -> None:
        # Ids are integers; a client may send "before=99999999999" (the view allows 12
        # digits): as text, an integer past 2**31 compares fine, and so it must prepared.
        async with self.engine.acquire() as conn:
            await conn.execute(db.users.insert().values(username=self.name, phash=None))
            await chat.post_message(conn, self.name, self.name, "hi")
            for _ in range(2):
                page = await chat.messages_page(conn, self.name, before=99_999_999_999)
                self.assertEqual([event["content"] for event in page], ["hi"])
                self.assertEqual(await chat.messages_after(conn, self.name, 99_999_999_999), [])

    async def test_a_statement_the_server_cannot_type_is_sent_as_text(self) -> None:
        # "$1 IS NULL": nothing says what type $1 is, and None says nothing either.
        query = Prepared(sa.select(sa.bindparam("value").is_(None)))
        async with self.engine.acquire() as conn:
            self.assertEqual(await conn.scalar(query, value=None), True)
            self.assertEqual(await conn.scalar(query, value=None), True)
            self.assertEqual(await prepared_on(conn), [])
        entry = query.compiled(self.engine.dialect, {"compile_kwargs": {}})
        self.assertFalse(entry.preparable)

    async def test_a_statement_not_for_the_server_is_compiled_once_and_sent_as_text(
        self,
    ) -> None:
        query = Prepared(
            sa.select(db.chats.c.channel).where(db.chats.c.channel == sa.bindparam("name")),
            server=False,
        )
        async with self.engine.acquire() as conn:
            for _ in range(3):
                self.assertEqual(await conn.scalar(query, name=self.name), self.name)
                self.assertEqual(await conn.rows(query, name=self.name), [(self.name,)])
            self.assertEqual(await prepared_on(conn), [])
        entry = query.compiled(self.engine.dialect, {"compile_kwargs": {}})
        self.assertIs(query.compiled(self.engine.dialect, {"compile_kwargs": {}}), entry)
        self.assertFalse(entry.preparable)

    async def test_a_search_is_planned_for_its_words(self) -> None:
        # Its best plan depends on how common the words are: never a generic plan.
        word = f"lantern{secrets.token_hex(4)}"
        async with self.engine.acquire() as conn:
            await conn.execute(db.users.insert().values(username=self.name, phash=None))
            await chat.post_message(conn, self.name, self.name, f"{word} at dusk")
            for _ in range(3):
                for reader in (None, self.name):
                    found = await search.search_messages(conn, word, reader, channel=self.name)
                    self.assertEqual([m["content"] for m in found], [f"{word} at dusk"])
            self.assertEqual(await prepared_on(conn), [])
        # Built once per shape.
        self.assertIs(
            search.search_statement(True, True, False, False),
            search.search_statement(True, True, False, False),
        )

    async def test_a_statement_gone_from_the_server_is_sent_again(self) -> None:
        async with self.engine.acquire() as conn:
            self.assertEqual(await conn.scalar(LOOKUP, name=self.name), self.name)
            await conn.execute(sa.text("DEALLOCATE ALL"))  # as a pooler's reset would
            self.assertEqual(await conn.scalar(LOOKUP, name=self.name), self.name)
            self.assertEqual(await conn.scalar(LOOKUP, name=self.name), self.name)
            self.assertEqual(len(await prepared_on(conn)), 1, "prepared again")

    def test_positional_text(self) -> None:
        text, names = positional("SELECT %(a)s, %(b)s, %(a)s, 'x%%' LIKE %(c_1)s")
        self.assertEqual(text, "SELECT $1, $2, $1, 'x%' LIKE $3")
        self.assertEqual(names, ("a", "b", "c_1"))


class NotPreparingTests(ServerPreparedTests):
    settings = {"db.prepare": "false"}

    async def test_nothing_prepared_and_plans_as_the_server_likes(self) -> None:
        async with self.engine.acquire() as conn:
            for _ in range(3):
                self.assertEqual(await conn.scalar(LOOKUP, name=self.name), self.name)
            self.assertEqual(await prepared_on(conn), [])
            self.assertEqual(await conn.scalar(sa.text("SHOW plan_cache_mode")), "auto")
