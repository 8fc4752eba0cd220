"""Functional tests of the tutorial's first chapter against a real gunicorn process.

Everything here goes over TCP to ``gunicorn --paste development.ini`` (or ``pserve``) running
``aiotutorial.aio.gunicorn.AsyncGunicornWorker``: the page, the websocket echo, the limits, the
one-thread-serves-many claim and graceful shutdown are properties of the deployed server, which
in-process tests cannot show.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import aiohttp
from aiohttp import WSCloseCode, WSMsgType
from yarl import URL

from harness.gunicorn import GunicornServer
from harness.paths import HOST

from ..waiting import wait_for
from .servertest import WORKER_LOG_LINE, PserveServer, ServerTestCase, raw_exchange

TITLE = "aiotutorial websocket test"
SLEEP_ERROR = "sleep must be a number"
MAX_BODY_SIZE = 1048576  # aio.max_body_size in development.ini
MAX_MESSAGE_SIZE = 65536  # aio.websocket_max_message_size in development.ini


class DemoPageTests(ServerTestCase):
    """``/demo`` and the HTTP layer under it: validation, HEAD, escapes, keep-alive, bad input."""

    share_across_classes = True

    async def test_demo_renders_the_test_page(self) -> None:
        async with self.session.get(self.server.url("/demo")) as response:
            body = await response.text()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.content_type, "text/html")
        self.assertIn(TITLE, body)

    async def test_sleep_waits_on_the_loop_then_answers(self) -> None:
        started = time.perf_counter()
        async with self.session.get(self.server.url("/demo?sleep=0.1")) as response:
            body = await response.text()
        elapsed = time.perf_counter() - started
        self.assertEqual(response.status, 200)
        self.assertIn("waited 0.1 s", body)
        self.assertGreaterEqual(elapsed, 0.1)

    async def test_invalid_sleep_is_a_400_with_a_message(self) -> None:
        for value in ("abc", "-1", "11", "nan", "inf"):
            with self.subTest(sleep=value):
                async with self.session.get(self.server.url(f"/demo?sleep={value}")) as response:
                    body = await response.text()
                self.assertEqual(response.status, 400, body)
                self.assertIn(SLEEP_ERROR, body)
                self.assertNotIn("Traceback", body)

    def test_log_names_the_asyncio_worker(self) -> None:
        log = self.server.log_text()
        self.assertIn(WORKER_LOG_LINE, log)
        self.assertEqual(len(self.server.worker_pids()), 1, log)

    async def test_head_sends_headers_and_no_body(self) -> None:
        request = "{} /demo HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n"
        head = await raw_exchange(
            self.server.port, request.format("HEAD", HOST).encode(), read_to_eof=True
        )
        get = await raw_exchange(
            self.server.port, request.format("GET", HOST).encode(), read_to_eof=True
        )
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b"")
        self.assertTrue(head.headers["content-type"].startswith("text/html"))
        self.assertEqual(get.status, 200)
        self.assertIn(TITLE.encode(), get.body)
        # HEAD describes the body GET would have sent.
        self.assertEqual(int(head.headers["content-length"]), len(get.body))

    async def test_percent_escapes_reach_pyramid_decoded(self) -> None:
        cases = [
            # (raw path and query, status, text in the body)
            ("/dem%6F?sleep=0%2E05", 200, "waited 0.05 s"),  # path and query both decoded
            ("/demo?sleep=%2D1", 400, SLEEP_ERROR),  # "-1" once decoded
            ("/no%20such%20page", 404, "Not Found"),
            ("/%C3%A9t%C3%A9", 404, "Not Found"),  # UTF-8 path
        ]
        for raw, status, text in cases:
            with self.subTest(path=raw):
                url = URL(self.server.url(raw), encoded=True)
                async with self.session.get(url) as response:
                    body = await response.text()
                self.assertEqual(response.status, status, body)
                self.assertIn(text, body)

    async def test_undecodable_path_is_a_client_error(self) -> None:
        # %FF is not UTF-8: the client sent a bad URL, so the answer is a 4xx, never a 500.
        url = URL(self.server.url("/%FF"), encoded=True)
        async with self.session.get(url) as response:
            body = await response.text()
        self.assertTrue(400 <= response.status < 500, f"{response.status}: {body}")

    async def test_keep_alive_serves_many_requests_on_one_connection(self) -> None:
        counts = SimpleNamespace(created=0, reused=0)

        async def on_create(*_: object) -> None:
            counts.created += 1

        async def on_reuse(*_: object) -> None:
            counts.reused += 1

        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(on_create)
        trace.on_connection_reuseconn.append(on_reuse)
        requests = [
            ("GET", "/demo", 200),
            ("GET", "/demo?sleep=0.05", 200),
            ("GET", "/demo?sleep=abc", 400),
            ("GET", "/no-such-page", 404),
            ("POST", "/demo", 400),  # no CSRF token
            ("GET", "/demo", 200),
        ]
        statuses = []
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1),
            trace_configs=[trace],
            timeout=aiohttp.ClientTimeout(total=30),
        ) as session:
            for method, path, _ in requests:
                data = b"x" if method == "POST" else None
                async with session.request(method, self.server.url(path), data=data) as response:
                    await response.read()
                    statuses.append(response.status)
        self.assertEqual(statuses, [status for _, _, status in requests])
        self.assertEqual(counts.created, 1)
        self.assertEqual(counts.reused, len(requests) - 1)

    async def test_malformed_requests_get_4xx_and_the_worker_keeps_serving(self) -> None:
        workers_before = self.server.worker_pids()
        bad_requests = {
            "huge header": (
                b"GET /demo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
            ),
            "garbage request line": b"GARBAGE\r\n\r\n",
            "bad HTTP version": b"GET /demo HTTP/9.9\r\nHost: x\r\n\r\n",
            "no path": b"GET  HTTP/1.1\r\nHost: x\r\n\r\n",
        }
        for name, data in bad_requests.items():
            with self.subTest(request=name):
                response = await raw_exchange(self.server.port, data)
                self.assertTrue(400 <= response.status < 500, response)
        async with self.session.get(self.server.url("/demo")) as response:
            body = await response.text()
        self.assertEqual(response.status, 200)
        self.assertIn(TITLE, body)
        # The same worker answered: bad input did not crash it into a restart.
        self.assertEqual(self.server.worker_pids(), workers_before, self.server.log_tail())

    async def test_content_length_over_the_limit_is_413_without_reading_the_body(self) -> None:
        # Only the headers are sent: the 413 must come from Content-Length alone.
        request = (
            f"POST /demo HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {MAX_BODY_SIZE + 1}\r\n\r\n"
        )
        response = await raw_exchange(self.server.port, request.encode())
        self.assertEqual(response.status, 413)
        self.assertIn(str(MAX_BODY_SIZE).encode(), response.body)

    async def test_body_over_the_limit_is_413(self) -> None:
        async with self.session.post(
            self.server.url("/demo"), data=b"x" * (MAX_BODY_SIZE + 1)
        ) as response:
            body = await response.text()
        self.assertEqual(response.status, 413)
        self.assertIn("too large", body)

    async def test_chunked_body_growing_over_the_limit_is_413(self) -> None:
        chunk = b"x" * 65536

        async def growing_body() -> AsyncIterator[bytes]:
            # 20 chunks of 64 KiB: 1.25 MiB, past the limit with no Content-Length to warn.
            for _ in range(20):
                yield chunk

        async with self.session.post(self.server.url("/demo"), data=growing_body()) as response:
            body = await response.text()
            self.assertIsNone(response.request_info.headers.get("Content-Length"))
        self.assertEqual(response.status, 413)
        self.assertIn("too large", body)

    async def test_bodies_up_to_the_limit_are_accepted(self) -> None:
        async def chunked_body() -> AsyncIterator[bytes]:
            for _ in range(8):
                yield b"y" * 65536

        bodies = {"content-length at the limit": b"x" * MAX_BODY_SIZE, "chunked": chunked_body()}
        for name, data in bodies.items():
            with self.subTest(body=name):
                async with self.session.post(self.server.url("/demo"), data=data) as response:
                    text = await response.text()
                # Not 413: the body reached Pyramid, whose CSRF check read it and refused the
                # POST for its missing token (every unsafe request needs one).
                self.assertEqual(response.status, 400, text)
                self.assertIn("CSRF", text)

    async def test_no_answer_tells_the_server_versions(self) -> None:
        host = f"Host: {HOST}\r\n".encode()
        answers = {
            "page": b"GET /demo HTTP/1.1\r\n" + host + b"\r\n",
            "static file": b"GET /static/site.css HTTP/1.1\r\n" + host + b"\r\n",
            "bridge's 413": b"POST /demo HTTP/1.1\r\n" + host + b"Content-Length: 99999999\r\n\r\n",
            # aiohttp answers this itself: no application, no on_response_prepare hook.
            "unparsable request": b"GARBAGE\r\n\r\n",
            "websocket upgrade": b"GET /echo HTTP/1.1\r\n"
            + host
            + b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        }
        statuses = {}
        for name, data in answers.items():
            with self.subTest(answer=name):
                response = await raw_exchange(self.server.port, data)
                statuses[name] = response.status
                self.assertEqual(response.headers.get("server"), "aiotutorial", response.headers)
        self.assertEqual(
            statuses,
            {
                "page": 200,
                "static file": 200,
                "bridge's 413": 413,
                "unparsable request": 400,
                "websocket upgrade": 101,
            },
        )

    async def test_the_bridges_own_answers_cannot_be_framed_or_sniffed(self) -> None:
        host = f"Host: {HOST}\r\n".encode()
        refusals = {
            "413": b"POST /demo HTTP/1.1\r\n" + host + b"Content-Length: 99999999\r\n\r\n",
            "400 unreadable body": b"POST /demo HTTP/1.1\r\n"
            + host
            + b"Content-Encoding: gzip\r\nContent-Length: 3\r\n\r\na=1",
            "400 unknown host": b"GET /demo HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n",
        }
        for name, data in refusals.items():
            with self.subTest(refusal=name):
                response = await raw_exchange(self.server.port, data)
                self.assertEqual(str(response.status), name[:3])
                self.assertIn("frame-ancestors 'none'", response.headers["content-security-policy"])
                self.assertEqual(response.headers["x-frame-options"], "DENY")
                self.assertEqual(response.headers["x-content-type-options"], "nosniff")


class EchoWebsocketTests(ServerTestCase):
    """``/echo``: the websocket view through the greenlet bridge."""

    share_across_classes = True

    async def test_echoes_text_as_text_and_bytes_as_bytes(self) -> None:
        messages: list[str | bytes] = [
            "hello",
            b"\x00\x01\xfe\xff",
            "WebSocket rocks \u2713",
            b"",
            "",
            b"bytes again",
        ]
        async with self.session.ws_connect(self.server.ws_url("/echo")) as ws:
            # One at a time, then all sent before any is read: order and types must hold.
            for message in messages:
                await _send(ws, message)
                self.assertEqual(await _receive(ws), message)
            for message in messages:
                await _send(ws, message)
            received = [await _receive(ws) for _ in messages]
        self.assertEqual(received, messages)

    async def test_message_at_the_limit_is_echoed(self) -> None:
        message = b"m" * MAX_MESSAGE_SIZE
        async with self.session.ws_connect(self.server.ws_url("/echo")) as ws:
            await ws.send_bytes(message)
            self.assertEqual(await _receive(ws), message)

    async def test_message_over_the_limit_closes_with_1009(self) -> None:
        async with self.session.ws_connect(self.server.ws_url("/echo")) as ws:
            await ws.send_str("before")
            self.assertEqual(await _receive(ws), "before")
            await ws.send_bytes(b"m" * (MAX_MESSAGE_SIZE + 1))
            message = await ws.receive(timeout=5)
            self.assertEqual(message.type, WSMsgType.CLOSE, message)
            self.assertEqual(message.data, WSCloseCode.MESSAGE_TOO_BIG)
            self.assertEqual(ws.close_code, 1009)
        # The worker is fine: a new connection echoes again.
        async with self.session.ws_connect(self.server.ws_url("/echo")) as ws:
            await ws.send_str("after")
            self.assertEqual(await _receive(ws), "after")

    async def test_plain_get_is_400(self) -> None:
        async with self.session.get(self.server.url("/echo")) as response:
            body = await response.text()
        self.assertEqual(response.status, 400)
        self.assertIn("websocket", body)
        self.assertNotIn("Traceback", body)


class ConcurrencyTests(ServerTestCase):
    """The tutorial's point: one worker, one thread, many slow requests at once."""

    share_across_classes = True
    server_workers = 1

    async def test_200_concurrent_sleeping_requests_on_one_worker(self) -> None:
        # IsolatedAsyncioTestCase runs its loop in asyncio debug mode, which makes this client
        # (200 connections on one thread) about a second slower: the bound would then measure
        # the test's client, not the server. The server's loop is never in debug mode.
        loop = asyncio.get_running_loop()
        self.addCleanup(loop.set_debug, loop.get_debug())
        loop.set_debug(False)
        count = 200
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def fetch() -> tuple[int, str]:
                async with session.get(self.server.url("/demo?sleep=1")) as response:
                    return response.status, await response.text()

            started = time.perf_counter()
            results = await asyncio.gather(*(fetch() for _ in range(count)))
            elapsed = time.perf_counter() - started
        print(f"\n{count} concurrent GET /demo?sleep=1 on one worker: {elapsed:.2f} s")
        self.assertEqual([status for status, _ in results], [200] * count)
        self.assertTrue(all("waited 1.0 s" in body for _, body in results))
        self.assertGreaterEqual(elapsed, 1.0)  # they really slept...
        self.assertLess(elapsed, 3.0)  # ...all at the same time
        self.assertEqual(len(self.server.worker_pids()), 1)


