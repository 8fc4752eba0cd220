"""The deployment of deploy/, end to end: Debian's nginx on loopback, configured from
deploy/nginx-site.conf.template, terminating TLS (a self-signed certificate made here) in front
of two instances of the app run with production.ini (A with two workers, B with one), on the
testing database. Every request of these tests goes through nginx, never to an instance.

Checked: static files come from nginx (its access log has them, no instance's log does) with
their cache headers and HSTS; plain http redirects to https; names that are not the site's get
nothing; log-in and chat across the instances; catch-up after an instance is stopped and
started again behind the proxy; a game played to its end while the instance running it is
killed (``kill -9`` of master and workers); the app's throttles keyed on the real client's
address (nginx's X-Forwarded-For), not on nginx's and not on what a client writes itself.

Skipped where nginx cannot be installed (scripts/ensure-nginx says why), never under CI.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import ssl
import tempfile
import unittest
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
from aiopg.sa import create_engine

from aiotutorial.db import dsn_from_url
from harness.chatclient import PASSWORD, ChatSocket
from harness.gunicorn import rewrite_section
from harness.instance import Instance
from harness.paths import PROJECT_ROOT

from ..dbtest import prepare_testing_database
from ..waiting import wait_for
from .chatservers import close_shared_servers, worker_pid
from .gameclient import GameTable
from .gameservers import LINE
from .nginxfront import (
    SITE_NAME,
    NginxServer,
    ProxiedClient,
    make_certificate,
    require_nginx,
    tls_context,
)

PRODUCTION_INI = PROJECT_ROOT / "production.ini"
STATIC = PROJECT_ROOT / "aiotutorial" / "static"
HSTS = "max-age=31536000; includeSubDomains"
REGISTRATIONS_PER_ADDRESS = 3


class NginxFrontTest(unittest.IsolatedAsyncioTestCase):
    """nginx before instances A (2 workers) and B (1 worker), for the whole class."""

    nginx: ClassVar[NginxServer]
    a: ClassVar[Instance]
    b: ClassVar[Instance]
    tls: ClassVar[ssl.SSLContext]
    url: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        require_nginx()
        # A test here kills a game's owner on purpose: no other server may run meanwhile (any
        # worker on the database takes an orphaned game over), the shared ones included.
        close_shared_servers()
        cls.url = prepare_testing_database()
        tmp = tempfile.TemporaryDirectory(prefix="aiotutorial-nginx-", ignore_cleanup_errors=True)
        cls.addClassCleanup(tmp.cleanup)
        directory = Path(tmp.name)
        os.chmod(directory, 0o755)
        certificate, key = make_certificate(directory, [SITE_NAME])
        cls.tls = tls_context(certificate)
        settings = {
            # nginx connects from 127.0.0.1; the test's clients never do (client_address).
            "aio.trusted_proxies": "127.0.0.1",
            "aio.allowed_hosts": f"{SITE_NAME} localhost",
            "security.register_attempts": str(REGISTRATIONS_PER_ADDRESS),
            "game.reveal_seconds": "0.3",
            "game.rate_burst": "100",
        }
        text = rewrite_section(PRODUCTION_INI.read_text(encoding="utf-8"), "app:main", settings)
        # production.ini logs warnings only: INFO shows the access log the test reads.
        text = rewrite_section(text, "logger_root", {"level": "INFO"})
        ini = directory / "production-test.ini"
        ini.write_text(text, encoding="utf-8")
        env = {"DATABASE_URL": cls.url, "AIOTUTORIAL_SECRET": secrets.token_urlsafe(32)}
        # The access log on (gunicorn's, off by default): the test reads what reached the app.
        access_log = ["--access-logfile", "-"]
        cls.a = Instance("a", ini, 2, env, extra_args=access_log)
        cls.b = Instance("b", ini, 1, env, extra_args=access_log)
        for instance in (cls.a, cls.b):
            cls.addClassCleanup(instance.stop_all)
            instance.start()
        cls.nginx = NginxServer(
            directory,
            upstreams=[cls.a.address, cls.b.address],
            certificate=certificate,
            key=key,
            server_names=[SITE_NAME],
        )
        cls.addClassCleanup(cls.nginx.stop)
        cls.nginx.start()

    async def asyncSetUp(self) -> None:
        asyncio.get_running_loop().set_debug(False)
        for instance in (self.a, self.b):
            if not instance.is_running():  # a test before this one stopped it
                instance.start()
        self.engine = await create_engine(dsn_from_url(self.url), minsize=0, maxsize=2)

        async def close_engine() -> None:
            self.engine.close()
            await self.engine.wait_closed()

        self.addAsyncCleanup(close_engine)

    # --- helpers -----------------------------------------------------------------------------

    def client(self, username: str | None = None, address: str | None = None) -> ProxiedClient:
        client = ProxiedClient(self.nginx.url(""), self.tls, username, address=address)
        self.addAsyncCleanup(client.close)
        return client

    async def registered(self) -> ProxiedClient:
        return await self.client().register()

    async def rows(self, query: str, *params: Any) -> list[Any]:
        async with self.engine.acquire() as conn:
            result = await conn.execute(query, params)
            return await result.fetchall()

    async def instance_of(self, channel: str, user: str) -> Instance | None:
        """The instance whose worker has ``user``'s socket on ``channel`` (presence)."""
        rows = await self.rows(
            "SELECT worker FROM presence WHERE channel = %s AND username = %s", channel, user
        )
        pids = {worker_pid(row[0]) for row in rows}
        for instance in (self.a, self.b):
            if pids & set(instance.worker_pids()) and instance.is_running():
                return instance
        return None

    async def connect_on(
        self, client: ProxiedClient, channel: str, instance: Instance, after: int = 0
    ) -> ChatSocket:
        """A socket of ``client`` that nginx sent to ``instance`` (others are closed)."""
        for _attempt in range(30):
            sock = await client.connect(channel, after=after)
            if await self.instance_of(channel, client.username) is instance:
                return sock
            await sock.close()
            await asyncio.sleep(0.05)
        raise AssertionError(f"nginx never sent {client.username} to instance {instance.name}")

    async def get(
        self, path: str, *, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, bytes]:
        client = self.client()
        async with client.session.get(
            client.url(path), headers=headers, allow_redirects=False
        ) as response:
            return response.status, response.headers, await response.read()

    # --- static files, TLS, names --------------------------------------------------------------

    async def test_static_files_come_from_nginx_with_cache_headers_and_hsts(self) -> None:
        for name, kind in (("site.css", "text/css"), ("lib/socket.js", "application/javascript")):
            status, headers, body = await self.get(f"/static/{name}")
            self.assertEqual(status, 200)
            self.assertEqual(body, (STATIC / name).read_bytes())
            self.assertTrue(headers["Content-Type"].startswith(kind), headers["Content-Type"])
            self.assertEqual(headers["Cache-Control"], "max-age=3600")
            self.assertEqual(headers.getall("Strict-Transport-Security"), [HSTS])
            self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        # A page is the app's, through nginx: HSTS once (nginx's; the app's copy is hidden).
        status, headers, body = await self.get("/login")
        self.assertEqual(status, 200)
        self.assertEqual(headers.getall("Strict-Transport-Security"), [HSTS])
        self.assertIn("Content-Security-Policy", headers)

        lines = self.nginx.access_lines()
        css = [line for line in lines if '"GET /static/site.css ' in line]
        self.assertTrue(css, lines[-5:])
        self.assertTrue(all("upstream=- " in line for line in css), css)
        login = [line for line in lines if '"GET /login ' in line]
        self.assertTrue(
            any(
                f"upstream={self.a.address} " in line or f"upstream={self.b.address} " in line
                for line in login
            ),
            login,
        )
        for instance in (self.a, self.b):
            log = instance.log_text()
            self.assertNotIn("/static/", log)
        self.assertTrue(
            any('"GET /login ' in i.log_text() for i in (self.a, self.b)),
            "the instances' access logs show what reached them",
        )

    async def test_uploads_may_be_larger_than_other_bodies(self) -> None:
        client = await self.registered()
        channel = await client.new_channel()
        two_megabytes = secrets.token_bytes(2 * 1024 * 1024)
        form = aiohttp.FormData()
        form.add_field("file", two_megabytes, filename="big.bin")
        async with client.session.post(
            client.url(f"/channels/{channel}/uploads"),
            data=form,
            headers={"X-CSRF-Token": client.csrf, "Accept": "application/json"},
        ) as response:
            body = await response.json()
        self.assertEqual(response.status, 201, body)
        self.assertEqual(body["upload"]["size"], len(two_megabytes))
        # Any other route keeps the 1 MiB of client_max_body_size: nginx refuses it.
        async with client.session.post(
            client.url("/channels"),
            data=two_megabytes,
            headers={"X-CSRF-Token": client.csrf, "Content-Type": "application/json"},
        ) as response:
            self.assertEqual(response.status, 413)
            self.assertIn("nginx", await response.text())

    async def test_http_redirects_to_https_and_unknown_names_get_nothing(self) -> None:
        port = self.nginx.http_port
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"http://127.0.0.1:{port}/channels/x?y=1",
                headers={"Host": f"{SITE_NAME}:{port}"},
                allow_redirects=False,
            ) as response:
                self.assertEqual(response.status, 301)
                self.assertEqual(
                    response.headers["Location"],
                    f"https://{SITE_NAME}:{self.nginx.port}/channels/x?y=1",
                )
            with self.assertRaises(aiohttp.ClientError):
                async with session.get(
                    f"http://127.0.0.1:{port}/", headers={"Host": "evil.test"}
                ) as response:
                    await response.read()
        # TLS for a name that is not the site's: the handshake is refused.
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        with self.assertRaises((ssl.SSLError, aiohttp.ClientError, ConnectionError)):
            await asyncio.open_connection(
                "127.0.0.1", self.nginx.port, ssl=unverified, server_hostname="evil.test"
            )

    # --- the client's address ------------------------------------------------------------------

    async def test_throttles_see_the_real_client_not_nginx_nor_what_it_claims(self) -> None:
        """Registrations are limited per client address: one client spoofing X-Forwarded-For
        runs out all the same, and another client (another address) is not affected."""

        async def register(client: ProxiedClient, claimed: str) -> int:
            token = await client._form_token("/register")
            async with client.session.post(
                client.url("/register"),
                data={"csrf_token": token, "username": client.username, "password": PASSWORD},
                headers={"X-Forwarded-For": claimed},
                allow_redirects=False,
            ) as response:
                await response.read()
            if response.status == 303:
                # Built from what nginx forwarded: https, the site's name and nginx's port.
                self.assertEqual(response.headers["Location"], self.nginx.url("/"))
            return response.status

        first = self.client()
        for attempt in range(REGISTRATIONS_PER_ADDRESS):
            client = first if attempt == 0 else self.client(address=first.address)
            self.assertEqual(await register(client, f"203.0.113.{attempt + 1}"), 303)
        over = self.client(address=first.address)
        self.assertEqual(await register(over, "198.51.100.7"), 429)
        other = self.client()
        self.assertNotEqual(other.address, first.address)
        self.assertEqual(await register(other, first.address), 303)
        # The bucket is the client's address as nginx saw it.
        spent = await self.rows(
            "SELECT key FROM throttle_buckets WHERE key LIKE %s", f"%{first.address}"
        )
        self.assertEqual(len(spent), 1, "one bucket, the client's address as nginx saw it")
        claimed = await self.rows(
            "SELECT key FROM throttle_buckets WHERE key LIKE '%%203.0.113.%%'"
        )
        self.assertEqual(claimed, [])

    # --- the chat --------------------------------------------------------------------------------

    async def test_log_in_chat_across_instances_and_catch_up_after_a_restart(self) -> None:
        alice = await self.registered()
        channel = await alice.new_channel()
        bob = self.client()
        await bob.register()
        # Bob logs in again from another browser (a fresh cookie jar), through nginx.
        await bob.close()
        bob = await self.client(bob.username).login()

        alice_sock = await self.connect_on(alice, channel, self.a)
        bob_sock = await self.connect_on(bob, channel, self.b)
        await alice_sock.send("hello from A")
        got = await bob_sock.wait_messages(1)
        self.assertEqual(got[0]["content"], "hello from A")
        await bob_sock.send("hello from B")
        await alice_sock.wait_for(
            lambda f: f["type"] == "message" and f["content"] == "hello from B"
        )
        last_seen = bob_sock.message_ids[-1]

        # B stops: its sockets close (1001); what is posted meanwhile, Bob gets on coming back.
        self.b.stop(signal.SIGTERM)
        await bob_sock.wait_closed()
        for n in range(3):
            await alice_sock.send(f"while B was down {n}")
        await alice_sock.wait_frames(
            lambda f: f["type"] == "message" and f["content"].startswith("while B"), 3
        )
        self.b.start()
        again = await self.connect_on(bob, channel, self.b, after=last_seen)
        missed = await again.wait_frames(
            lambda f: f["type"] == "message" and f["content"].startswith("while B"), 3
        )
        self.assertEqual(
            [m["content"] for m in missed], [f"while B was down {n}" for n in range(3)]
        )
        self.assertNotIn(last_seen, again.message_ids)
        self.assertEqual(again.message_ids, sorted(again.message_ids))
        # And live again, both ways, across the restarted instance.
        await again.send("back on B")
        await alice_sock.wait_for(lambda f: f["type"] == "message" and f["content"] == "back on B")

    # --- the game --------------------------------------------------------------------------------

    async def test_a_game_is_played_to_the_end_while_its_instance_is_killed(self) -> None:
        starter = await self.registered()
        channel = await starter.new_channel()
        table = GameTable(channel)
        clients = [starter, await self.registered(), await self.registered()]
        homes: dict[str, Instance] = {}
        for client, instance in zip(clients, (self.a, self.b, self.a), strict=True):
            table.seat(client, await self.connect_on(client, channel, instance))
            homes[client.username] = instance
        for sock in table.sockets.values():
            await sock.wait_for(
                lambda f: f["type"] == "presence" and set(f["users"]) >= set(table.users)
            )
        await table.start(starter.username, rounds=1, draw_seconds=60)
        turn = await table.next_turn(1)
        word = await table.choose(turn)
        await table.draw(turn, [LINE])
        early = next(u for u in table.users if u != turn.drawer)
        await table.guess(early, word)
        for sock in table.sockets.values():
            await sock.wait_for(lambda f: f["type"] == "game.guessed")

        owner = await self.game_owner(channel)
        doomed = next(i for i in (self.a, self.b) if worker_pid(owner) in i.worker_pids())
        doomed.kill()
        # Its players' sockets drop; they come back through nginx, to the other instance.
        for user, home in homes.items():
            if home is doomed:
                await table.sockets[user].wait_closed()
                client = table.clients[user]
                table.seat(client, await wait_for(lambda c=client: _connect(c, channel), 15))
                turn.start_index[user] = 0
        # Another process takes the game over once the dead owner's lease has run out...
        await wait_for(lambda: self.owner_other_than(channel, owner), 15)
        # ...and the turn, then the game, go on to the end.
        for user in table.users:
            if user not in (turn.drawer, early):
                await table.guess(user, word)
        await table.turn_end(turn)
        over = await table.play_to_end(2, table.users[0])
        watcher = next(user for user, home in homes.items() if home is not doomed)
        totals: dict[str, int] = {}
        for frame in table.sockets[watcher].of_type("game.turn_end"):
            for user, points in frame["points"].items():
                totals[user] = totals.get(user, 0) + points
        self.assertEqual({s["user"]: s["points"] for s in over["scores"]}, totals)
        rows = await self.rows('SELECT "user", points FROM scores WHERE game = %s', over["game"])
        self.assertEqual({row[0]: row[1] for row in rows}, totals)
        self.assertEqual(table.leaks(), [])

    async def game_owner(self, channel: str) -> str:
        rows = await self.rows("SELECT owner FROM game_state WHERE channel = %s", channel)
        return rows[0][0]

    async def owner_other_than(self, channel: str, owner: str) -> bool:
        rows = await self.rows("SELECT owner FROM game_state WHERE channel = %s", channel)
        return bool(rows) and rows[0][0] != owner


async def _connect(client: ProxiedClient, channel: str) -> ChatSocket | None:
    try:
        return await client.connect(channel, after=0)
    except (aiohttp.ClientError, AssertionError, OSError):
        return None
