"""The harness's side of the NOTIFY counter (``python -m bench.strokes listen``).

``BusCounter`` starts the counter process (``listener.py``) in a session of its own and asks it,
one JSON line on its stdin, for the totals so far; ``Meter`` turns two answers into rates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from typing import Any

from ..common import PROJECT_ROOT

__all__ = ["BusCounter"]


class BusCounter:
    """``python -m bench.strokes listen``: a LISTEN connection counting every notification."""

    def __init__(self, dsn: str, app_name: str, mine: str) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "bench.strokes",
            "listen",
            "--dsn",
            dsn,
            "--app",
            app_name,
            "--mine",
            mine,
        ]
        self.process: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = {}

    async def start(self) -> BusCounter:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )
        self.info = await self._read(20.0)
        return self

    async def _read(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        assert self.process is not None and self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise ConnectionError("the NOTIFY counter exited")
        return json.loads(line)

    async def count(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(b'{"cmd": "count"}\n')
        await self.process.stdin.drain()
        return await self._read(20.0)

    async def stop(self) -> None:
        process = self.process
        if process is None:
            return
        with contextlib.suppress(Exception):
            if process.returncode is None and process.stdin is not None:
                process.stdin.write(b'{"cmd": "quit"}\n')
                await process.stdin.drain()
            await asyncio.wait_for(process.wait(), 5)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), 5)
        self.process = None
