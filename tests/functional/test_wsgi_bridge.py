"""The WSGI bridge as PEP 3333 describes a server: start_response's rules, the write()
callable, streaming with backpressure and close() on every path, files read off the loop,
X-Forwarded-For from trusted proxies, lifecycle hooks, and a failing websocket handler.

Toy WSGI applications served in-process by ``make_aiohttp_app`` (as the worker serves the
Pyramid application), plus one real gunicorn worker for the memory of a 1 GiB response.
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import time
import unittest
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from pyramid.config import Configurator

from aiotutorial.aio.websocket import WebsocketMapper
from aiotutorial.aio.wsgi import BridgeSettings, make_aiohttp_app
from harness.gunicorn import GunicornServer

OK = ("200 OK", [("Content-Type", "text/plain")])


class Boom(Exception):
    pass


class BridgeCase(unittest.IsolatedAsyncioTestCase):
    async def serve(self, app: Callable, **settings: Any) -> TestClient:
        bridge_settings = BridgeSettings({f"aio.{k}": v for k, v in settings.items()})
        client = TestClient(TestServer(make_aiohttp_app(app, bridge_settings)))
        await client.start_server()
        self.addAsyncCleanup(client.close)
        return client


class Closing:
    """A body that records whether (and from where) it was closed."""

    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = False
        self.threads: set[str] = set()

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            self.threads.add(threading.current_thread().name)
            if index == self.fail_at:
                raise Boom("in the body")
            yield chunk

    def close(self) -> None:
        self.closed = True


class StartResponseTests(BridgeCase):
    async def test_start_response_on_the_first_iteration(self) -> None:
        def app(environ: dict, start_response: Callable) -> Iterator[bytes]:
            start_response(*OK)
            yield b"generated"

        client = await self.serve(app)
        response = await client.get("/")
        self.assertEqual((response.status, await response.read()), (200, b"generated"))

    async def test_a_second_call_without_exc_info_raises(self) -> None:
        seen: list[str] = []

        def app(environ: dict, start_response: Callable) -> list[bytes]:
            start_response(*OK)
            try:
                start_response("500 Oops", [])
            except AssertionError:
                seen.append("refused")
            return [b"first headers stand"]

        client = await self.serve(app)
        response = await client.get("/")
        self.assertEqual(response.status, 200)
        self.assertEqual(seen, ["refused"])

    async def test_exc_info_before_anything_was_sent_replaces_the_headers(self) -> None:
        def app(environ: dict, start_response: Callable) -> list[bytes]:
            start_response(*OK)
            try:
                raise Boom
            except Boom:
                start_response("503 Busy", [("Content-Type", "text/plain")], sys.exc_info())
            return [b"try later"]

        client = await self.serve(app)
        response = await client.get("/")
        self.assertEqual((response.status, await response.read()), (503, b"try later"))

    async def test_exc_info_after_the_headers_were_sent_is_raised_again(self) -> None:
        seen: list[bool] = []

        def app(environ: dict, start_response: Callable) -> Iterator[bytes]:
            start_response(*OK)
            yield b"sent already"
            original = Boom("late")
            try:
                raise original
            except Boom:
                try:
                    start_response("500 Oops", [], sys.exc_info())
                except Boom as again:
                    seen.append(again is original)
            yield b", and more"

        client = await self.serve(app)
        response = await client.get("/")
        self.assertEqual(await response.read(), b"sent already, and more")
        self.assertEqual(seen, [True])

    async def test_the_write_callable_sends_before_the_iterable(self) -> None:
        def app(environ: dict, start_response: Callable) -> list[bytes]:
            write = start_response(*OK)
            write(b"written, ")
            return [b"then returned"]

        client = await self.serve(app)
        self.assertEqual(await (await client.get("/")).read(), b"written, then returned")

    async def test_a_bad_status_is_a_500(self) -> None:
        def app(environ: dict, start_response: Callable) -> list[bytes]:
            start_response("OK", [])
            return [b""]

        client = await self.serve(app)
        self.assertEqual((await client.get("/")).status, 500)


class StreamingTests(BridgeCase):
    async def test_the_body_is_iterated_off_the_loop_and_closed(self) -> None:
        body = Closing([b"a", b"", b"b"])

        def app(environ: dict, start_response: Callable) -> Closing:
            start_response(*OK)
            return body

        client = await self.serve(app)
        self.assertEqual(await (await client.get("/")).read(), b"ab")
        self.assertTrue(body.closed)
        self.assertNotIn(threading.current_thread().name, body.threads)

    async def test_closed_when_the_body_fails(self) -> None:
        body = Closing([b"a", b"b"], fail_at=1)

        def app(environ: dict, start_response: Callable) -> Closing:
            start_response(*OK)
            return body

        client = await self.serve(app)
        with self.assertRaises(aiohttp.ClientPayloadError):
            await (await client.get("/")).read()
        self.assertTrue(body.closed)

    async def test_closed_when_the_client_goes_away(self) -> None:
        closed = asyncio.Event()
        loop = asyncio.get_running_loop()

        class Endless:
            def __iter__(self) -> Iterator[bytes]:
                while True:
                    yield b"z" * 65536

            def close(self) -> None:
                loop.call_soon_threadsafe(closed.set)

        def app(environ: dict, start_response: Callable) -> Endless:
            start_response(*OK)
            return Endless()

        client = await self.serve(app)
        response = await client.get("/")
        await response.content.read(100_000)
        response.close()
        await asyncio.wait_for(closed.wait(), 5)

    async def test_a_slow_body_does_not_hold_the_loop(self) -> None:
        def app(environ: dict, start_response: Callable) -> Any:
            start_response(*OK)
            if environ["PATH_INFO"] == "/slow":
                return (time.sleep(0.3) or b"slow" for _ in range(2))
            return [b"quick"]

        client = await self.serve(app)
        # One clock from before the slow request: if its body blocked the loop, even this
        # test's own sleep would end only after the 0.6 s the body takes.
        started = time.monotonic()
        slow = asyncio.ensure_future(client.get("/slow"))
        await asyncio.sleep(0.05)
        quick = await client.get("/quick")
        self.assertEqual(await quick.read(), b"quick")
        self.assertLess(time.monotonic() - started, 0.4, "the quick request waited")
        self.assertEqual(await (await slow).read(), b"slowslow")

    async def test_files_go_through_wsgi_file_wrapper(self) -> None:
        reads: list[str] = []

        class Tracked(io.BytesIO):
            def read(self, size: int | None = -1) -> bytes:
                reads.append(threading.current_thread().name)
                return super().read(size)

        def app(environ: dict, start_response: Callable) -> Any:
            start_response(*OK)
            return environ["wsgi.file_wrapper"](Tracked(b"0123456789" * 1000), 4096)

        client = await self.serve(app)
        self.assertEqual(await (await client.get("/")).read(), b"0123456789" * 1000)
        self.assertGreaterEqual(len(reads), 3)
        self.assertNotIn(threading.current_thread().name, reads, "a file read on the loop")


class ForwardedTests(BridgeCase):
    async def remote_addr(self, forwarded: str | None, **settings: Any) -> str:
        def app(environ: dict, start_response: Callable) -> list[bytes]:
            start_response(*OK)
            return [environ["REMOTE_ADDR"].encode()]

        client = await self.serve(app, **settings)
        headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
        return await (await client.get("/", headers=headers)).text()

    async def test_the_rightmost_untrusted_hop_is_the_client(self) -> None:
        trusted = {"trusted_proxies": "127.0.0.1 10.0.0.0/8"}
        cases = {
            # What the client wrote comes first; the trusted proxy appended the real peer.
            "6.6.6.6, 203.0.113.9": "203.0.113.9",
            "6.6.6.6, 203.0.113.9, 10.1.2.3": "203.0.113.9",
            "203.0.113.9": "203.0.113.9",
            "10.0.0.1, 10.0.0.2": "10.0.0.1",
        }
        for header, client_address in cases.items():
            with self.subTest(header=header):
                self.assertEqual(await self.remote_addr(header, **trusted), client_address)

    async def test_untrusted_peers_cannot_choose_their_address(self) -> None:
        self.assertEqual(await self.remote_addr("203.0.113.9"), "127.0.0.1")


class LifecycleTests(unittest.IsolatedAsyncioTestCase):
    async def test_a_failing_startup_hook_still_runs_the_shutdown_hooks(self) -> None:
        events: list[str] = []

        async def start_pool(registry: Any) -> None:
            registry["pool"] = "open"
            events.append("pool started")

        async def stop_pool(registry: Any) -> None:
            if registry.pop("pool", None):
                events.append("pool stopped")

        async def start_broken(registry: Any) -> None:
            raise Boom("cannot start")

        with Configurator() as config:
            config.include("aiotutorial.aio")
            config.add_startup_hook(start_pool)
            config.add_shutdown_hook(stop_pool)
            config.add_startup_hook(start_broken)
            app = config.make_wsgi_app()
        from aiotutorial.aio.lifecycle import run_startup_hooks

        with self.assertRaises(Boom):
            await run_startup_hooks(app.registry)
        self.assertEqual(events, ["pool started", "pool stopped"])


async def failing_socket(ws: Any) -> None:
    await ws.recv()
    raise Boom("the handler failed")


class WebsocketErrorTests(BridgeCase):
    async def test_a_failing_handler_closes_with_1011(self) -> None:
        with Configurator() as config:
            config.include("aiotutorial.aio")
            config.add_route("ws", "/ws")
            config.add_view(failing_socket, route_name="ws", mapper=WebsocketMapper)
            app = config.make_wsgi_app()
        client = await self.serve(app)
        ws = await client.ws_connect("/ws")
        await ws.send_str("go")
        message = await ws.receive()
        self.assertEqual(message.type, WSMsgType.CLOSE)
        self.assertEqual(ws.close_code, 1011)


class StreamedMemoryTests(unittest.IsolatedAsyncioTestCase):
    """A 1 GiB response through a real worker: its memory stays flat."""

    async def test_a_gibibyte_streams_in_constant_memory(self) -> None:
        server = _StreamServer(ready_path="/rss")
        self.addCleanup(server.stop)
        server.start()
        async with aiohttp.ClientSession() as session:

            async def rss() -> int:
                async with session.get(server.url("/rss")) as response:
                    return int(await response.text())

            before = await rss()
            peak = before
            received = 0
            async with session.get(server.url("/stream?mb=1024")) as response:
                async for chunk in response.content.iter_chunked(1 << 20):
                    received += len(chunk)
                    if received % (128 << 20) < len(chunk):
                        peak = max(peak, await rss())
            peak = max(peak, await rss())
        self.assertEqual(received, 1 << 30)
        self.assertLess(peak - before, 8 * 1024, f"grew from {before} to {peak} KiB")


class _StreamServer(GunicornServer):
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "tests.functional.streamapp:app",
            "--worker-class",
            "aiotutorial.aio.gunicorn.AsyncGunicornWorker",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "1",
        ]
