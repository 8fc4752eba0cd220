"""What an open websocket holds once its view has accepted it (issue 11, scenario 5).

Not the request's greenlet: the view runs in the connection's task, each of its steps in a
greenlet of its own only while the request lasts. Not the request, its environ or its
database connection once the view has ended the request with ``ws.finish_request()``. And,
in the channel's socket, a member with no queue while nothing waits to be sent.

A toy Pyramid application (``aiotutorial.aio`` and ``aiotutorial.db``) on an in-process aiohttp
server; a tween records weak references to each request, to the greenlet it ran in and to a
sentinel put in its environ. Memory itself is measured by ``make bench`` (scenario 5), not here.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import unittest
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from unittest import mock

import greenlet
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPServiceUnavailable
from pyramid.threadlocal import get_current_request
from webob.multidict import MultiDict

from aiotutorial.access import PUBLIC_ACCESS
from aiotutorial.aio import ScopeError, WebsocketMapper, helpers, synchronize
from aiotutorial.aio.websocket import WebsocketConnection
from aiotutorial.aio.wsgi import make_aiohttp_app
from aiotutorial.db import get_engine
from aiotutorial.realtime import Member
from aiotutorial.views import channels

from ..chatfakes import DrainingSocket
from ..dbtest import prepare_testing_database


class _Sentinel:
    """Put in each request's environ: alive as long as the environ is."""


@dataclass
class _Recorded:
    request: weakref.ref[Any]
    greenlet: weakref.ref[Any]
    environ: weakref.ref[_Sentinel]


RECORDED: dict[str, _Recorded] = {}
FINISHED: list[str] = []  # paths whose request's finished callbacks have run


def recording_tween(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
    def tween(request: Any) -> Any:
        sentinel = _Sentinel()
        request.environ["test.sentinel"] = sentinel
        RECORDED[request.path] = _Recorded(
            weakref.ref(request), weakref.ref(greenlet.getcurrent()), weakref.ref(sentinel)
        )
        # Registered before the upgrade: runs when the request ends, not when Pyramid is done.
        request.add_finished_callback(lambda ended: FINISHED.append(ended.path))
        return handler(request)

    return tween


async def idle(ws: WebsocketConnection) -> None:
    await ws.send("open")
    await ws.recv()


async def finishing(ws: WebsocketConnection) -> None:
    await ws.request.db.scalar("SELECT 1")
    await ws.finish_request()
    try:
        ws.request  # noqa: B018 - what is tested is that it raises
    except RuntimeError:
        gone = True
    else:
        gone = False
    await ws.send(json.dumps({"gone": gone, "current": get_current_request() is not None}))
    await ws.recv()


@synchronize
async def doubled(number: int) -> int:
    await asyncio.sleep(0)
    return 2 * number


async def bridged(ws: WebsocketConnection) -> None:
    first = doubled(1)  # synchronous code waiting on a coroutine, in the view's first step
    await asyncio.sleep(0.01)
    second = doubled(2)  # and in a later one
    same = get_current_request() is ws.request
    await ws.finish_request()
    await asyncio.sleep(0)  # the next step runs without a greenlet: the request has ended
    try:
        doubled(3)
    except ScopeError:
        after = "ScopeError"
    else:
        after = "ran"
    await ws.send(json.dumps([first, second, same, after]))
    await ws.recv()


async def unavailable(ws: WebsocketConnection) -> None:
    await ws.recv()
    raise HTTPServiceUnavailable()  # what request.db raises when the database is away


def make_app(url: str) -> Any:
    with mock.patch.dict(os.environ):
        os.environ.pop("DATABASE_URL", None)
        settings = {"sqlalchemy.url": url, "db.pool_max": "3", "db.timeout": "0.2"}
        config = Configurator(settings=settings)
        config.include("aiotutorial.aio")
        config.include("aiotutorial.db")
    config.add_tween(f"{__name__}.recording_tween")
    views = {"idle": idle, "finishing": finishing, "bridged": bridged, "unavailable": unavailable}
    for name, view in views.items():
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name, mapper=WebsocketMapper)
    return config.make_wsgi_app()


