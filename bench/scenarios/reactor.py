"""The reacting socket of scenario 9 (reactions.py): it reacts to recent messages and learns
which change of the channel each of its reactions became.

``Reactor`` is an aiohttp websocket in the harness, signed in as the sending user, that reads
every frame (JSON): it keeps the ids of the last ``RECENT`` messages, sends ``react`` frames
(``{"type": "react", "id": ID, "emoji": ..., "ref": ...}``, docs/protocol.md) on one of them
with one of four emoji, and maps the answer to each (the ``message.changed`` frame with its
``ref``) to its position in the channel's stream of changes and the time the frame was sent.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import time

import aiohttp

__all__ = ["Reactor", "RECENT", "EMOJI"]

RECENT = 20
EMOJI = ("👍", "🎉", "😂", "🔥")


class Reactor:
    """A socket in the harness that reacts to recent messages and times its changes."""

    def __init__(self, port: int, path: str, cookie: str) -> None:
        self.url = f"http://127.0.0.1:{port}{path}"
        self.cookie = cookie
        self.recent: collections.deque[int] = collections.deque(maxlen=RECENT)
        self.pending: dict[str, float] = {}  # ref -> when its react was sent
        self.sent_by_change: dict[str, float] = {}  # change position -> when it was asked
        self.errors: dict[str, int] = {}
        self.number = 0
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(headers={"Cookie": self.cookie})
        self.ws = await self.session.ws_connect(self.url, heartbeat=None, max_msg_size=0)
        self.reader = asyncio.create_task(self._read())
        await asyncio.wait_for(self.ready.wait(), 30)

    def reset(self) -> None:
        self.pending.clear()
        self.sent_by_change.clear()
        self.errors.clear()

    async def _read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(frame.data)
            kind = data.get("type")
            if kind == "ready":
                self.ready.set()
            elif kind == "message" and isinstance(data.get("id"), int):
                self.recent.append(data["id"])
            elif kind == "message.changed":
                asked = self.pending.pop(data.get("ref"), None)
                if asked is not None:
                    self.sent_by_change[str(data["change"])] = asked
            elif kind == "error":
                self.pending.pop(data.get("ref"), None)
                code = str(data.get("error") or data.get("code"))
                self.errors[code] = self.errors.get(code, 0) + 1

    async def react(self) -> bool:
        """One react frame on a recent message (False when none was seen yet)."""
        if not self.recent or self.ws is None:
            return False
        self.number += 1
        ref = f"react{self.number}"
        frame = {
            "type": "react",
            "id": random.choice(self.recent),
            "emoji": EMOJI[self.number % len(EMOJI)],
            "ref": ref,
        }
        self.pending[ref] = time.time()
        await self.ws.send_str(json.dumps(frame))
        return True

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        if self.session is not None:
            await self.session.close()
