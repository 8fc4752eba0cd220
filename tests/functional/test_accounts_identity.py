"""Accounts in process: ``request.identity`` in every kind of view, websocket refusals, and
the per-address log-in throttle.

The application runs in-process (``AppTest``, inside a rolled-back transaction), with views
added through ``pyramid.includes`` (``identity_views``, below) that report
``request.identity`` from a coroutine view, a plain view (executor thread) and websocket
views.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from unittest import mock

import aiohttp
import sqlalchemy as sa
from pyramid.config import Configurator

from aiotutorial import access
from aiotutorial.accounts.policy import IDENTITY
from aiotutorial.aio import WebsocketMapper
from aiotutorial.db import schema as db
from aiotutorial.db.request import RequestConnection
from aiotutorial.throttle import SharedThrottle

from ..dbtest import AppTest
from .accountclient import FakeClock, csrf_token, new_password, new_username


def identity_report(request: Any) -> dict[str, Any]:
    identity = request.identity
    return {
        "user": identity.username if identity is not None else None,
        "authenticated": request.is_authenticated,
        "thread": threading.current_thread().name,
    }


async def who_async(request: Any) -> dict[str, Any]:
    return identity_report(request)


def who_sync(request: Any) -> dict[str, Any]:
    return identity_report(request)


async def who_websocket(ws: Any) -> None:
    await ws.send(json.dumps(identity_report(ws.request)))
    await ws.recv()


async def chat_websocket(ws: Any) -> None:
    await ws.send(f"welcome {ws.request.identity.username}")
    await ws.recv()


def identity_views(config: Configurator) -> None:
    """Reporting views, added to the real app through ``pyramid.includes``."""
    config.add_route("who_async", "/who/async")
    config.add_view(who_async, route_name="who_async", renderer="json")
    config.add_route("who_sync", "/who/sync")
    config.add_view(who_sync, route_name="who_sync", renderer="json")
    config.add_route("who_ws", "/who/ws")
    config.add_view(who_websocket, route_name="who_ws", mapper=WebsocketMapper)
    config.add_route("chat_ws", "/chat/ws")
    config.add_view(chat_websocket, route_name="chat_ws", mapper=WebsocketMapper, permission="chat")


class InProcessIdentityTests(AppTest):
    """``request.identity`` from coroutine, executor and websocket views; websocket refusals.

    The whole application (``aiotutorial.main``) plus ``identity_views``, in-process: its
    requests run in the test's transaction, so the users registered here are rolled back.
    """

    settings = {"pyramid.includes": f"{__name__}.identity_views"}

    async def token(self, path: str) -> str:
        response = await self.client.get(path)
        self.assertEqual(response.status, 200)
        return csrf_token(await response.text())

    async def sign_in(self) -> str:
        name = new_username()
        data = {"csrf_token": await self.token("/register"), "username": name}
        data["password"] = new_password()
        response = await self.client.post("/register", data=data, allow_redirects=False)
        self.assertEqual(response.status, 303, await response.text())
        return name

    async def reports(self) -> dict[str, dict[str, Any]]:
        found = {}
        for kind in ("async", "sync"):
            response = await self.client.get(f"/who/{kind}")
            self.assertEqual(response.status, 200, await response.text())
            found[kind] = await response.json()
        async with self.client.ws_connect("/who/ws") as ws:
            found["websocket"] = json.loads(await ws.receive_str(timeout=5))
        return found

    def assertIdentity(self, reports: dict[str, dict[str, Any]], name: str | None) -> None:
        for kind, report in reports.items():
            with self.subTest(view=kind):
                self.assertEqual(report["user"], name)
                self.assertEqual(report["authenticated"], name is not None)

    async def test_identity_is_right_in_every_kind_of_view(self) -> None:
        anonymous = await self.reports()
        self.assertIdentity(anonymous, None)
        name = await self.sign_in()
        signed_in = await self.reports()
        self.assertIdentity(signed_in, name)
        # The plain view really ran in the executor, the others on the loop's thread.
        loop_thread = threading.current_thread().name
        self.assertEqual(signed_in["async"]["thread"], loop_thread)
        self.assertEqual(signed_in["websocket"]["thread"], loop_thread)
        self.assertNotEqual(signed_in["sync"]["thread"], loop_thread)
        self.assertTrue(signed_in["sync"]["thread"].startswith("aio-executor"))

        token = await self.token("/")
        response = await self.client.post(
            "/logout", data={"csrf_token": token}, allow_redirects=False
        )
        self.assertEqual(response.status, 303)
        self.assertIdentity(await self.reports(), None)

    async def test_identity_ends_when_the_account_is_deleted(self) -> None:
        name = await self.sign_in()
        self.assertIdentity(await self.reports(), name)
        await self.conn.execute(db.users.delete().where(db.users.c.username == name))
        self.assertIdentity(await self.reports(), None)

    async def private_channel(self, owner: str) -> str:
        name = f"traversal-{owner.lower()}"[:40]
        now = sa.func.now()
        await self.conn.execute(db.chats.insert().values(channel=name))
        await self.conn.execute(
            db.channel_settings.insert().values(
                channel=name, kind="private", created_by=owner, created=now
            )
        )
        await self.conn.execute(
            db.channel_members.insert().values(channel=name, user=owner, role="owner", added=now)
        )
        return name

    async def history(self, channel: str) -> tuple[int, Any]:
        response = await self.client.get(f"/channels/{channel}/messages")
        body = await response.json() if response.status == 200 else None
        return response.status, body

    async def test_traversal_confirms_the_session_in_its_own_statement(self) -> None:
        name = await self.sign_in()
        channel = await self.private_channel(name)
        asked: list[Any] = []
        rows = RequestConnection.rows

        async def counting(connection: Any, query: Any, **values: Any) -> Any:
            asked.append(query)
            return await rows(connection, query, **values)

        with mock.patch.object(RequestConnection, "rows", counting):
            status, body = await self.history(channel)
        self.assertEqual(status, 200)
        self.assertIn("last_read", body)  # read as the member it is
        # One statement for the identity and the channel, none for the identity alone.
        self.assertEqual(asked.count(access.IDENTIFIED_CHANNEL_STATEMENT), 1, asked)
        self.assertNotIn(IDENTITY, asked)
        self.assertNotIn(access.CHANNEL_STATEMENT, asked)

    async def test_a_revoked_session_reads_no_private_channel_through_traversal(self) -> None:
        name = await self.sign_in()
        channel = await self.private_channel(name)
        self.assertEqual((await self.history(channel))[0], 200)
        # A log-out everywhere: sessions issued before this instant no longer hold.
        await self.conn.execute(
            db.users.update()
            .where(db.users.c.username == name)
            .values(sessions_valid_after=sa.func.now() + sa.text("interval '1 minute'"))
        )
        self.assertEqual((await self.history(channel))[0], 404)
        # A public channel is read as a visitor's (no read marker), and the session is gone.
        await self.conn.execute(db.chats.insert().values(channel=f"{channel}-open"))
        status, body = await self.history(f"{channel}-open")
        self.assertEqual(status, 200)
        self.assertNotIn("last_read", body)
        self.assertIdentity(await self.reports(), None)

    async def test_a_deleted_account_reads_a_channel_as_a_visitor(self) -> None:
        name = await self.sign_in()
        await self.conn.execute(db.chats.insert().values(channel="traversal-open"))
        status, body = await self.history("traversal-open")
        self.assertEqual(status, 200)
        self.assertIn("last_read", body)
        await self.conn.execute(db.users.delete().where(db.users.c.username == name))
        status, body = await self.history("traversal-open")
        self.assertEqual(status, 200)
        self.assertNotIn("last_read", body)
        self.assertIdentity(await self.reports(), None)

    async def test_a_chat_websocket_needs_a_signed_in_user(self) -> None:
        with self.assertRaises(aiohttp.WSServerHandshakeError) as refused:
            await self.client.ws_connect("/chat/ws")
        self.assertEqual(refused.exception.status, 403)
        name = await self.sign_in()
        async with self.client.ws_connect("/chat/ws") as ws:
            self.assertEqual(await ws.receive_str(timeout=5), f"welcome {name}")

    async def test_websockets_from_another_origin_are_refused(self) -> None:
        await self.sign_in()
        here = f"http://{self.client.host}:{self.client.port}"
        foreign = [
            "https://evil.example",
            # The same host and port over another scheme is another origin.
            f"https://{self.client.host}:{self.client.port}",
            f"http://{self.client.host}:{self.client.port + 1}",
            f"http://evil.example@{self.client.host}:{self.client.port}",
            "null",
        ]
        for origin in foreign:
            for path in ("/who/ws", "/chat/ws"):
                with self.subTest(origin=origin, path=path):
                    with self.assertRaises(aiohttp.WSServerHandshakeError) as refused:
                        await self.client.ws_connect(path, origin=origin)
                    self.assertEqual(refused.exception.status, 403)
        for origin in (here, here + "/", here.upper()):
            with self.subTest(origin=origin):
                async with self.client.ws_connect("/chat/ws", origin=origin) as ws:
                    self.assertTrue((await ws.receive_str(timeout=5)).startswith("welcome "))

    async def test_failed_logins_per_address_are_throttled_across_usernames(self) -> None:
        clock = FakeClock()
        self.app.registry["throttle.login_address"] = SharedThrottle.per_window(
            "login_address", 3, 60, clock=clock
        )
        token = await self.token("/login")

        async def login(username: str) -> aiohttp.ClientResponse:
            data = {"csrf_token": token, "username": username, "password": "wrong-password"}
            response = await self.client.post("/login", data=data, allow_redirects=False)
            await response.read()
            return response

        for _ in range(3):
            self.assertEqual((await login(new_username())).status, 400)
        response = await login(new_username())
        self.assertEqual(response.status, 429)
        self.assertEqual(response.headers["Retry-After"], "20")
        clock.now += 20
        self.assertEqual((await login(new_username())).status, 400)
