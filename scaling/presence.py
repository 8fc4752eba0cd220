"""The presence table with 10,000 sockets, through the app's own ``Presence`` code.

Sixteen workers (``Presence`` objects, each with its own connection pool, as a worker has), in
four processes, their 10,000 sockets spread over 500 channels of 20 users. Measured, with 16
listening connections on the bus as 16 real workers would have:

- **joining** all of them at once (a restart's reconnection storm): each first socket of a
  user in a channel on a worker is a row inserted and a NOTIFY committed (``joined``);
- **refreshing**: what every worker does every 10 s (``refresh``: one UPDATE ... RETURNING of
  its rows, the expired rows deleted), all 16 at once;
- **leaving**: the same storm the other way (``left``: a delete and a NOTIFY each).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import Any

from harness.procfs import cpu_seconds, process_tree

__all__ = ["measure_presence", "SOCKETS", "WORKERS"]

SOCKETS = 10_000
WORKERS = 16
PROCESSES = 4
PER_CHANNEL = 20
POOL = 4  # connections per worker used for the storm (a worker's pool holds up to 10)


class _Hub:
    """What ``Presence`` reads of its hub."""

    def __init__(self, engine: Any, worker: str) -> None:
        self.engine = engine
        self.delivery_engine = engine
        self.worker = worker
        self.settings: dict[str, str] = {}
        self.members: dict[str, set[Any]] = {}


def _workers_process(url: str, sockets: dict[int, list[tuple[str, str]]], pipe: Connection) -> None:
    """Some workers' ``Presence``: ``join``, ``refresh`` and ``leave`` answer the seconds
    taken (the refresh: each worker's, all at once); ``quit``."""
    asyncio.run(_serve(url, sockets, pipe))


async def _serve(url: str, sockets: dict[int, list[tuple[str, str]]], pipe: Connection) -> None:
    from aiotutorial.db import open_engine
    from aiotutorial.realtime.presence import Presence

    settings = {"db.pool_min": 1, "db.pool_max": POOL}
    workers = {}
    for n in sockets:
        engine = await open_engine(settings, url=url)
        workers[n] = Presence(_Hub(engine, f"scaling:{n}:presence"))
    members = {
        n: [SimpleNamespace(channel=c, user=u, is_visitor=False) for c, u in s]
        for n, s in sockets.items()
    }
    pipe.send("ready")
    loop = asyncio.get_running_loop()
    while (command := await loop.run_in_executor(None, pipe.recv)) != "quit":
        began = time.perf_counter()
        if command == "refresh":

            async def timed(presence: Presence) -> float:
                start = time.perf_counter()
                await presence.refresh()
                return time.perf_counter() - start

            pipe.send(await asyncio.gather(*(timed(p) for p in workers.values())))
            continue
        method = "joined" if command == "join" else "left"

        async def storm(presence: Presence, mine: list[Any], method: str = method) -> None:
            room = asyncio.Semaphore(POOL)

            async def one(member: Any) -> None:
                async with room:
                    await getattr(presence, method)(member)

            await asyncio.gather(*(one(m) for m in mine))

        await asyncio.gather(*(storm(workers[n], members[n]) for n in workers))
        pipe.send(time.perf_counter() - began)
    for presence in workers.values():
        presence.hub.engine.close()
        await presence.hub.engine.wait_closed()


def measure_presence(
    url: str, postmaster: int, channels: list[str], users: list[str]
) -> dict[str, Any]:
    sockets: dict[int, list[tuple[str, str]]] = {n: [] for n in range(WORKERS)}
    for n in range(SOCKETS):
        channel = channels[(n // PER_CHANNEL) % len(channels)]  # 20 users a channel
        sockets[n % WORKERS].append((channel, users[n % len(users)]))
    rows = sum(len(set(mine)) for mine in sockets.values())
    context = multiprocessing.get_context("spawn")
    processes = []
    for p in range(PROCESSES):
        mine, theirs = context.Pipe()
        share = {n: s for n, s in sockets.items() if n % PROCESSES == p}
        process = context.Process(target=_workers_process, args=(url, share, theirs), daemon=True)
        process.start()
        processes.append((process, mine))
    try:
        for _process, pipe in processes:
            if not pipe.poll(60) or pipe.recv() != "ready":
                raise RuntimeError("a presence process did not start")

        def phase(command: str) -> tuple[float, list[Any], float]:
            before = cpu_seconds(process_tree(postmaster))
            began = time.perf_counter()
            for _process, pipe in processes:
                pipe.send(command)
            answers = [pipe.recv() for _process, pipe in processes]
            took = time.perf_counter() - began
            return took, answers, cpu_seconds(process_tree(postmaster)) - before

        join_seconds, _, join_cpu = phase("join")
        refresh_all, refreshes, _ = phase("refresh")
        each = [seconds for answer in refreshes for seconds in answer]
        leave_seconds, _, leave_cpu = phase("leave")
    finally:
        for process, pipe in processes:
            pipe.send("quit")
            process.join(10)
            if process.is_alive():
                process.kill()
    return {
        "sockets": SOCKETS,
        "workers": WORKERS,
        "rows": rows,
        "join_seconds": round(join_seconds, 3),
        "joins_per_second": round(rows / join_seconds),
        "join_db_cpu_ms_each": round(join_cpu / rows * 1000, 3),
        "refresh_all_at_once_seconds": round(refresh_all, 4),
        "refresh_longest_ms": round(max(each) * 1000, 1),
        "refresh_one_worker_ms": round(sum(each) / len(each) * 1000, 2),
        "row_writes_per_second_steady": round(rows / 10),
        "leave_seconds": round(leave_seconds, 3),
        "leaves_per_second": round(rows / leave_seconds),
        "leave_db_cpu_ms_each": round(leave_cpu / rows * 1000, 3),
    }