class PserveTests(ServerTestCase):
    """``pserve development.ini`` reads ``[server:main]``: gunicorn with the asyncio worker."""

    @classmethod
    def make_server(cls, **kwargs: object) -> GunicornServer:
        return PserveServer(workers=1)

    def test_pserve_uses_the_asyncio_worker(self) -> None:
        log = self.server.log_text()
        self.assertIn(WORKER_LOG_LINE, log)
        # Listening where the rewritten [server:main] says: pserve really read the ini.
        self.assertIn(f"Listening at: http://{HOST}:{self.server.port}", log)

    async def test_pserve_serves_the_page_and_the_websocket(self) -> None:
        async with self.session.get(self.server.url("/demo")) as response:
            self.assertEqual(response.status, 200)
            self.assertIn(TITLE, await response.text())
        # Only the asyncio worker can hold a websocket; a sync worker would fail the upgrade.
        async with self.session.ws_connect(self.server.ws_url("/echo")) as ws:
            await ws.send_str("through pserve")
            self.assertEqual(await _receive(ws), "through pserve")


class GracefulShutdownTests(ServerTestCase):
    """SIGTERM to the master: work in flight finishes, websockets hear 1001, then it exits,
    leaving nothing half-done in its log.

    Each test stops its server, so each starts its own instead of sharing the class's.
    """

    shared_server = False

    async def assert_exits_cleanly(self, server: GunicornServer, within: float) -> None:
        """The master exits with status 0 within ``within`` s and its port then refuses."""
        try:
            await wait_for(lambda: server.returncode is not None, within)
        except TimeoutError:
            self.fail(f"server still running {within} s after SIGTERM:\n{server.log_tail()}")
        self.assertEqual(server.returncode, 0, server.log_tail())
        with self.assertRaises(ConnectionRefusedError):
            _, writer = await asyncio.open_connection(HOST, server.port)
            writer.close()

    async def test_request_in_flight_completes_after_sigterm(self) -> None:
        graceful_timeout = 5
        server = self.start_server(extra_args=["--graceful-timeout", str(graceful_timeout)])
        started = time.perf_counter()
        request = asyncio.create_task(self._get_text(server.url("/demo?sleep=2")))
        await asyncio.sleep(0.5)
        self.assertFalse(request.done())
        server.send_signal(signal.SIGTERM)
        signalled = time.perf_counter()
        status, body = await request
        self.assertEqual(status, 200, server.log_tail())
        self.assertIn("waited 2.0 s", body)
        self.assertGreaterEqual(time.perf_counter() - started, 2.0)
        await self.assert_exits_cleanly(
            server, graceful_timeout - (time.perf_counter() - signalled)
        )
        self.assertIn("Handling signal: term", server.log_text())

    async def test_open_websocket_is_closed_with_1001_on_sigterm(self) -> None:
        # The default graceful_timeout (30 s): closing the socket must let the worker exit
        # long before it, rather than the socket holding shutdown until the timeout.
        server = self.start_server()
        async with self.session.ws_connect(server.ws_url("/echo")) as ws:
            await ws.send_str("still there?")
            self.assertEqual(await _receive(ws), "still there?")
            server.send_signal(signal.SIGTERM)
            message = await ws.receive(timeout=10)
            self.assertEqual(message.type, WSMsgType.CLOSE, message)
            self.assertEqual(message.data, WSCloseCode.GOING_AWAY)
            self.assertEqual(ws.close_code, 1001)
        await self.assert_exits_cleanly(server, 10)

    async def test_refused_bodies_leave_no_task_behind_at_shutdown(self) -> None:
        # Refused from Content-Length alone, each client gone before sending its body: aiohttp
        # still lingers on each connection to drain it when the worker shuts down.
        server = self.start_server()
        request = (
            f"POST /demo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {MAX_BODY_SIZE + 1}\r\n"
            "\r\nthe start of a body"
        )
        for _ in range(3):
            response = await raw_exchange(server.port, request.encode())
            self.assertEqual(response.status, 413)
        server.send_signal(signal.SIGTERM)
        await self.assert_exits_cleanly(server, 10)
        log = server.log_text()
        self.assertIn("Worker exiting", log)
        self.assertNotIn("Task was destroyed", log)
        self.assertNotIn(" ERROR ", log)

    async def test_an_unreadable_body_is_one_info_line_in_the_log(self) -> None:
        server = self.start_server()
        response = await raw_exchange(
            server.port,
            f"POST /demo HTTP/1.1\r\nHost: {HOST}\r\nContent-Encoding: gzip\r\n"
            "Content-Length: 3\r\n\r\na=1".encode(),
        )
        self.assertEqual(response.status, 400)
        self.assertEqual(response.headers.get("connection"), "close")
        # Stopped, so that whatever the worker would log about that connection is out.
        server.send_signal(signal.SIGTERM)
        await self.assert_exits_cleanly(server, 10)
        log = server.log_text()
        about_it = [line for line in log.splitlines() if "gzip" in line or "ncoding" in line]
        self.assertEqual(len(about_it), 1, log)
        self.assertRegex(about_it[0], r" INFO +\[aiotutorial\.aio\.wsgi:\d+\]")
        self.assertIn("unreadable body in POST /demo", about_it[0])
        self.assertNotIn("Unhandled exception", log)
        self.assertNotIn("Traceback", log)

    async def _get_text(self, url: str) -> tuple[int, str]:
        async with self.session.get(url) as response:
            return response.status, await response.text()


async def _send(ws: aiohttp.ClientWebSocketResponse, message: str | bytes) -> None:
    if isinstance(message, str):
        await ws.send_str(message)
    else:
        await ws.send_bytes(message)


async def _receive(ws: aiohttp.ClientWebSocketResponse) -> str | bytes:
    """The next data message, typed by its frame: text as ``str``, binary as ``bytes``."""
    message = await ws.receive(timeout=5)
    if message.type is WSMsgType.TEXT:
        return str(message.data)
    if message.type is WSMsgType.BINARY:
        return bytes(message.data)
    raise AssertionError(f"expected a data message, got {message!r}")
