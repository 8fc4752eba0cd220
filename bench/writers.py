"""The write-path scenario's senders (bench/scenarios/writes.py), in a process of their own.

``python -m bench.writers`` reads one JSON line of orders on stdin (port, channel, cookies,
sockets, window, seconds), opens the sockets (each with the next cookie, in turn) and makes
each keep ``window`` messages in flight for ``seconds``: a message is sent with a ``ref``, and
when its echo (the stored message with that ref) or its error comes back, the next is sent.
It prints one JSON line: echoes, errors, the echo delays (a sparse ``Histogram``), and the
first and last echo times. Only frames carrying a ref are decoded: every socket of the channel
gets every message, and decoding them all would make the client the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp

from harness.stats import Histogram

__all__ = ["run"]

HOST = "127.0.0.1"


class _Tally:
    def __init__(self) -> None:
        self.delays = Histogram()
        self.echoes = 0
        self.errors = 0
        self.first: float | None = None
        self.last: float | None = None
        self.connected = 0
        self.sockets = 0
        self.all_open = asyncio.Event()

    def arrived(self) -> None:
        """One socket is open (or failed to open): the first messages go once all are."""
        self.connected += 1
        if self.connected >= self.sockets:
            self.all_open.set()

    def echo(self, sent: float, frame: dict[str, Any]) -> None:
        now = time.monotonic()
        if frame.get("type") == "error":
            self.errors += 1
            return
        self.echoes += 1
        self.delays.add(now - sent)
        self.first = now if self.first is None else self.first
        self.last = now


async def _sender(
    session: aiohttp.ClientSession, orders: dict[str, Any], number: int, tally: _Tally
) -> None:
    cookies = orders["cookies"]
    url = f"http://{HOST}:{orders['port']}/channels/{orders['channel']}/ws"
    headers = {"Cookie": cookies[number % len(cookies)]}
    try:
        ws = await session.ws_connect(url, headers=headers, max_msg_size=0)
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT and '"ready"' in message.data:
                break
    finally:
        tally.arrived()
    async with ws:
        await tally.all_open.wait()
        stop_at = time.monotonic() + orders["seconds"]
        in_flight: dict[str, float] = {}
        sent = 0

        async def send_one() -> None:
            nonlocal sent
            ref = f"w{orders['tag']}.{number}.{sent}"
            sent += 1
            in_flight[ref] = time.monotonic()
            await ws.send_str(json.dumps({"type": "message", "content": f"w {ref}", "ref": ref}))

        for _ in range(orders["window"]):
            await send_one()
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT or '"ref"' not in message.data:
                continue
            frame = json.loads(message.data)
            started = in_flight.pop(frame.get("ref"), None)
            if started is None:
                continue  # another socket's (one user's sockets all get its answers)
            tally.echo(started, frame)
            if time.monotonic() < stop_at:
                await send_one()
            elif not in_flight:
                break


async def run(orders: dict[str, Any]) -> dict[str, Any]:
    tally = _Tally()
    tally.sockets = orders["sockets"]
    timeout = aiohttp.ClientTimeout(total=orders["seconds"] + 60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        senders = [
            asyncio.ensure_future(_sender(session, orders, number, tally))
            for number in range(orders["sockets"])
        ]
        outcomes = await asyncio.gather(*senders, return_exceptions=True)
    failures = [repr(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
    return {
        "echoes": tally.echoes,
        "errors": tally.errors,
        "failures": failures[:5],
        "delays": tally.delays.sparse(),
        "first": tally.first,
        "last": tally.last,
    }


def main() -> None:
    orders = json.loads(sys.stdin.readline())
    print(json.dumps(asyncio.run(run(orders))), flush=True)


if __name__ == "__main__":
    main()
