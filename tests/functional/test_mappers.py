"""View mappers and threadlocals, through the WSGI bridge on an in-process aiohttp server."""

from __future__ import annotations

import asyncio
import random
import threading
import unittest

from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.response import Response
from pyramid.threadlocal import get_current_registry, get_current_request

from aiotutorial.aio import (
    CoroutineMapper,
    ExecutorMapper,
    WebsocketConnectionView,
    WebsocketMapper,
)
from aiotutorial.aio.wsgi import make_aiohttp_app

LOOP_THREAD: dict[str, int] = {}


async def async_function_view(request):
    await asyncio.sleep(0)
    return {"kind": "async", "thread": threading.get_ident()}


def sync_function_view(request):
    return {"kind": "sync", "thread": threading.get_ident()}


async def async_context_view(context, request):
    return {"kind": "async-context", "same": request.context is context}


class AsyncClassView:
    def __init__(self, request):
        self.request = request

    async def __call__(self):
        await asyncio.sleep(0)
        return {"kind": "async-class", "path": self.request.path}

    async def other(self):
        return {"kind": "async-attr"}


class SyncClassView:
    def __init__(self, context, request):
        self.request = request

    def __call__(self):
        return {"kind": "sync-class", "thread": threading.get_ident()}


async def raising_view(request):
    await asyncio.sleep(0)
    raise RuntimeError("secret internal detail")


async def string_renderer_view(request):
    return "plain text"


async def whoami_async(request):
    """Checks its own request at every step while others interleave."""
    token = request.GET["token"]
    for _ in range(3):
        if get_current_request() is not request:
            return Response(f"mixed up before await {token}", status=500)
        await asyncio.sleep(random.random() / 100)
    if get_current_request() is not request or get_current_registry() is not request.registry:
        return Response(f"mixed up {token}", status=500)
    return Response(token)


def whoami_sync(request):
    token = request.GET["token"]
    if threading.get_ident() == LOOP_THREAD.get("id"):
        return Response("ran on the loop thread", status=500)
    if get_current_request() is not request:
        return Response(f"mixed up {token}", status=500)
    return Response(token)


def render_request_url(request):
    # pyramid_jinja2-style code: reaches the request through the threadlocal
    return Response(get_current_request().route_url("whoami_async"))


async def ws_request_view(ws):
    await ws.send(ws.request.matchdict["name"])
    await ws.send("same" if get_current_request() is ws.request else "mixed")
    async for message in ws:
        await ws.send(message.upper() if isinstance(message, str) else message[::-1])


class Shouter(WebsocketConnectionView):
    events: list[str] = []

    async def on_open(self):
        self.events.append("open")
        await self.send("welcome")

    async def on_message(self, message):
        self.events.append(f"message {message}")
        await self.send(f"{message}!")

    async def on_close(self):
        self.events.append("close")


def make_app(settings=None):
    config = Configurator(settings=settings or {})
    config.include("aiotutorial.aio")
    routes = {
        "async": async_function_view,
        "sync": sync_function_view,
        "async_context": async_context_view,
        "async_class": AsyncClassView,
        "sync_class": SyncClassView,
        "raising": raising_view,
    }
    for name, view in routes.items():
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name, renderer="json")
    config.add_route("async_attr", "/async_attr")
    config.add_view(AsyncClassView, attr="other", route_name="async_attr", renderer="json")
    config.add_route("string", "/string")
    config.add_view(string_renderer_view, route_name="string", renderer="string")
    config.add_route("whoami_async", "/whoami_async")
    config.add_view(whoami_async, route_name="whoami_async")
    config.add_route("whoami_sync", "/whoami_sync")
    config.add_view(whoami_sync, route_name="whoami_sync")
    config.add_route("url", "/url")
    config.add_view(render_request_url, route_name="url")
    config.add_route("ws", "/ws/{name}")
    config.add_view(ws_request_view, route_name="ws", mapper=WebsocketMapper)
    config.add_route("shout", "/shout")
    config.add_view(Shouter, route_name="shout", mapper=WebsocketMapper)
    return config.make_wsgi_app()


class BridgeAppTest(unittest.IsolatedAsyncioTestCase):
    settings: dict = {}

    async def asyncSetUp(self):
        LOOP_THREAD["id"] = threading.get_ident()
        self.server = TestServer(make_aiohttp_app(make_app(self.settings)))
        self.client = TestClient(self.server)
        await self.client.start_server()

    async def asyncTearDown(self):
        await self.client.close()


class MapperTest(BridgeAppTest):
    async def get_json(self, path):
        response = await self.client.get(path)
        self.assertEqual(response.status, 200, await response.text())
        return await response.json()

    async def test_async_view_runs_on_the_loop_thread(self):
        body = await self.get_json("/async")
        self.assertEqual(body["kind"], "async")
        self.assertEqual(body["thread"], threading.get_ident())

    async def test_sync_view_runs_in_the_executor(self):
        body = await self.get_json("/sync")
        self.assertEqual(body["kind"], "sync")
        self.assertNotEqual(body["thread"], threading.get_ident())

    async def test_context_request_signature(self):
        self.assertEqual(
            await self.get_json("/async_context"), {"kind": "async-context", "same": True}
        )

    async def test_class_views(self):
        self.assertEqual(
            await self.get_json("/async_class"), {"kind": "async-class", "path": "/async_class"}
        )
        self.assertEqual(await self.get_json("/async_attr"), {"kind": "async-attr"})
        body = await self.get_json("/sync_class")
        self.assertEqual(body["kind"], "sync-class")
        self.assertNotEqual(body["thread"], threading.get_ident())

    async def test_string_renderer(self):
        response = await self.client.get("/string")
        self.assertEqual(await response.text(), "plain text")

    async def test_exception_in_async_view_is_a_500_without_detail(self):
        response = await self.client.get("/raising")
        self.assertEqual(response.status, 500)
        text = await response.text()
        self.assertNotIn("secret internal detail", text)
        self.assertNotIn("Traceback", text)

    async def test_unknown_path_is_404(self):
        response = await self.client.get("/no/such/thing")
        self.assertEqual(response.status, 404)


