"""The database connections one worker holds, counted on the server (``pg_stat_activity``)
while a real gunicorn instance of the app runs on the throwaway cluster: idle, with 200
websockets open, and at the peak of 200 history requests at once.

What the code says they should be: the request pool (``db.pool_min`` 1 to ``db.pool_max``
10), the hub's delivery pool (1 to 2) and the LISTEN connection (1): 3 idle, 13 at most.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import psycopg2

from harness.chatclient import ChatClient, random_name
from harness.gunicorn import GunicornServer, write_ini

__all__ = ["measure_connections"]

USERS = 20
SOCKETS_PER_USER = 10
BURST = 200


def _count(url: str, application: str) -> int:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (application,),
            )
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


async def _peak_during(url: str, application: str, work: Any) -> int:
    """The most connections seen (sampled every 10 ms) while ``work`` runs."""
    peak = 0
    task = asyncio.ensure_future(work)
    while not task.done():
        peak = max(peak, await asyncio.to_thread(_count, url, application))
        await asyncio.sleep(0.01)
    await task
    return peak


async def _measure(url: str, workers: int, directory: Path) -> dict[str, Any]:
    application = random_name("scaling_")
    ini = write_ini(
        directory / "scaling.ini",
        {"security.register_attempts": "100000", "chat.rate_burst": "1000"},
    )
    env = {"DATABASE_URL": f"{url}&application_name={application}"}
    server = GunicornServer(ini, workers=workers, env=env)
    server.start()
    clients: list[ChatClient] = []
    try:
        await asyncio.sleep(1.0)  # every worker's startup hooks have run
        idle = _count(url, application)
        for _ in range(USERS):
            clients.append(await ChatClient(server.url("")).register())
        channel = await clients[0].new_channel()
        for client in clients:
            for _ in range(SOCKETS_PER_USER):
                await client.connect(channel)
        await asyncio.sleep(0.5)
        with_sockets = _count(url, application)

        async def burst() -> None:
            async def one(n: int) -> None:
                await clients[n % USERS].get_json(f"/channels/{channel}/messages?limit=50")

            await asyncio.gather(*(one(n) for n in range(BURST)))

        peak = await _peak_during(url, application, burst())
        return {
            "workers": workers,
            "idle": idle,
            "with_sockets": with_sockets,
            "sockets": USERS * SOCKETS_PER_USER,
            "peak_under_burst": peak,
            "burst_requests": BURST,
            "per_worker_idle": idle / workers,
            "per_worker_peak": peak / workers,
        }
    finally:
        for client in clients:
            await client.close()
        server.stop()


async def measure_connections(url: str) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="aiotutorial-scaling-") as tmp:
        for workers in (1, 2):
            results.append(await _measure(url, workers, Path(tmp)))
    return results
