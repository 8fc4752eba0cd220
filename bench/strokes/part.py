"""What one part of scenario 6 holds: its server, accounts, channels, sockets, games, counter.

``Bench`` registers users through /register (bounded concurrency; games reuse them), creates
channels, connects sockets and spreads them over the workers (reconnecting those of the busier
worker: /proc tells which worker holds which connection), starts games and waits until every
drawer draws; it runs the NOTIFY counter and a loop-lag probe. Measuring (windows) is
``windows.Windows``'s, which it inherits. ``start_server`` starts the bench's gunicorn, its
database connections named so that the counter tells them from others' in pg_stat_activity.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random

from sqlalchemy.engine import make_url

from aiotutorial.db import dsn_from_url
from harness.procfs import parent_pid
from harness.stats import Histogram

from ..scenarios.accounts import Account
from ..scenarios.context import Context
from ..servers import Server, app_server, overlay_ini, start_all
from ..wsclient import Stats
from .bus import BusCounter
from .game import GameDriver
from .meter import Meter
from .profiles import DRAW_SECONDS, ROUNDS, SETTINGS, StrokesProfile
from .sockets import GameSocket, close_sockets, open_socket, socket_workers
from .window import Window
from .windows import Windows

__all__ = ["Bench", "start_server"]


class Bench(Windows):
    """What one part of the scenario holds: its server, accounts, sockets, games, counter."""

    def __init__(
        self, ctx: Context, profile: StrokesProfile, server: Server, app: str, label: str
    ) -> None:
        self.ctx = ctx
        self.label = label  # in the names of its users and channels
        self.profile = profile
        self.server = server
        self.app = app
        self.window: Window | None = None
        self.deliveries = 0  # of measured batches, any window: the drain watches it move
        self.seq_shifts = 0  # of retired games (see Session.shifted)
        self.unmatched = 0
        self.counter: BusCounter | None = None
        self.postmaster: int | None = None
        self.meter = Meter(self)
        self.accounts: list[tuple[str, str]] = []  # (username, cookie)
        self.games: list[GameDriver] = []
        self.sockets: list[GameSocket] = []
        self._probe: asyncio.Task | None = None
        self._serial = 0
        self._creator: Account | None = None  # creates the channels

    def name(self, kind: str) -> str:
        """A user name of this run and part (``kind`` u: players, c: the channels' creator)."""
        self._serial += 1
        return f"bs{self.ctx.run_id}{self.label}{kind}{self._serial}"

    async def start(self) -> None:
        mine = f"bench-{self.ctx.run_id}-s"
        self.counter = await BusCounter(dsn_from_url(self.ctx.database_url), self.app, mine).start()
        backend = self.counter.info.get("backend_pid")
        if backend:  # None when the database is on another machine (no /proc of it here)
            self.postmaster = parent_pid(backend)
        self._probe = asyncio.ensure_future(self._lag_probe())

    async def stop(self) -> None:
        for game in self.games:
            await game.stop()
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await close_sockets(self.sockets)
        if self._creator is not None:
            await self._creator.close()
        if self.counter is not None:
            await self.counter.stop()

    async def _lag_probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            window = self.window
            if window is not None and window.open:
                late = loop.time() - before - 0.005
                window.loop_lag.counts[Histogram.index(max(late, 0.0))] += 1

    # accounts and channels

    async def register(self, count: int) -> list[tuple[str, str]]:
        """``count`` more users through /register (bounded concurrency): (name, cookie)."""
        semaphore = asyncio.Semaphore(self.profile.register_concurrency)
        base = self.server.url("")

        async def one(name: str) -> tuple[str, str]:
            async with semaphore:
                account = Account(base, name)
                try:
                    await account.register()
                    return name, account.cookie()
                finally:
                    await account.close()

        names = [self.name("u") for _ in range(count)]
        self.ctx.users.extend(names)
        made = await asyncio.gather(*(one(name) for name in names))
        self.accounts.extend(made)
        return list(made)

    async def accounts_for(self, count: int) -> list[tuple[str, str]]:
        """``count`` accounts, registering only those missing (games reuse them)."""
        if len(self.accounts) < count:
            await self.register(count - len(self.accounts))
        return self.accounts[:count]

    async def retire(self, drivers: list[GameDriver]) -> None:
        """Stop these games' drawers and close their sockets (their games then end on the
        server's timers: the drawer gone, then too few players)."""
        for driver in drivers:
            await driver.stop()
            self.seq_shifts += sum(session.shifted for session in driver.all_sessions())
            self.unmatched += driver.unmatched
            self.games.remove(driver)
        await close_sockets([sock for driver in drivers for sock in driver.sockets])

    async def channels(self, count: int) -> list[str]:
        prefix = f"bench-{self.ctx.run_id}-s{self.label}-"
        names = [f"{prefix}{self._serial + i + 1}" for i in range(count)]
        self._serial += count
        if self._creator is None:
            self._creator = Account(self.server.url(""), self.name("c"))
            self.ctx.users.append(self._creator.username)
            await self._creator.register()
        for name in names:
            await self._creator.create_channel(name)
            self.ctx.channels.append(name)
        return names

    async def connect(
        self,
        channel: str,
        users: list[tuple[str, str]],
        stats: Stats,
        driver: GameDriver | None,
    ) -> list[GameSocket]:
        semaphore = asyncio.Semaphore(self.profile.connect_concurrency)
        path = f"/channels/{channel}/ws"

        async def one(user: str, cookie: str) -> GameSocket:
            async with semaphore:
                return await open_socket(self.server.port, path, cookie, stats, user, driver)

        sockets = list(await asyncio.gather(*(one(user, cookie) for user, cookie in users)))
        self.sockets.extend(sockets)
        return sockets

    async def balance(self, sockets: list[GameSocket], channel: str, keep: int = 0) -> dict:
        """Reconnect sockets of the busier worker until both hold about as many (/proc tells
        which worker holds which connection); ``sockets[:keep]`` stay. Returns the spread."""
        path = f"/channels/{channel}/ws"
        counts: collections.Counter[int] = collections.Counter()
        # The last round counts again after its moves (which worker accepts a reconnection is
        # the kernel's choice: a busy worker may lose every race for a while).
        for round_ in range(self.profile.balance_rounds + 1):
            owners = await asyncio.to_thread(
                socket_workers, self.server, [s.local_port() or 0 for s in sockets]
            )
            counts = collections.Counter(owners.get(s.local_port(), 0) for s in sockets)
            for pid in self.server.worker_pids():
                counts.setdefault(pid, 0)
            if len(counts) < 2 or max(counts.values()) - min(counts.values()) <= 1:
                break
            if round_ == self.profile.balance_rounds:
                break
            heavy = max(counts, key=lambda pid: counts[pid])
            surplus = (counts[heavy] - min(counts.values())) // 2
            moving = [
                i
                for i, s in enumerate(sockets)
                if i >= keep and owners.get(s.local_port()) == heavy
            ][:surplus]
            old = [sockets[i] for i in moving]
            await close_sockets(old)
            for i, sock in zip(moving, old, strict=True):
                cookie = next(c for u, c in self.accounts if u == sock.user)
                fresh = await open_socket(
                    self.server.port, path, cookie, sock.stats, sock.user, sock.driver
                )
                sockets[i] = fresh
                self.sockets.append(fresh)
        return {str(pid): n for pid, n in sorted(counts.items())}

    # games

    async def new_game(self, channel: str, users: list[tuple[str, str]]) -> GameDriver:
        """Connect ``users`` to ``channel`` (the first one starts); no game started yet."""
        driver = GameDriver(self, channel, len(self.games))
        driver.sockets = await self.connect(channel, users, driver.stats, driver)
        self.games.append(driver)
        return driver

    async def start_games(self, drivers: list[GameDriver], timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Each driver's first socket starts its game; wait until every drawer draws."""
        start = json.dumps({"type": "game.start", "rounds": ROUNDS, "draw_seconds": DRAW_SECONDS})
        for driver in drivers:
            driver.sockets[0].send_text(start)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(driver.drawing.wait() for driver in drivers)), timeout
            )
        except TimeoutError:
            waiting = [d.channel for d in drivers if not d.drawing.is_set()]
            errors = {d.channel: dict(d.errors) for d in drivers if d.errors}
            raise RuntimeError(
                f"games not drawing after {timeout} s: {waiting[:5]}; errors {errors}"
            ) from None
        period = 1.0 / self.profile.rate
        for driver in drivers:
            # Drawers out of step with each other (as real ones are), not all at one instant.
            driver.start_pacer(random.random() * period)


def _server_url(database_url: str, app: str) -> str:
    """The server's database URL, its connections named ``app`` (in ``pg_stat_activity``)."""
    url = make_url(database_url).update_query_dict({"application_name": app})
    return url.render_as_string(hide_password=False)


async def start_server(ctx: Context, name: str, workers: int) -> tuple[Server, str]:
    """aiotutorial with ``SETTINGS`` on ``workers`` workers: (the server, its backends' name)."""
    app = f"bench-strokes-{ctx.run_id}-{name}"
    server = app_server(
        f"strokes-{name}",
        _server_url(ctx.database_url, app),
        workers=workers,
        ini=overlay_ini(SETTINGS),
    )
    await asyncio.to_thread(start_all, [server])
    return server, app