class ExecutorSizeTest(BridgeAppTest):
    settings = {"aio.executor_threads": "2"}

    async def test_pool_is_bounded_by_the_setting(self):
        responses = await asyncio.gather(*(self.client.get("/sync") for _ in range(20)))
        threads = {(await response.json())["thread"] for response in responses}
        self.assertLessEqual(len(threads), 2)

    def test_bad_setting_refused(self):
        with self.assertRaises(ConfigurationError):
            make_app({"aio.executor_threads": "zero"})


class ThreadlocalTest(BridgeAppTest):
    settings = {"aio.executor_threads": "8"}

    async def check_interleaved(self, path, count):
        tokens = [f"t{i}" for i in range(count)]
        responses = await asyncio.gather(
            *(self.client.get(path, params={"token": t}) for t in tokens)
        )
        bodies = [(response.status, await response.text()) for response in responses]
        self.assertEqual(bodies, [(200, token) for token in tokens])

    async def test_500_interleaved_async_requests_each_see_their_own_request(self):
        await self.check_interleaved("/whoami_async", 500)

    async def test_500_requests_in_executor_threads_see_their_own_request(self):
        await self.check_interleaved("/whoami_sync", 500)

    async def test_threadlocal_request_in_url_generation(self):
        response = await self.client.get("/url")
        self.assertTrue((await response.text()).endswith("/whoami_async"))

    async def test_nothing_left_on_the_stack_after_requests(self):
        await self.check_interleaved("/whoami_async", 20)
        self.assertIsNone(get_current_request())


class WrongKindTest(unittest.TestCase):
    def commit_view(self, view, mapper):
        config = Configurator()
        config.include("aiotutorial.aio")
        config.add_route("r", "/r")
        config.add_view(view, route_name="r", mapper=mapper)
        config.commit()

    def test_coroutine_mapper_refuses_plain_view(self):
        with self.assertRaises(ConfigurationError) as caught:
            self.commit_view(sync_function_view, CoroutineMapper)
        self.assertIn("async def", str(caught.exception))

    def test_executor_mapper_refuses_coroutine_view(self):
        with self.assertRaises(ConfigurationError):
            self.commit_view(async_function_view, ExecutorMapper)

    def test_websocket_mapper_refuses_plain_view(self):
        with self.assertRaises(ConfigurationError):
            self.commit_view(sync_function_view, WebsocketMapper)

    def test_right_kinds_accepted(self):
        self.commit_view(async_function_view, CoroutineMapper)
        self.commit_view(sync_function_view, ExecutorMapper)
        self.commit_view(ws_request_view, WebsocketMapper)


class WebsocketViewTest(BridgeAppTest):
    settings = {"aio.websocket_max_message_size": "1024"}

    async def test_request_reachable_and_echo(self):
        async with self.client.ws_connect("/ws/alice") as ws:
            self.assertEqual(await ws.receive_str(), "alice")
            self.assertEqual(await ws.receive_str(), "same")
            await ws.send_str("hello")
            self.assertEqual(await ws.receive_str(), "HELLO")
            await ws.send_bytes(b"abc")
            self.assertEqual(await ws.receive_bytes(), b"cba")

    async def test_message_over_the_limit_closes_with_1009(self):
        async with self.client.ws_connect("/ws/bob") as ws:
            await ws.receive_str()
            await ws.receive_str()
            await ws.send_str("x" * 2000)
            message = await ws.receive()
            self.assertIn(message.type, (WSMsgType.CLOSE, WSMsgType.CLOSED))
            self.assertEqual(ws.close_code, 1009)

    async def test_class_based_view(self):
        Shouter.events.clear()
        async with self.client.ws_connect("/shout") as ws:
            self.assertEqual(await ws.receive_str(), "welcome")
            await ws.send_str("hi")
            self.assertEqual(await ws.receive_str(), "hi!")
        for _ in range(100):
            if "close" in Shouter.events:
                break
            await asyncio.sleep(0.01)
        self.assertEqual(Shouter.events, ["open", "message hi", "close"])

    async def test_plain_get_is_a_400(self):
        response = await self.client.get("/shout")
        self.assertEqual(response.status, 400)
        self.assertIn("websocket", await response.text())

    async def test_server_shutdown_closes_with_1001(self):
        ws = await self.client.ws_connect("/ws/carol")
        await ws.receive_str()
        await ws.receive_str()
        closing = asyncio.ensure_future(ws.receive())
        await self.server.app.shutdown()
        message = await asyncio.wait_for(closing, 5)
        self.assertEqual(message.type, WSMsgType.CLOSE)
        self.assertEqual(ws.close_code, 1001)
        await ws.close()
