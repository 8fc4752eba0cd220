"""``GET /search`` across two servers: full-text search over what the reader may read, and
only that (a private channel one is not in, a deleted message, a message a game's turn keeps
from them are never found); filters, paging and bad parameters; the HTML page marks the
words and shows what was written as text.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from unittest import mock
from urllib.parse import quote

import sqlalchemy as sa

from aiotutorial import chat
from aiotutorial.chat import search
from aiotutorial.db import open_engine, transaction
from aiotutorial.db import schema as db
from aiotutorial.db.request import RequestConnection

from ..dbtest import AppTest
from .chatservers import ChatServersTest


def ref() -> str:
    return secrets.token_hex(8)


class SearchTests(ChatServersTest):
    share_servers = True
    b_workers = None

    async def found(self, client: Any, query: str, **params: Any) -> list[tuple[str, str]]:
        """(channel, content) of what ``client`` finds, newest first."""
        extra = "".join(f"&{k}={quote(str(v))}" for k, v in params.items())
        async with client.session.get(
            client.url(f"/search?q={quote(query)}{extra}"),
            headers={"Accept": "application/json"},
        ) as response:
            body = await response.json()
        self.assertEqual(response.status, 200, body)
        return [(m["channel"], m["content"]) for m in body["results"]]

    async def test_only_what_the_reader_may_read_is_found(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.a)
        word = f"zebra{secrets.token_hex(3)}"
        public = await alice.new_channel()
        private = await alice.new_channel(private=True)
        await self.insert_messages(public, alice.username, [f"a {word} in public", "nothing"])
        await self.insert_messages(private, alice.username, [f"a {word} in private"])
        async with self.engine.acquire() as conn:
            async with transaction(conn):
                await chat.post_message(
                    conn, public, alice.username, f"{word} for alice only", readers=[alice.username]
                )
        sock = await alice.connect(public)
        gone = await sock.answer({"type": "message", "content": f"{word} soon gone", "ref": ref()})
        await sock.answer({"type": "message.delete", "id": gone["id"], "ref": ref()})

        self.assertEqual(
            await self.found(alice, word),
            [
                (public, f"{word} for alice only"),
                (private, f"a {word} in private"),
                (public, f"a {word} in public"),
            ],
        )
        self.assertEqual(await self.found(bob, word), [(public, f"a {word} in public")])
        visitor = await self.anonymous(self.a)
        self.assertEqual(await self.found(visitor, word), [(public, f"a {word} in public")])
        # Any letter case, a phrase, and a word left out.
        self.assertEqual(len(await self.found(bob, word.upper())), 1)
        self.assertEqual(
            await self.found(bob, f'"{word} in public"'), [(public, f"a {word} in public")]
        )
        self.assertEqual(await self.found(bob, f"{word} -public"), [])
        # A private channel one is not in cannot even be named.
        status, body = await bob.get_json(f"/search?q={word}&channel={private}")
        self.assertEqual((status, body["error"]), (404, "not_found"))
        self.assertEqual(
            await self.found(alice, word, channel=private), [(private, f"a {word} in private")]
        )

    async def test_filters_and_pages(self) -> None:
        alice = await self.user(self.a)
        bob = await self.user(self.a)
        word = f"quokka{secrets.token_hex(3)}"
        channel = await alice.new_channel()
        other = await alice.new_channel()
        await self.insert_messages(channel, alice.username, [f"{word} {n}" for n in range(5)])
        await self.insert_messages(channel, bob.username, [f"{word} from bob"])
        await self.insert_messages(other, alice.username, [f"{word} elsewhere"])
        self.assertEqual(
            [c for _, c in await self.found(bob, word, channel=channel, **{"from": bob.username})],
            [f"{word} from bob"],
        )
        async with alice.session.get(
            alice.url(f"/search?q={word}&channel={channel}&limit=4"),
            headers={"Accept": "application/json"},
        ) as response:
            page = await response.json()
        self.assertEqual(len(page["results"]), 4)
        self.assertEqual(page["next"], page["results"][-1]["id"])
        rest = await self.found(alice, word, channel=channel, limit=4, before=page["next"])
        self.assertEqual(len(rest), 2)
        everything = [m["content"] for m in page["results"]] + [c for _, c in rest]
        self.assertEqual(
            everything, [f"{word} from bob", *[f"{word} {n}" for n in range(4, -1, -1)]]
        )

    async def test_bad_parameters_are_400s_and_the_page_shows_text(self) -> None:
        alice = await self.user(self.a)
        for query in ("limit=0", "limit=51", "before=x", "q=" + "a" * 201, "q=a%00b", "q=a&q=b"):
            async with alice.session.get(
                alice.url(f"/search?{query}"), headers={"Accept": "application/json"}
            ) as response:
                self.assertEqual(response.status, 400, query)
        async with alice.session.get(
            alice.url("/search"), headers={"Accept": "application/json"}
        ) as response:
            self.assertEqual(response.status, 400)
        word = f"gecko{secrets.token_hex(3)}"
        channel = await alice.new_channel()
        await self.insert_messages(channel, alice.username, [f"<b>{word}</b> & <script>x</script>"])
        async with alice.session.get(alice.url(f"/search?q={word}")) as response:
            page = await response.text()
        self.assertEqual(response.status, 200)
        self.assertIn(f"&lt;b&gt;<mark>{word}</mark>&lt;/b&gt; &amp; &lt;script&gt;", page)
        self.assertIn(f"/channels/{channel}#message-", page)


class SearchStatementsTests(AppTest):
    """A search is one statement on the app's connections, whose sessions run without parallel
    workers; on connections that cannot have it set (behind a transaction pooler) it sets it
    for a transaction of its own."""

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.channel = f"srch-{secrets.token_hex(4)}"
        await chat.create_channel(self.conn, self.channel)
        await self.conn.execute(db.users.insert().values(username=self.channel))
        await self.conn.execute(
            db.messages.insert().values(
                channel=self.channel, user=self.channel, time=sa.func.now(), content="lanterns"
            )
        )

    async def test_one_statement_on_the_apps_connections(self) -> None:
        self.assertTrue(self.conn.serial)
        setting = await self.conn.scalar(sa.text("SHOW max_parallel_workers_per_gather"))
        self.assertEqual(setting, "0")
        with mock.patch.object(RequestConnection, "transaction") as transaction_opened:
            response = await self.client.get(
                f"/search?q=lanterns&channel={self.channel}",
                headers={"Accept": "application/json"},
            )
            body = await response.json()
        self.assertEqual(response.status, 200, body)
        self.assertEqual([m["content"] for m in body["results"]], ["lanterns"])
        transaction_opened.assert_not_called()

    async def test_the_readable_channels_are_planned_with_the_search(self) -> None:
        # readable_channels() called in FROM is inlined into the search's plan; in the select
        # list it was a ProjectSet whose body PostgreSQL planned again at every search.
        for reader in (None, self.channel):
            statement = search.search_statement(reader is not None, False, False, False)
            compiled = statement.statement.compile(dialect=self.conn._dialect)
            values = {"words": "lanterns", "searcher": reader, "limit": 20}
            if reader is not None:
                values["reader"] = reader
            result = await self.conn.execute(
                sa.text(
                    "EXPLAIN (FORMAT JSON) " + str(compiled).replace("%(", ":").replace(")s", "")
                ),
                compiled.construct_params(values),
            )
            plan = json.dumps(await result.scalar())
            self.assertNotIn("ProjectSet", plan)
            self.assertNotIn("Function Scan", plan)
            self.assertIn('"Relation Name": "chats"', plan)

    async def test_without_the_session_setting_a_transaction_sets_it(self) -> None:
        engine = await open_engine(
            {"db.pool_min": "0", "db.connection_options": "false"}, url=self.url
        )
        try:
            async with engine.acquire() as conn:
                self.assertFalse(conn.serial)
                with mock.patch.object(conn, "execute", wraps=conn.execute) as executed:
                    await search.search_messages(conn, "lanterns", None)
                sent = [str(call.args[0]) for call in executed.call_args_list]
        finally:
            engine.close()
            await engine.wait_closed()
        self.assertIn("SET LOCAL max_parallel_workers_per_gather = 0", sent)
