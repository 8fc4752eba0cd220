"""In-process fakes of what the chat's hub talks to: a database engine, connections and results
whose answers are scripted, a hub member, websockets (one that drains what it is sent, one that
keeps what a member writes).

With them the unit tests (``PresenceFlushTests``, ``JoinCatchUpTests``, the realtime faults)
pin down races that the servers show only now and then, and tests/functional/
test_websocket_memory.py follows what an idle member holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
from typing import Any


class _FakeResult:
    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    async def fetchall(self) -> list[Any]:
        return self.rows


class _SlowConnection:
    """Answers every query with ``users``, once ``gate`` is open."""

    def __init__(self, gate: asyncio.Event, users: list[str]) -> None:
        self.gate = gate
        self.users = users

    async def execute(self, query: Any) -> _FakeResult:
        await self.gate.wait()
        return _FakeResult([type("Row", (), {"username": user})() for user in self.users])


class _FakeEngine:
    def __init__(self, connection: _SlowConnection) -> None:
        self.connection = connection

    @contextlib.asynccontextmanager
    async def acquire(self) -> Any:
        yield self.connection


class _FakeMember:
    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def send_frame(self, text: str) -> None:
        self.frames.append(json.loads(text))


class _FakeSocket:
    """The ``ws`` a websocket view gets: keeps the frames sent; the client sends nothing."""

    closed = False

    def __init__(self, request: Any) -> None:
        self.request = request
        self.sent: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def send_encoded(self, data: bytes) -> None:
        self.sent.append(json.loads(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True

    def close_soon(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True

    async def finish_request(self) -> None:
        self.request = None

    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> str:
        raise StopAsyncIteration


class RecordingSocket:
    """What a ``Member`` writes to, at its simplest: every frame written at once and kept."""

    closed = False

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_encoded_now(self, data: bytes) -> None:
        self.sent.append(data)


class _ScriptedTransaction:
    is_active = True

    async def commit(self) -> None:
        self.is_active = False

    async def rollback(self) -> None:
        self.is_active = False


class _ScriptedConnection:
    """Presence writes wait for ``gate``; history queries answer from ``history``."""

    in_transaction = False

    def __init__(self, gate: asyncio.Event, rows: list[Any]) -> None:
        self.gate = gate
        self.history = rows

    async def begin(self) -> _ScriptedTransaction:
        return _ScriptedTransaction()

    async def scalar(self, query: Any, **params: Any) -> Any:
        return max(row.id for row in self.history) if "max" in str(query) else None

    async def execute(self, query: Any, **params: Any) -> _FakeResult:
        # The presence upsert (the group commit's, with its parameters) and its pg_notify.
        await self.gate.wait()
        return _FakeResult([])

    async def rows(self, query: Any, **params: Any) -> list[tuple[Any, ...]]:
        """A history page (``chat.page_statement``): rows after ``after``, by position, with
        no readers (the last column of the shape that reads every message: none held back)."""
        newer = [row for row in self.history if row.id > params["after"]]
        return [
            (row.id, row.channel, row.user, row.time, row.content, *[None] * 8)
            for row in newer[: params["limit"]]
        ]


def _message_row(message_id: int) -> Any:
    return type(
        "Row",
        (),
        {
            "id": message_id,
            "channel": "room",
            "user": "alice",
            "time": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
            "content": f"message {message_id}",
        },
    )()


class DrainingSocket:
    """Stands for aiohttp's WebSocketResponse: ``send_frame`` writes at once unless the
    transport is paused, then waits on a future until the client reads (as aiohttp's drain
    helper does)."""

    def __init__(self) -> None:
        self.closed = False
        self.close_code: int | None = None
        self.sent: list[bytes] = []
        self.paused: asyncio.Future[None] | None = None

    async def send_frame(self, data: bytes, opcode: Any) -> None:
        self.sent.append(data)
        if self.paused is not None:
            await self.paused

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        self.closed = True
        self.close_code = code
