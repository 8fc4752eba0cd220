"""What a fuzzer found, kept found: each input below once answered 500, killed a socket, or
logged a traceback. Now each gets a 4xx or an error frame, and the server logs one line.

HTTP in-process (``AppTest``, the whole application in a rolled-back transaction); websockets
and the log on a real gunicorn server.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from pyramid.session import JSONSerializer
from webob.cookies import SignedSerializer

from aiotutorial.accounts import SESSION_COOKIE

from ..dbtest import AppTest
from .accountclient import csrf_token, new_password, new_username
from .chatservers import ChatServersTest
from .servertest import raw_exchange

SECRET = "bad-input-secret-" + "y" * 40


class HttpInputTests(AppTest):
    settings: ClassVar[dict[str, Any]] = {
        "session.secret": SECRET,
        "aio.allowed_hosts": "127.0.0.1 localhost",
    }

    def app_settings(self) -> dict[str, Any]:
        return {**super().app_settings(), **self.settings}

    async def test_a_body_not_in_its_content_encoding_is_a_400(self) -> None:
        for path in ("/healthz", "/login", "/channels"):
            with self.subTest(path=path):
                response = await self.client.post(
                    path, data=b"a=1", headers={"Content-Encoding": "gzip"}
                )
                self.assertEqual(response.status, 400)

    async def test_multipart_without_a_boundary_is_a_400(self) -> None:
        response = await self.client.post(
            "/login", data=b"x", headers={"Content-Type": "multipart/form-data"}
        )
        self.assertEqual(response.status, 400)
        self.assertNotIn("Traceback", await response.text())

    async def test_json_nested_too_deep_is_a_400(self) -> None:
        # A signed-in user with a CSRF token, as the JSON API needs.
        page = await (await self.client.get("/register")).text()
        data = {"csrf_token": csrf_token(page), "username": new_username()}
        data["password"] = new_password()
        response = await self.client.post("/register", data=data, allow_redirects=False)
        self.assertEqual(response.status, 303)
        token = csrf_token(await (await self.client.get("/register")).text())
        response = await self.client.post(
            "/channels",
            data="[" * 1000 + "]" * 1000,
            headers={"Content-Type": "application/json", "X-CSRF-Token": token},
        )
        self.assertEqual(response.status, 400)
        self.assertEqual((await response.json())["error"], "bad_parameter")

    async def test_a_nul_in_a_form_field_is_a_400(self) -> None:
        token = csrf_token(await (await self.client.get("/login")).text())
        for path in ("/login", "/register"):
            with self.subTest(path=path):
                response = await self.client.post(
                    path,
                    data={"csrf_token": token, "username": "al\x00ice", "password": "x" * 12},
                )
                self.assertEqual(response.status, 400)

    async def test_an_unknown_host_is_a_400_not_a_redirect_elsewhere(self) -> None:
        response = await self.client.get(
            "/logout", headers={"Host": "evil.example"}, allow_redirects=False
        )
        self.assertEqual(response.status, 400)
        response = await self.client.get("/login", headers={"Host": "localhost:8080"})
        self.assertEqual(response.status, 200)

    async def test_a_signed_cookie_that_is_not_a_session_is_no_session(self) -> None:
        signer = SignedSerializer(SECRET, "pyramid.session.", "sha512", JSONSerializer())
        for value in (5, "text", [1, 2, "state"], [1, 2, 3, 4], {"a": 1}):
            with self.subTest(value=value):
                cookie = signer.dumps(value).decode()
                response = await self.client.get(
                    "/login", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}
                )
                self.assertEqual(response.status, 200)


class SocketInputTests(ChatServersTest):
    b_workers = None

    async def test_bad_text_in_frames_gets_error_frames_and_the_socket_stays(self) -> None:
        client = await self.user(self.a)
        channel = await client.new_channel()
        sock = await client.connect(channel)
        cases = {
            '{"type": "message", "content": "a\\u0000b"}': "bad_content",
            '{"type": "message", "content": "x\\ud800y"}': "bad_content",
            "[" * 5000 + "]" * 5000: "bad_json",
            '{"type": "game.kick", "user": "a\\u0000b"}': "bad_kick",
        }
        for text, code in cases.items():
            with self.subTest(frame=text[:40]):
                self.assertEqual(await sock.error_after(text), code)
        await sock.send("still open")
        await sock.wait_for(lambda f: f["type"] == "message" and f["content"] == "still open")

    async def test_a_flood_of_refused_frames_is_closed_with_a_reason(self) -> None:
        client = await self.user(self.a)
        channel = await client.new_channel()
        flooder = await client.connect(channel)
        witness = await (await self.user(self.a)).connect(channel)
        for _ in range(2000):
            await flooder.send_raw("not json")
        code = await flooder.wait_closed(15)
        self.assertEqual(code, 1008)
        self.assertEqual(flooder.ws.close_code, 1008)
        self.assertGreater(len(flooder.errors), 10, "it got its error frames first")
        # Others on the worker carry on.
        await witness.send("fine here")
        await witness.wait_for(lambda f: f["type"] == "message" and f["content"] == "fine here")

    async def test_client_errors_are_one_line_in_the_log(self) -> None:
        for data in (
            b"GARBAGE\r\n\r\n",
            b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: 3\r\n\r\na=1",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc",
        ):
            try:
                await raw_exchange(self.a.port, data, timeout=2)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                pass
        await asyncio.sleep(0.5)
        log = self.a.log_text()
        self.assertNotIn("Traceback", log)
        self.assertNotIn(" ERROR ", log)
