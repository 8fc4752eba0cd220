"""The soak's clients: users signed in over HTTP, sockets that reconnect by themselves, the
poster that keeps a steady rate of messages, and the log of every HTTP status anyone saw.

A ``SoakSocket`` is one logical chat client, as a browser tab is: it connects to its instance
with ``?after=<highest id it has>`` (``after=0`` the first time: the channel is new, so it gets
everything), keeps every frame with the time it arrived and the connection it came on, and
when the socket closes for any reason it reconnects after the browser's backoff (0.5 s doubling
up to 10 s, each drawn in [75 %, 125 %], back to 0.5 s once a connection is live again).

A message is *sent* once its frame is written to a live socket, and *acknowledged* once that
same client receives it back with an id (the frame's content carries a unique token). An error
frame, the socket closing, or 30 s without an answer make it *unacknowledged*: it may be lost,
or it may turn up later (committed before the failure was seen); the checks count which.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import WSMsgType

from harness.chatclient import ChatClient

__all__ = [
    "ACK_TIMEOUT",
    "Connection",
    "HttpLog",
    "Poster",
    "SentMessage",
    "SoakSocket",
    "TOKEN",
    "User",
]

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
ACK_TIMEOUT = 30.0
HANDSHAKE_TIMEOUT = 15.0
TOKEN = re.compile(r"\bsoak([0-9a-f]{6})-(\d{6})\b")


def now() -> float:
    return time.monotonic()


# --------------------------------------------------------------------------------- HTTP log


@dataclass
class HttpRecord:
    source: str
    method: str
    path: str
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    started: float
    ended: float
    error: str = ""


class HttpLog:
    """Every HTTP exchange of every client and fuzzer: statuses counted, 5xx kept whole."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.failures: Counter[str] = Counter()
        self.server_errors: list[HttpRecord] = []
        self.count = 0

    def status(self, source: str, method: str, path: str, status: int, started: float) -> None:
        self.count += 1
        self.statuses[status] += 1
        if status >= 500:
            self.server_errors.append(HttpRecord(source, method, path, status, started, now()))

    def failure(self, source: str, method: str, path: str, error: BaseException | str) -> None:
        self.count += 1
        name = error if isinstance(error, str) else type(error).__name__
        self.failures[name] += 1


# -------------------------------------------------------------------------------- messages


@dataclass
class SentMessage:
    seq: int
    token: str
    content: str
    client: str
    sent: float
    connection: int
    outcome: str = "pending"  # acked, error:<code>, closed:<code>, timeout
    answered: float | None = None
    id: int | None = None

    @property
    def acked(self) -> bool:
        return self.outcome == "acked"


# -------------------------------------------------------------------------------- users