async def eventually(condition: Callable[[], bool], within: float = 2.0) -> bool:
    for _ in range(int(within / 0.01)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


def collected(ref: weakref.ref[Any]) -> bool:
    gc.collect()
    return ref() is None


class AcceptedSocketTests(unittest.IsolatedAsyncioTestCase):
    """An open socket and what it keeps of its request (the heartbeat is on, as deployed)."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.url = prepare_testing_database()

    async def asyncSetUp(self) -> None:
        RECORDED.clear()
        FINISHED.clear()
        self.app = make_app(self.url)
        self.client = TestClient(TestServer(make_aiohttp_app(self.app)))
        await self.client.start_server()
        self.pool = get_engine(self.app.registry)._pool

    async def asyncTearDown(self) -> None:
        await self.client.close()

    async def test_the_request_greenlet_has_ended_while_the_socket_is_open(self) -> None:
        async with self.client.ws_connect("/idle") as ws:
            self.assertEqual(await ws.receive_str(timeout=5), "open")
            recorded = RECORDED["/idle"]
            # Ended, or back in the bridge's pool, idle (its job over, holding nothing of it).
            ended = await eventually(
                lambda: (
                    (g := recorded.greenlet()) is None
                    or g.dead
                    or any(g is idle for idle in helpers._idle_greenlets())
                )
            )
            self.assertTrue(ended, "the request's greenlet is still suspended")
            # Without finish_request() the request lasts as long as the socket.
            self.assertIsNotNone(recorded.request())
            self.assertNotIn("/idle", FINISHED)
        self.assertTrue(await eventually(lambda: "/idle" in FINISHED))

    async def test_finish_request_lets_go_of_the_request_while_the_socket_is_open(self) -> None:
        async with self.client.ws_connect("/finishing") as ws:
            report = json.loads(await ws.receive_str(timeout=5))
            self.assertEqual(report, {"gone": True, "current": False})
            self.assertIn("/finishing", FINISHED)
            self.assertEqual(len(self.pool._used), 0, "the request's connection is still out")
            recorded = RECORDED["/finishing"]
            # The socket keeps nothing of the request. The timeouts its queries set keep a
            # copy of its context (the request on Pyramid's stack) until they expire, even
            # cancelled: db.timeout is short here.
            gone = await eventually(lambda: collected(recorded.environ))
            self.assertTrue(gone, "the environ is still referenced")
            self.assertIsNone(recorded.request(), "the request is still referenced")
            self.assertFalse(ws.closed)
            await ws.send_str("bye")
        self.assertEqual(FINISHED.count("/finishing"), 1)

    async def test_synchronized_calls_work_until_the_request_ends(self) -> None:
        async with self.client.ws_connect("/bridged") as ws:
            report = json.loads(await ws.receive_str(timeout=5))
        self.assertEqual(report, [2, 4, True, "ScopeError"])

    async def test_an_http_error_in_the_view_closes_with_1011_and_ends_the_request(self) -> None:
        async with self.client.ws_connect("/unavailable") as ws:
            await ws.send_str("go")
            message = await ws.receive(timeout=5)
            self.assertEqual(message.type, WSMsgType.CLOSE)
            self.assertEqual(ws.close_code, 1011)
        self.assertTrue(await eventually(lambda: "/unavailable" in FINISHED))


class IdleMemberTests(unittest.IsolatedAsyncioTestCase):
    """A channel member is kept for every open socket: idle, it has no dict and no queue."""

    async def test_an_idle_member_holds_no_queue(self) -> None:
        raw = DrainingSocket()
        member = Member(WebsocketConnection(raw, None), "room", "alice", 8)  # type: ignore[arg-type]
        self.assertFalse(hasattr(member, "__dict__"))
        member.send_frame(b"0")
        self.assertIsNone(member._frames)  # written at once: nothing queued, no queue made
        raw.paused = asyncio.get_running_loop().create_future()
        for frame in (b"1", b"2", b"3"):
            member.send_frame(frame)
        self.assertIsNotNone(member._frames)
        paused, raw.paused = raw.paused, None
        paused.set_result(None)
        self.assertTrue(await eventually(lambda: member._writer is None))
        self.assertEqual(raw.sent, [b"0", b"1", b"2", b"3"])
        self.assertIsNone(member._frames)  # drained: the queue went with its frames

    async def test_members_share_no_catch_up_state(self) -> None:
        # Caught up, a member drops its table of held streams for one shared empty table:
        # that one must never be written to.
        first = Member(WebsocketConnection(DrainingSocket(), None), "room", "bob", 8)  # type: ignore[arg-type]
        second = Member(WebsocketConnection(DrainingSocket(), None), "room", "eve", 8)  # type: ignore[arg-type]
        for member in (first, second):
            member.hold("messages")
            self.assertTrue(member.release("messages"))
        first.hold("messages")
        self.assertTrue(first.is_held("messages"))
        self.assertFalse(second.is_held("messages"))
        second.offer("messages", 2, b"live")
        first.offer("messages", 2, b"held")
        self.assertEqual(second.cursor("messages"), 2)
        self.assertEqual(first.cursor("messages"), 0)
        self.assertTrue(first.release("messages"))
        self.assertEqual(first.cursor("messages"), 2)


class ChannelSocketTests(unittest.IsolatedAsyncioTestCase):
    """The channel's socket reads what it needs, ends its request, then serves the channel."""

    async def test_the_request_ends_before_the_channel_is_served(self) -> None:
        request = SimpleNamespace(
            GET=MultiDict([("after", "5")]),
            registry={},
            context=SimpleNamespace(name="lobby", access=PUBLIC_ACCESS),
            identity=SimpleNamespace(username="alice"),
        )
        ws = mock.Mock()
        ws.request = request
        ws.finish_request = mock.AsyncMock()
        served: list[tuple[Any, ...]] = []

        async def serve_channel(*args: Any) -> None:
            served.append(args)
            ws.finish_request.assert_awaited_once()  # ended before serving, not after

        # The hub says which parameters its streams read (the chat's: after, changes).
        hub = SimpleNamespace(stream_params=["after", "changes"])
        with (
            mock.patch.object(channels, "serve_channel", serve_channel),
            mock.patch.object(channels, "get_hub", return_value=hub),
        ):
            await channels.channel_socket(ws)
        # (A public channel: no admission check once joined.)
        self.assertEqual(served, [(hub, ws, "lobby", "alice", {"after": 5, "changes": None}, None)])


class PrebuiltFrameTests(unittest.TestCase):
    """A broadcast's frame is built once by ``aio.websocket`` and written straight to each
    socket's transport: it must be the very bytes aiohttp's own writer would have sent."""

    def aiohttp_frame(self, payload: bytes) -> bytes:
        from aiohttp._websocket.writer import WebSocketWriter

        written: list[bytes] = []

        class Transport:
            def is_closing(self) -> bool:
                return False

            def write(self, data: bytes) -> None:
                written.append(bytes(data))

        class Protocol:
            _paused = False

        writer = WebSocketWriter(Protocol(), Transport(), use_mask=False)  # type: ignore[arg-type]
        asyncio.run(writer.send_frame(payload, WSMsgType.TEXT))
        return b"".join(written)

    def test_frames_of_every_length_class_match_aiohttps(self) -> None:
        from aiotutorial.aio.websocket.fastwrite import text_frame as _text_frame

        for size in (0, 1, 125, 126, 127, 65535, 65536, 70000):
            with self.subTest(size=size):
                payload = ("é" * size).encode("utf-8")[:size]
                self.assertEqual(_text_frame(payload), self.aiohttp_frame(payload))

    def test_the_same_payload_object_reuses_its_frame(self) -> None:
        from aiotutorial.aio.websocket.fastwrite import text_frame as _text_frame

        payload = b'{"type":"message"}'
        first = _text_frame(payload)
        self.assertIs(_text_frame(payload), first)
        other = bytes(bytearray(payload))  # equal, another object: built again, the same bytes
        self.assertEqual(_text_frame(other), first)
