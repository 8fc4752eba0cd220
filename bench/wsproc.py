"""Websocket client processes for the fan-out and capacity scenarios, and the harness's side.

``python -m bench.wsproc --port P --path /channels/x/ws --cookie C --count N`` opens N sockets
(``bench.wsclient.WSClient``; bounded concurrency and time), waits for each one's ``ready``
frame, prints one JSON line ``{"event": "connected", ...}`` and then answers JSON commands, one
per line on stdin: ``count``, ``stats`` (deliveries and their send-to-arrival histogram; with
``"sent": {change position: time}``, also the delay of each of those ``message.changed``),
``reset``, ``marker`` (wait until every socket has seen a marker: a broadcast's time) and
``quit``. ``ClientProcess`` is the harness's side of that conversation; every client process
still running is killed at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import signal
import sys
import time
from typing import Any

from harness.stats import Histogram

from .common import PROJECT_ROOT, raise_nofile
from .wsclient import Stats, WSClient, open_client

__all__ = ["ClientProcess", "kill_client_processes", "main"]

# Client processes not yet stopped: killed at exit whatever happened.
_live_pids: set[int] = set()


# --- the client process ---------------------------------------------------------------------


def _slowest(clients: list[WSClient]) -> dict[str, float] | None:
    """The socket slowest to be ready: seconds to connect, to be upgraded, then to be ready
    (a stall shows where it was: the kernel's queue, the upgrade, or the join)."""
    if not clients:
        return None
    slow = max(clients, key=lambda client: client.ready_at - client.begun)
    return {
        "total": slow.ready_at - slow.begun,
        "connect": slow.connected_at - slow.begun,
        "upgrade": slow.opened_at - slow.connected_at,
        "join": slow.ready_at - slow.opened_at,
    }


class _Process:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stats = Stats()
        self.clients: list[WSClient] = []
        self.failures: dict[str, int] = {}
        self.marker_waiter: asyncio.Event = asyncio.Event()

    def say(self, event: str, **fields: Any) -> None:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()

    async def connect_all(self) -> None:
        args = self.args
        started = time.monotonic()
        deadline = started + args.connect_timeout
        semaphore = asyncio.Semaphore(args.concurrency)

        async def one() -> None:
            async with semaphore:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.failures["deadline"] = self.failures.get("deadline", 0) + 1
                    return
                try:
                    client = await open_client(
                        args.port, args.path, args.cookie, self.stats, within=remaining
                    )
                except (OSError, TimeoutError) as exc:
                    reason = str(exc)[:120] or type(exc).__name__
                    self.failures[reason] = self.failures.get(reason, 0) + 1
                    return
                client.on_marker = self.marker_waiter.set
                self.clients.append(client)

        await asyncio.gather(*(one() for _ in range(args.count)))
        self.say(
            "connected",
            ok=len(self.clients),
            failed=sum(self.failures.values()),
            failures=dict(list(self.failures.items())[:5]),
            seconds=time.monotonic() - started,
            slowest=_slowest(self.clients),
        )

    def stats_reply(self, full: bool, sent: dict[str, float] | None = None) -> dict[str, Any]:
        stats = self.stats
        reply: dict[str, Any] = {
            "deliveries": stats.deliveries,
            "changed": len(stats.changes),
            "other": stats.other,
            "errors": stats.errors,
            "closed": stats.closed,
            "open": sum(1 for client in self.clients if not client.closed),
        }
        if full:
            reply.update(first=stats.first, last=stats.last, hist=stats.histogram.sparse())
        if sent is not None:
            # The changes the harness caused, by position, timed from when it asked for each.
            changed = Histogram()
            matched = 0
            for position, arrived in stats.changes:
                asked = sent.get(str(position))
                if asked is not None:
                    matched += 1
                    changed.counts[Histogram.index(arrived - asked)] += 1
            reply.update(changed_matched=matched, changed_hist=changed.sparse())
        return reply

    async def wait_marker(self, marker: bytes, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        live = [client for client in self.clients if not client.closed]
        while True:
            got = [client for client in live if client.marker == marker]
            if len(got) == len(live) or time.monotonic() >= deadline:
                break
            self.marker_waiter.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.marker_waiter.wait(), max(0.0, deadline - time.monotonic())
                )
        delays = sorted(client.marker_delay for client in got)
        return {
            "got": len(got),
            "of": len(live),
            "max": delays[-1] if delays else None,
            "median": delays[len(delays) // 2] if delays else None,
        }

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            command = json.loads(line)
            name = command.get("cmd")
            if name == "count":
                self.say("count", **self.stats_reply(False))
            elif name == "stats":
                self.say("stats", **self.stats_reply(True, command.get("sent")))
            elif name == "reset":
                self.stats.reset()
                self.say("reset")
            elif name == "marker":
                result = await self.wait_marker(
                    command["marker"].encode(), float(command.get("timeout", 10))
                )
                self.say("marker", **result)
            elif name == "quit":
                break
        await self.close_all()
        self.say("bye")

    async def close_all(self) -> None:
        for client in self.clients:
            client.close()
        deadline = time.monotonic() + 3.0
        # Polled: the server answers each close frame; bounded, then the rest are aborted.
        while time.monotonic() < deadline and any(not c.closed for c in self.clients):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for client in self.clients:
            if not client.closed:
                client.abort()


async def _main(args: argparse.Namespace) -> None:
    process = _Process(args)
    await process.connect_all()
    await process.serve()


def main() -> None:
    parser = argparse.ArgumentParser(description="Websocket clients for the benchmark.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--cookie", default="")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--connect-timeout", type=float, default=60.0)
    args = parser.parse_args()
    raise_nofile()
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(_main(args))


# --- the harness's side -------------------------------------------------------------------------


class ClientProcess:
    """One ``python -m bench.wsclient`` process and its command channel."""

    def __init__(self, process: asyncio.subprocess.Process, count: int) -> None:
        self.process = process
        self.count = count
        self.connected: dict[str, Any] = {}

    @classmethod
    async def start(
        cls,
        port: int,
        path: str,
        cookie: str | None,
        count: int,
        *,
        concurrency: int = 50,
        connect_timeout: float = 60.0,
    ) -> ClientProcess:
        argv = [
            sys.executable,
            "-m",
            "bench.wsproc",
            "--port",
            str(port),
            "--path",
            path,
            "--count",
            str(count),
            "--concurrency",
            str(concurrency),
            "--connect-timeout",
            str(connect_timeout),
        ]
        if cookie:
            argv += ["--cookie", cookie]
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=PROJECT_ROOT,
            start_new_session=True,
            limit=1 << 22,
        )
        _live_pids.add(process.pid)
        return cls(process, count)

    async def read_event(self, event: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {event!r} from the websocket clients in {timeout} s")
            line = await asyncio.wait_for(self.process.stdout.readline(), remaining)
            if not line:
                raise ConnectionError(f"websocket client process exited before {event!r}")
            reply = json.loads(line)
            if reply.get("event") == event:
                return reply

    async def wait_connected(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        self.connected = await self.read_event("connected", timeout)
        return self.connected

    async def ask(self, command: dict[str, Any], event: str, timeout: float = 30.0) -> dict:  # noqa: ASYNC109
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()
        return await self.read_event(event, timeout)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(Exception):
                await self.ask({"cmd": "quit"}, "bye", timeout=15)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 5)
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.process.wait(), 5)
        _live_pids.discard(self.process.pid)


@atexit.register
def kill_client_processes() -> None:
    for pid in list(_live_pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _live_pids.discard(pid)


if __name__ == "__main__":
    main()