class User:
    """A registered user: the cookie jar every one of its sockets shares."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.name = client.username

    @property
    def jar(self) -> aiohttp.abc.AbstractCookieJar:
        return self.client.session.cookie_jar

    async def close(self) -> None:
        await self.client.close()


# ------------------------------------------------------------------------------- sockets


@dataclass
class Connection:
    """One websocket connection of a client, from handshake to close."""

    index: int
    after: int
    opened: float
    ready: float | None = None
    closed: float | None = None
    close_code: int | None = None
    ids: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    final: bool = False  # the catch-up at the end
    by_client: bool = False  # closed by this side (stopping, or the final catch-up done)


class SoakSocket:
    """One logical client on ``channel`` through ``port``, reconnecting by itself."""

    def __init__(
        self,
        name: str,
        user: User,
        port: Callable[[], int],
        channel: str,
        http_log: HttpLog,
        *,
        checked: bool = True,
    ) -> None:
        self.name = name
        self.user = user
        self.server = name.split("/")[0]
        self._port = port
        self.channel = channel
        self.http_log = http_log
        self.checked = checked
        self.connections: list[Connection] = []
        self.contents: dict[int, str] = {}
        self.content_mismatches = 0
        self.max_id = 0
        self.error_frames: Counter[str] = Counter()
        self.close_codes: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()  # handshakes that did not open
        self.other_frames: Counter[str] = Counter()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pending: SentMessage | None = None
        self._pending_done: asyncio.Event | None = None
        self._attempts = 0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._live = asyncio.Event()

    def __repr__(self) -> str:
        return f"<SoakSocket {self.name} {self.user.name}>"

    # --- state ------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self._live.is_set()

    @property
    def current(self) -> Connection | None:
        return self.connections[-1] if self.connections else None

    async def wait_live(self, timeout: float) -> bool:  # noqa: ASYNC109
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._live.wait(), timeout)
        return self.live

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop reconnecting and close the socket (1000)."""
        self._stopping.set()
        ws = self.ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._task, 10)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task

    async def final_catch_up(self, timeout: float = 30.0) -> bool:  # noqa: ASYNC109
        """After ``stop``: connect once more with ``after=`` the highest id, read to ``ready``,
        close. True if ``ready`` came."""
        deadline = now() + timeout
        while now() < deadline:
            outcome = await self._connect_once(final=True, until_ready=True)
            if outcome:
                return True
            await asyncio.sleep(0.5)
        return False

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self._connect_once()
            if self._stopping.is_set():
                break
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2**self._attempts)
            self._attempts += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay * random.uniform(0.75, 1.25))

    async def _connect_once(self, *, final: bool = False, until_ready: bool = False) -> bool:
        """One connection, from handshake to close; True if it reached ``ready``."""
        port = self._port()
        path = f"/channels/{self.channel}/ws?after={self.max_id}"
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True), cookie_jar=self.user.jar
        )
        started = now()
        try:
            try:
                async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                    ws = await session.ws_connect(
                        f"ws://127.0.0.1:{port}{path}", autoping=True, max_msg_size=0
                    )
            except aiohttp.WSServerHandshakeError as exc:
                self.http_log.status(self.name, "GET", path, exc.status, started)
                self.refusals[str(exc.status)] += 1
                return False
            except (OSError, aiohttp.ClientError, TimeoutError) as exc:
                self.http_log.failure(self.name, "GET", path, exc)
                self.refusals[type(exc).__name__] += 1
                return False
            self.http_log.status(self.name, "GET", path, 101, started)
            connection = Connection(len(self.connections), self.max_id, now(), final=final)
            self.connections.append(connection)
            self.ws = ws
            try:
                await self._read(ws, connection, until_ready)
            finally:
                self.ws = None
                self._live.clear()
                if until_ready:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(ws.close(), 5)
                connection.closed = now()
                connection.close_code = ws.close_code
                connection.by_client = until_ready or self._stopping.is_set()
                code = "closed by the client" if connection.by_client else str(ws.close_code)
                self.close_codes[code] += 1
                self._fail_pending(f"closed:{ws.close_code}")
            return connection.ready is not None
        finally:
            await session.close()

    async def _read(
        self, ws: aiohttp.ClientWebSocketResponse, connection: Connection, until_ready: bool
    ) -> None:
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                self._on_text(message.data, connection)
                if until_ready and connection.ready is not None:
                    return
            elif message.type is WSMsgType.BINARY:
                self.other_frames["binary"] += 1
            elif message.type is WSMsgType.ERROR:
                break

    def _on_text(self, data: str, connection: Connection) -> None:
        arrived = now()
        frame = json.loads(data)
        kind = frame.get("type")
        if kind == "message":
            message_id = frame["id"]
            content = frame.get("content", "")
            connection.ids.append(message_id)
            connection.times.append(arrived)
            known = self.contents.setdefault(message_id, content)
            if known != content:
                self.content_mismatches += 1
            self.max_id = max(self.max_id, message_id)
            pending = self.pending
            if pending is not None and pending.token in content:
                pending.outcome, pending.answered, pending.id = "acked", arrived, message_id
                self._resolve()
        elif kind == "ready":
            connection.ready = arrived
            self._attempts = 0
            self._live.set()
        elif kind == "error":
            self.error_frames[str(frame.get("error"))] += 1
            self._fail_pending(f"error:{frame.get('error')}")
        else:
            self.other_frames[str(kind)] += 1

    # --- posting ----------------------------------------------------------------------

    def _resolve(self) -> None:
        self.pending = None
        if self._pending_done is not None:
            self._pending_done.set()

    def _fail_pending(self, outcome: str) -> None:
        if self.pending is not None:
            self.pending.outcome, self.pending.answered = outcome, now()
            self._resolve()

    @property
    def idle(self) -> bool:
        return self.live and self.pending is None and self.ws is not None

    async def post(self, message: SentMessage) -> bool:
        """Send ``message`` and wait for its answer; False if it could not even be written."""
        ws, connection = self.ws, self.current
        if ws is None or connection is None:
            return False
        self.pending = message
        self._pending_done = done = asyncio.Event()
        message.connection = connection.index
        try:
            await ws.send_str(json.dumps({"type": "message", "content": message.content}))
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            self.pending = None
            return False
        message.sent = now()
        try:
            await asyncio.wait_for(done.wait(), ACK_TIMEOUT)
        except TimeoutError:
            if self.pending is message:
                self._fail_pending("timeout")
        return True


# --------------------------------------------------------------------------------- poster


class Poster:
    """Posts at ``rate`` messages a second in total, each on the next idle live socket
    (round robin), and keeps every message sent."""

    def __init__(self, sockets: list[SoakSocket], rate: float, run_id: str) -> None:
        self.sockets = sockets
        self.rate = rate
        self.run_id = run_id
        self.messages: list[SentMessage] = []
        self.by_token: dict[str, SentMessage] = {}
        self.skipped = 0  # ticks with no idle live socket
        self.send_failed = 0
        self._turn = itertools.cycle(range(len(sockets)))
        self._seq = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()

    def _pick(self) -> SoakSocket | None:
        for _ in range(len(self.sockets)):
            candidate = self.sockets[next(self._turn)]
            if candidate.idle:
                return candidate
        return None

    async def run(self, until: float) -> None:
        start = now()
        for tick in itertools.count():
            at = start + tick / self.rate
            if at >= until:
                break
            await asyncio.sleep(max(0.0, at - now()))
            sock = self._pick()
            if sock is None:
                self.skipped += 1
                continue
            seq = next(self._seq)
            token = f"soak{self.run_id}-{seq:06d}"
            message = SentMessage(seq, token, f"{token} {sock.user.name}", sock.name, now(), -1)
            task = asyncio.ensure_future(self._post(sock, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, sock: SoakSocket, message: SentMessage) -> None:
        self.messages.append(message)
        self.by_token[message.token] = message
        if not await sock.post(message):
            # Never written: not sent at all (the socket closed under it).
            self.send_failed += 1
            self.messages.remove(message)
            del self.by_token[message.token]

    async def drain(self, timeout: float = ACK_TIMEOUT + 5) -> None:  # noqa: ASYNC109
        """Wait for the answers of the messages still in flight."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
