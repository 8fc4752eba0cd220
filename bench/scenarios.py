"""The five scenarios of ``make bench``; each returns its raw numbers and its rows of the table.

1. ``bridge``: ``GET /demo?sleep=0`` through gunicorn + AsyncGunicornWorker (1 worker) against
   raw aiohttp (1 process) serving the same bytes.
2. ``sync_pyramid``: the same page on synchronous Pyramid (bench/sync_app.py) under gunicorn's
   ``sync`` worker and ``gthread`` (10 threads), 1 worker each: ``sleep=0``, then
   ``sleep=0.1`` with 500 concurrent connections.
3. ``db_json``: ``GET /channels/bench-history/messages?limit=50`` (5,000 seeded messages)
   against the same query in sync Pyramid + psycopg2 on gthread, at 1, 2 and 4 workers.
4. ``fanout``: one channel, N subscribed websockets on one worker, one sender at fixed rates;
   delay from send to each delivery and deliveries/s, against a raw aiohttp broadcast server.
5. ``capacity``: N idle authenticated websockets on one worker: memory per connection and the
   time for one broadcast to reach all of them, against the raw broadcast server.

HTTP figures are interleaved (run i of every server, then run i + 1), after a warm-up each;
the figure is the median of the runs.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import psycopg2

from aiotutorial.db import dsn_from_url

from . import servers
from .common import Histogram, median
from .httpload import run_load
from .servers import Server, app_server, raw_server, rss_kb, start_all, stop_all, sync_server
from .wsclient import ClientProcess, Stats, WSClient, content, open_client

__all__ = ["Profile", "PROFILES", "Context", "http_scenarios", "fanout", "capacity", "cleanup"]

HISTORY_CHANNEL = "bench-history"
SYNC = ("sync", "gthread")
SEED_USER = "bench-seed"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
SESSION_COOKIE = "aiotutorial_session"
# Chat limits lifted for the websocket scenarios (one sender posts hundreds a second; a
# backlog shows as latency rather than as sockets dropped with 1008).
OVERLAY = {
    "chat.rate_per_second": 100000,
    "chat.rate_burst": 100000,
    "chat.send_queue_frames": 100000,
    "security.register_attempts": 100000,
}


@dataclass
class Profile:
    name: str
    http_warmup: int  # seconds of load before the measured runs (0: none)
    http_duration: int
    http_runs: int
    db_runs: int  # runs per server of the history JSON (each worker count)
    slow_warmup: int
    slow_duration: int
    slow_runs: int
    slow_connections: int
    db_workers: tuple[int, ...]
    seed_messages: int
    fanout_clients: int
    fanout_procs: int
    fanout_rates: tuple[int, ...]
    fanout_duration: float
    fanout_runs: int
    fanout_max_deliveries: int  # a run sends at most this many deliveries' worth
    drain_timeout: float
    capacity_sockets: int
    capacity_procs: int
    capacity_broadcasts: int
    connect_timeout: float
    quiet_timeout: float
    http_connections: int = 50
    connect_concurrency: int = 25
    fresh_capacity_server: bool = True
    quiet_interval: float = 0.5  # a server is quiet after two such intervals at < 5 % CPU


PROFILES = {
    "full": Profile(
        name="full",
        http_warmup=2,
        http_duration=3,
        http_runs=5,
        db_runs=5,
        slow_warmup=2,
        slow_duration=10,
        slow_runs=3,
        slow_connections=500,
        db_workers=(1, 2, 4),
        seed_messages=5000,
        fanout_clients=1000,
        fanout_procs=2,
        fanout_rates=(10, 100, 500),
        fanout_duration=3.0,
        fanout_runs=3,
        fanout_max_deliveries=200_000,
        drain_timeout=60.0,
        capacity_sockets=10_000,
        capacity_procs=4,
        capacity_broadcasts=3,
        connect_timeout=300.0,
        quiet_timeout=120.0,
    ),
    "quick": Profile(
        name="quick",
        http_warmup=1,
        http_duration=1,
        http_runs=3,
        db_runs=2,
        slow_warmup=1,
        slow_duration=3,
        slow_runs=1,
        slow_connections=500,
        db_workers=(1, 2, 4),
        seed_messages=5000,
        fanout_clients=200,
        fanout_procs=1,
        fanout_rates=(10, 100, 500),
        fanout_duration=1.0,
        fanout_runs=1,
        fanout_max_deliveries=30_000,
        drain_timeout=15.0,
        capacity_sockets=1000,
        capacity_procs=2,
        capacity_broadcasts=2,
        connect_timeout=60.0,
        quiet_timeout=20.0,
        quiet_interval=0.3,
    ),
    "smoke": Profile(
        name="smoke",
        http_warmup=0,
        http_duration=1,
        http_runs=1,
        db_runs=1,
        slow_warmup=0,
        slow_duration=1,
        slow_runs=1,
        slow_connections=100,
        db_workers=(1,),
        seed_messages=200,
        fanout_clients=10,
        fanout_procs=1,
        fanout_rates=(10, 100),
        fanout_duration=0.3,
        fanout_runs=1,
        fanout_max_deliveries=10_000,
        drain_timeout=5.0,
        capacity_sockets=50,
        capacity_procs=1,
        capacity_broadcasts=1,
        connect_timeout=20.0,
        quiet_timeout=3.0,
        http_connections=20,
        fresh_capacity_server=False,
        quiet_interval=0.2,
    ),
}


@dataclass
class Context:
    profile: Profile
    database_url: str
    generator: str  # "wrk" or "python"
    say: Callable[[str], None] = print
    notes: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)  # made by this run, deleted after
    users: list[str] = field(default_factory=list)
    drop_seed: bool = False
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    # Servers kept from the fan-out for the capacity scenario (smoke profile only).
    kept: dict[str, Any] = field(default_factory=dict)

    def row(
        self,
        scenario: str,
        figure: str,
        value: float | None,
        unit: str,
        reference: str | None = None,
        reference_value: float | None = None,
        *,
        ratio_target: float | None = None,
        below: float | None = None,
        target: str = "(report)",
    ) -> dict[str, Any]:
        ratio = None
        if value is not None and reference_value:
            ratio = value / reference_value
        met: bool | None = None
        if ratio_target is not None:
            met = ratio is not None and ratio >= ratio_target
        elif below is not None:
            met = value is not None and value < below
        entry = {
            "scenario": scenario,
            "figure": figure,
            "value": value,
            "unit": unit,
            "reference": reference,
            "reference_value": reference_value,
            "ratio": ratio,
            "target": target,
            "met": met,
        }
        self.rows.append(entry)
        return entry


# --- HTTP -------------------------------------------------------------------------------------


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps": median(run["rps"] for run in runs),
        "rps_runs": [round(run["rps"], 1) for run in runs],
        "latency_p50_ms": median(run["latency_us"]["p50"] / 1000 for run in runs),
        "latency_p99_ms": median(run["latency_us"]["p99"] / 1000 for run in runs),
        "requests": sum(run["requests"] for run in runs),
        "errors": {kind: sum(run["errors"][kind] for run in runs) for kind in runs[0]["errors"]},
    }


def measure_http(
    ctx: Context,
    label: str,
    targets: dict[str, str],
    *,
    connections: int,
    duration: int,
    runs: int,
    warmup: int,
    timeout: float = 5.0,
    restart: Callable[[int], dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Interleaved runs of ``targets`` (name: URL); per name the median and every run.

    ``restart``, when given, is called with the round's number before each round and returns
    the URLs of the servers it provides for that round: those are never warmed up (a load
    would leave work behind on them; a fresh server was warmed by its start).
    """
    ctx.say(f"  {label}: {', '.join(targets)} ({runs} x {duration} s, -c{connections})")
    targets = dict(targets)
    restarted: set[str] = set()

    def load(url: str, seconds: int) -> dict[str, Any]:
        return run_load(
            url,
            connections=connections,
            duration=seconds,
            timeout=timeout,
            generator=ctx.generator,
        )

    collected: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for number in range(runs):
        if restart is not None:
            provided = restart(number)
            targets.update(provided)
            restarted = set(provided)
        if number == 0 and warmup:
            for name, url in targets.items():
                if name not in restarted:
                    load(url, warmup)
        for name, url in targets.items():
            collected[name].append(load(url, duration))
    result = {name: _summarise(done) for name, done in collected.items()}
    for name, summary in result.items():
        ctx.say(f"    {name:<10} {summary['rps']:9.1f} req/s  runs {summary['rps_runs']}")
    return {
        "connections": connections,
        "duration_s": duration,
        "runs": runs,
        "warmup_s": warmup,
        "client_timeout_s": timeout,
        "replaced_between_rounds_not_warmed": sorted(restarted),
        "urls": targets,
        "servers": result,
    }


def seed_history(url: str, count: int) -> dict[str, Any]:
    """The ``bench-history`` channel with ``count`` messages (added when fewer), analysed."""
    connection = psycopg2.connect(dsn_from_url(url))
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO users (username, phash) VALUES (%s, NULL) ON CONFLICT DO NOTHING",
                (SEED_USER,),
            )
            cursor.execute(
                "INSERT INTO chats (channel) VALUES (%s) ON CONFLICT DO NOTHING",
                (HISTORY_CHANNEL,),
            )
            cursor.execute("SELECT count(*) FROM messages WHERE channel = %s", (HISTORY_CHANNEL,))
            have = cursor.fetchone()[0]
            if have < count:
                cursor.execute(
                    """
                    INSERT INTO messages (channel, "user", time, content)
                    SELECT %s, %s, clock_timestamp(),
                           'bench history message ' || g || ': ' || repeat('x', 40 + g %% 60)
                    FROM generate_series(%s, %s) AS g
                    """,
                    (HISTORY_CHANNEL, SEED_USER, have + 1, count),
                )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE messages")
            cursor.execute("SELECT count(*) FROM messages WHERE channel = %s", (HISTORY_CHANNEL,))
            total = cursor.fetchone()[0]
    finally:
        connection.close()
    return {"channel": HISTORY_CHANNEL, "messages": total, "added": max(0, count - have)}


def http_scenarios(ctx: Context) -> dict[str, dict[str, Any]]:
    """Scenarios 1, 2 and 3 (they share servers): ``{"bridge": ..., "sync_pyramid": ...,
    "db_json": ...}``."""
    p = ctx.profile
    url = ctx.database_url
    out: dict[str, dict[str, Any]] = {}
    seed = seed_history(url, p.seed_messages)
    history = f"/channels/{HISTORY_CHANNEL}/messages?limit=50"

    ctx.say("starting: app (1 worker), sync, gthread, then raw aiohttp")
    app, sync, gthread = start_all(
        [
            app_server("app-1w", url),
            sync_server("sync-1w", url, worker_class="sync"),
            sync_server("gthread-1w", url, worker_class="gthread"),
        ]
    )
    raw: Server | None = None
    fresh: list[Server] = []
    try:
        body = _fetch(app.url("/demo?sleep=0"))
        body_file = servers.TMP_DIR / "demo-body.html"
        body_file.write_bytes(body)
        raw = raw_server("raw-http", "http", body_file=body_file).start()
        for server, path in ((sync, "/demo?sleep=0"), (gthread, "/demo?sleep=0")):
            if len(_fetch(server.url(path))) != len(body):
                ctx.notes.append(f"{server.name}'s /demo differs in length from the app's")
        if _fetch(gthread.url(history)) != _fetch(app.url(history)):
            ctx.notes.append("the sync app's history JSON differs from the app's")

        fast = measure_http(
            ctx,
            "GET /demo?sleep=0",
            {
                "app": app.url("/demo?sleep=0"),
                "raw": raw.url("/demo"),
                "sync": sync.url("/demo?sleep=0"),
                "gthread": gthread.url("/demo?sleep=0"),
            },
            connections=p.http_connections,
            duration=p.http_duration,
            runs=p.http_runs,
            warmup=p.http_warmup,
        )
        db_runs = {
            1: measure_http(
                ctx,
                f"GET {history} (1 worker)",
                {"app": app.url(history), "gthread": gthread.url(history)},
                connections=p.http_connections,
                duration=p.http_duration,
                runs=p.db_runs,
                warmup=p.http_warmup,
            )
        }

        # A sync or gthread worker serves the requests of clients that already gave up (it
        # cannot tell): 500 abandoned sleep=0.1 requests would keep it busy for the next run.
        # So the first round uses the servers above (nothing left behind by their loads),
        # each later round fresh ones, nothing warms them up under this load, and the client
        # waits longer than a run (no request abandoned while it runs).
        def restart(number: int) -> dict[str, str]:
            if number:
                stop_all([sync, gthread, *fresh])
                fresh[:] = start_all(
                    [
                        sync_server("sync-1w", url, worker_class="sync"),
                        sync_server("gthread-1w", url, worker_class="gthread"),
                    ]
                )
            pair = fresh or [sync, gthread]
            return {
                name: server.url("/demo?sleep=0.1") for name, server in zip(SYNC, pair, strict=True)
            }

        slow = measure_http(
            ctx,
            "GET /demo?sleep=0.1",
            {"app": app.url("/demo?sleep=0.1"), "sync": "", "gthread": ""},
            connections=p.slow_connections,
            duration=p.slow_duration,
            runs=p.slow_runs,
            warmup=p.slow_warmup,
            timeout=p.slow_duration + 10,
            restart=restart,
        )
        worker_pids = {"app": app.worker_pids(), "raw": raw.worker_pids()}
    finally:
        stop_all([server for server in (app, sync, gthread, raw, *fresh) if server is not None])

    for workers in p.db_workers:
        if workers == 1:
            continue
        ctx.say(f"starting: app and gthread with {workers} workers")
        pair = start_all(
            [
                app_server(f"app-{workers}w", url, workers=workers),
                sync_server(f"gthread-{workers}w", url, worker_class="gthread", workers=workers),
            ]
        )
        try:
            db_runs[workers] = measure_http(
                ctx,
                f"GET {history} ({workers} workers)",
                {"app": pair[0].url(history), "gthread": pair[1].url(history)},
                connections=p.http_connections,
                duration=p.http_duration,
                runs=p.db_runs,
                warmup=p.http_warmup,
            )
        finally:
            stop_all(pair)

    fast_rps = {name: s["rps"] for name, s in fast["servers"].items()}
    slow_rps = {name: s["rps"] for name, s in slow["servers"].items()}
    out["bridge"] = {
        "status": "ok",
        "what": "GET /demo?sleep=0, gunicorn + AsyncGunicornWorker (1 worker) vs raw aiohttp",
        "page_bytes": len(body),
        "worker_pids": worker_pids,
        "measurement": {k: v for k, v in fast.items() if k != "servers"},
        "figures": {
            "app_rps": fast_rps["app"],
            "raw_rps": fast_rps["raw"],
            "ratio": _ratio(fast_rps["app"], fast_rps["raw"]),
        },
        "servers": {name: fast["servers"][name] for name in ("app", "raw")},
    }
    ctx.row(
        "1 bridge",
        "/demo?sleep=0 req/s (1 worker)",
        fast_rps["app"],
        "req/s",
        "raw aiohttp",
        fast_rps["raw"],
        ratio_target=0.6,
        target=">= 0.6x",
    )
    out["sync_pyramid"] = {
        "status": "ok",
        "what": "the same page on sync Pyramid: gunicorn sync and gthread (10 threads), 1 worker",
        "sleep0": {
            "measurement": {k: v for k, v in fast.items() if k != "servers"},
            "servers": {name: fast["servers"][name] for name in ("app", "sync", "gthread")},
        },
        "sleep0.1": slow,
        "figures": {
            "sleep0_app_rps": fast_rps["app"],
            "sleep0_sync_rps": fast_rps["sync"],
            "sleep0_gthread_rps": fast_rps["gthread"],
            "sleep0_ratio_sync": _ratio(fast_rps["app"], fast_rps["sync"]),
            "sleep0_ratio_gthread": _ratio(fast_rps["app"], fast_rps["gthread"]),
            "sleep01_app_rps": slow_rps["app"],
            "sleep01_sync_rps": slow_rps["sync"],
            "sleep01_gthread_rps": slow_rps["gthread"],
            "sleep01_ratio_sync": _ratio(slow_rps["app"], slow_rps["sync"]),
            "sleep01_ratio_gthread": _ratio(slow_rps["app"], slow_rps["gthread"]),
        },
    }
    ctx.row(
        "2 sync Pyramid",
        "sleep=0 req/s",
        fast_rps["app"],
        "req/s",
        "sync worker",
        fast_rps["sync"],
        ratio_target=3.0,
        target=">= 3x",
    )
    ctx.row(
        "2 sync Pyramid",
        "sleep=0 req/s",
        fast_rps["app"],
        "req/s",
        "gthread 10",
        fast_rps["gthread"],
    )
    c = p.slow_connections
    ctx.row(
        "2 sync Pyramid",
        f"sleep=0.1 -c{c} req/s",
        slow_rps["app"],
        "req/s",
        "sync worker",
        slow_rps["sync"],
        ratio_target=100.0,
        target=">= 100x",
    )
    ctx.row(
        "2 sync Pyramid",
        f"sleep=0.1 -c{c} req/s",
        slow_rps["app"],
        "req/s",
        "gthread 10",
        slow_rps["gthread"],
    )
    db_figures: dict[str, Any] = {}
    for workers, measured in sorted(db_runs.items()):
        app_rps = measured["servers"]["app"]["rps"]
        ref_rps = measured["servers"]["gthread"]["rps"]
        db_figures[f"app_rps_{workers}w"] = app_rps
        db_figures[f"gthread_rps_{workers}w"] = ref_rps
        db_figures[f"ratio_{workers}w"] = _ratio(app_rps, ref_rps)
        ctx.row(
            "3 DB JSON",
            f"messages?limit=50 req/s, {workers}w",
            app_rps,
            "req/s",
            f"gthread 10, {workers}w",
            ref_rps,
            ratio_target=1.0,
            target=">= 1.0x",
        )
    out["db_json"] = {
        "status": "ok",
        "what": f"GET {history} vs sync Pyramid + psycopg2 on gthread (10 threads)",
        "seed": seed,
        "by_workers": {str(workers): measured for workers, measured in sorted(db_runs.items())},
        "figures": db_figures,
    }
    return out


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return value / reference


def _fetch(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


# --- accounts and channels over HTTP -----------------------------------------------------------


class Account:
    """A user registered through the real /register form; its session cookie signs sockets in."""

    def __init__(self, base_url: str, username: str) -> None:
        self.base_url = base_url
        self.username = username
        self.password = secrets.token_urlsafe(12)
        self.csrf = ""
        # unsafe=True: keep the cookies of an IP address host (127.0.0.1).
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def _token(self, path: str) -> str:
        async with self.session.get(self.base_url + path) as response:
            text = await response.text()
        found = CSRF_FIELD.search(text)
        if found is None:
            raise RuntimeError(f"no CSRF token in GET {path} ({response.status})")
        return found.group(1)

    async def register(self) -> Account:
        token = await self._token("/register")
        form = {"csrf_token": token, "username": self.username, "password": self.password}
        async with self.session.post(
            self.base_url + "/register", data=form, allow_redirects=False
        ) as response:
            text = await response.text()
        if response.status != 303:
            raise RuntimeError(f"registering gave {response.status}: {text[:300]}")
        self.csrf = await self._token("/login")
        return self

    def cookie(self) -> str:
        """``aiotutorial_session=...`` for a Cookie header."""
        for cookie in self.session.cookie_jar:
            if cookie.key == SESSION_COOKIE:
                return f"{cookie.key}={cookie.value}"
        raise RuntimeError("no session cookie after registering")

    async def create_channel(self, name: str) -> None:
        async with self.session.post(
            self.base_url + "/channels",
            json={"name": name},
            headers={"X-CSRF-Token": self.csrf},
        ) as response:
            text = await response.text()
        if response.status != 201:
            raise RuntimeError(f"creating {name} gave {response.status}: {text[:300]}")

    async def close(self) -> None:
        await self.session.close()


async def chat_setup(ctx: Context, server: Server) -> tuple[str, str, str]:
    """Register a receiving and a sending user and create a channel: (channel, cookies...)."""
    prefix = f"bench_{ctx.run_id}_{len(ctx.channels)}"
    receiver = Account(server.url(""), f"{prefix}r")
    sender = Account(server.url(""), f"{prefix}s")
    try:
        await receiver.register()
        ctx.users.append(receiver.username)
        await sender.register()
        ctx.users.append(sender.username)
        channel = f"bench-{ctx.run_id}-{len(ctx.channels)}"
        await sender.create_channel(channel)
        ctx.channels.append(channel)
        return channel, receiver.cookie(), sender.cookie()
    finally:
        await receiver.close()
        await sender.close()


# --- websockets -------------------------------------------------------------------------------


@dataclass
class Target:
    """Where a group of clients connects: the app (with cookies) or the raw server."""

    kind: str
    server: Server
    path: str
    cookie: str | None
    sender_cookie: str | None

    @property
    def pid(self) -> int:
        return self.server.worker_pids()[0]


class Group:
    """Client processes holding ``count`` sockets on one target, plus one sending socket."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.procs: list[ClientProcess] = []
        self.sender: WSClient | None = None
        self.sender_stats = Stats()
        self.ok = 0
        self.failed = 0
        self.connect_seconds = 0.0
        self.failures: dict[str, int] = {}

    async def connect(self, count: int, procs: int, ctx: Context) -> None:
        p = ctx.profile
        started = time.monotonic()
        sizes = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        for size in sizes:
            if size:
                self.procs.append(
                    await ClientProcess.start(
                        self.target.server.port,
                        self.target.path,
                        self.target.cookie,
                        size,
                        concurrency=p.connect_concurrency,
                        connect_timeout=p.connect_timeout,
                    )
                )
        replies = await asyncio.gather(
            *(proc.wait_connected(p.connect_timeout + 30) for proc in self.procs)
        )
        self.connect_seconds = time.monotonic() - started
        self.ok = sum(reply["ok"] for reply in replies)
        self.failed = sum(reply["failed"] for reply in replies)
        for reply in replies:
            for reason, times in reply.get("failures", {}).items():
                self.failures[reason] = self.failures.get(reason, 0) + times

    async def open_sender(self) -> None:
        self.sender = await open_client(
            self.target.server.port,
            self.target.path,
            self.target.sender_cookie,
            self.sender_stats,
            within=30.0,
        )

    async def ask_all(self, command: dict[str, Any], event: str, timeout: float = 30.0) -> list:  # noqa: ASYNC109
        return list(
            await asyncio.gather(*(proc.ask(command, event, timeout) for proc in self.procs))
        )

    async def close(self) -> None:
        if self.sender is not None:
            self.sender.close()
        await asyncio.gather(*(proc.stop() for proc in self.procs), return_exceptions=True)
        self.procs = []


async def _drain(group: Group, expected: int, timeout: float) -> int:  # noqa: ASYNC109
    """Wait until ``expected`` deliveries arrived, nothing arrived for 3 s, or ``timeout``."""
    deadline = time.monotonic() + timeout
    last_total = -1
    last_progress = time.monotonic()
    while True:
        counts = await group.ask_all({"cmd": "count"}, "count")
        total = sum(reply["deliveries"] for reply in counts)
        now = time.monotonic()
        if total >= expected or now >= deadline:
            return total
        if total != last_total:
            last_total = total
            last_progress = now
        elif now - last_progress > 3.0:
            return total
        await asyncio.sleep(0.1)


async def _fanout_run(group: Group, rate: int, ctx: Context, tag: str) -> dict[str, Any]:
    p = ctx.profile
    assert group.sender is not None
    await group.ask_all({"cmd": "reset"}, "reset")
    count = max(1, round(rate * p.fanout_duration))
    count = max(1, min(count, p.fanout_max_deliveries // max(1, group.ok)))
    expected = count * group.ok
    first = time.time()
    for index in range(count):
        delay = first + index / rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        group.sender.send_message(content(f"{tag}{index}"))
    last_sent = time.time()
    delivered = await _drain(group, expected, p.drain_timeout)
    replies = await group.ask_all({"cmd": "stats"}, "stats")
    histogram = Histogram()
    for reply in replies:
        histogram.merge(Histogram.from_sparse(reply["hist"]))
    lasts = [reply["last"] for reply in replies if reply["last"] is not None]
    span = (max(lasts) - first) if lasts else None
    if delivered < expected:
        # A backlog left over would spill into the next run: let the server finish it.
        await asyncio.to_thread(
            servers.wait_quiet, group.target.pid, timeout=p.quiet_timeout, interval=p.quiet_interval
        )
    return {
        "rate": rate,
        "messages": count,
        "send_seconds": last_sent - first,
        "sent_rate": count / (last_sent - first) if last_sent > first else None,
        "receivers": group.ok,
        "expected": expected,
        "deliveries": sum(reply["deliveries"] for reply in replies),
        "deliveries_per_s": (sum(reply["deliveries"] for reply in replies) / span)
        if span
        else None,
        "p50_ms": _ms(histogram.percentile(50)),
        "p90_ms": _ms(histogram.percentile(90)),
        "p99_ms": _ms(histogram.percentile(99)),
        "max_ms": _ms(histogram.percentile(100)),
        "errors": sum(reply["errors"] for reply in replies),
        "closed": sum(reply["closed"] for reply in replies),
        "hist": histogram.sparse(),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


async def fanout(ctx: Context) -> dict[str, Any]:
    """Scenario 4."""
    p = ctx.profile
    overlay = servers.overlay_ini(OVERLAY)
    app = app_server("fanout-app", ctx.database_url, ini=overlay)
    raw = raw_server("fanout-raw", "broadcast")
    ctx.say(f"starting: app (overlay ini, 1 worker) and raw broadcast; {p.fanout_clients} clients")
    await asyncio.to_thread(start_all, [app, raw])
    groups: dict[str, Group] = {}
    keep = not p.fresh_capacity_server
    try:
        channel, cookie, sender_cookie = await chat_setup(ctx, app)
        targets = [
            Target("app", app, f"/channels/{channel}/ws", cookie, sender_cookie),
            Target("raw", raw, "/ws", None, None),
        ]
        for target in targets:
            group = Group(target)
            groups[target.kind] = group
            await group.connect(p.fanout_clients, p.fanout_procs, ctx)
            await group.open_sender()
            ctx.say(
                f"  {target.kind}: {group.ok} sockets in {group.connect_seconds:.1f} s"
                + (f" ({group.failed} failed: {group.failures})" if group.failed else "")
            )
        for group in groups.values():  # warm-up
            await _fanout_run(group, 50, ctx, "warm")
        runs: dict[str, dict[int, list[dict[str, Any]]]] = {
            kind: {rate: [] for rate in p.fanout_rates} for kind in groups
        }
        for rate in p.fanout_rates:
            for number in range(p.fanout_runs):
                for kind, group in groups.items():
                    result = await _fanout_run(group, rate, ctx, f"r{rate}n{number}")
                    runs[kind][rate].append(result)
                    ctx.say(
                        f"  {kind} {rate:>4} msg/s: p50 {_fmt(result['p50_ms'])} ms, "
                        f"p99 {_fmt(result['p99_ms'])} ms, "
                        f"{_fmt(result['deliveries_per_s'], 0)} deliveries/s "
                        f"({result['deliveries']}/{result['expected']})"
                    )
        summary = _fanout_summary(runs)
        connections = {
            kind: {
                "ok": group.ok,
                "failed": group.failed,
                "failures": group.failures,
                "seconds": group.connect_seconds,
                "processes": len(group.procs),
            }
            for kind, group in groups.items()
        }
        if keep:
            ctx.kept.update(app=app, raw=raw, targets=targets)
    finally:
        for group in groups.values():
            await group.close()
        if not keep or "app" not in ctx.kept:
            await asyncio.to_thread(stop_all, [app, raw])
    figures: dict[str, Any] = {}
    for rate in p.fanout_rates:
        app_run, raw_run = summary["app"][str(rate)], summary["raw"][str(rate)]
        for key in ("p50_ms", "p99_ms", "deliveries_per_s"):
            figures[f"app_{key}_{rate}"] = app_run[key]
            figures[f"raw_{key}_{rate}"] = raw_run[key]
        ctx.row(
            "4 fan-out",
            f"p99 ms @{rate} msg/s",
            app_run["p99_ms"],
            "ms",
            "raw aiohttp",
            raw_run["p99_ms"],
            below=100.0 if rate == 100 else None,
            target="< 100 ms" if rate == 100 else "(report)",
        )
        ctx.row(
            "4 fan-out",
            f"deliveries/s @{rate} msg/s",
            app_run["deliveries_per_s"],
            "/s",
            "raw aiohttp",
            raw_run["deliveries_per_s"],
            ratio_target=0.7,
            target=">= 0.7x",
        )
    return {
        "status": "ok",
        "what": (
            f"one channel, {p.fanout_clients} websockets on one worker "
            f"({p.fanout_procs} client process(es)), one sender at fixed rates"
        ),
        "overlay_settings": OVERLAY,
        "rates": list(p.fanout_rates),
        "duration_s": p.fanout_duration,
        "runs_per_rate": p.fanout_runs,
        "max_deliveries_per_run": p.fanout_max_deliveries,
        "connections": connections,
        "summary": summary,
        # Every run's figures; their histograms are merged per rate in "summary".
        "runs": {
            kind: {
                str(rate): [{k: v for k, v in run.items() if k != "hist"} for run in results]
                for rate, results in by_rate.items()
            }
            for kind, by_rate in runs.items()
        },
        "figures": figures,
    }


def _fanout_summary(runs: dict[str, dict[int, list[dict[str, Any]]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for kind, by_rate in runs.items():
        summary[kind] = {}
        for rate, results in by_rate.items():
            merged = Histogram()
            for result in results:
                merged.merge(Histogram.from_sparse(result["hist"]))
            summary[kind][str(rate)] = {
                "p50_ms": median(r["p50_ms"] for r in results),
                "p99_ms": median(r["p99_ms"] for r in results),
                "deliveries_per_s": median(r["deliveries_per_s"] for r in results),
                "sent_rate": median(r["sent_rate"] for r in results),
                "lost": sum(r["expected"] - r["deliveries"] for r in results),
                "closed": max(r["closed"] for r in results),
                "errors": sum(r["errors"] for r in results),
                "hist": merged.sparse(),
            }
    return summary


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


async def _broadcast(group: Group, marker: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
    assert group.sender is not None
    waits = [
        proc.ask({"cmd": "marker", "marker": marker, "timeout": timeout}, "marker", timeout + 10)
        for proc in group.procs
    ]
    group.sender.send_message(content(marker))
    replies = await asyncio.gather(*waits)
    delays = [reply["max"] for reply in replies if reply["max"] is not None]
    return {
        "got": sum(reply["got"] for reply in replies),
        "of": sum(reply["of"] for reply in replies),
        "seconds": max(delays) if delays else None,
    }


async def _capacity_one(ctx: Context, target: Target) -> dict[str, Any]:
    p = ctx.profile
    pid = target.pid
    warm = Group(target)
    await warm.connect(min(20, p.capacity_sockets), 1, ctx)
    await warm.open_sender()
    await _broadcast(warm, f"warm{target.kind}", 10.0)
    await warm.close()
    group = Group(target)
    try:
        await group.open_sender()
        await asyncio.to_thread(
            servers.wait_quiet, pid, timeout=p.quiet_timeout, interval=p.quiet_interval
        )
        base = rss_kb(pid)
        await group.connect(p.capacity_sockets, p.capacity_procs, ctx)
        settle = await asyncio.to_thread(
            servers.wait_quiet, pid, timeout=p.quiet_timeout, interval=p.quiet_interval
        )
        rss = rss_kb(pid)
        # Frames other than messages received while connecting: presence updates and ready.
        counts = await group.ask_all({"cmd": "count"}, "count")
        other_frames = sum(reply["other"] for reply in counts)
        ctx.say(
            f"  {target.kind}: {group.ok} sockets in {group.connect_seconds:.1f} s, "
            f"settled in {settle:.1f} s, VmRSS {base} -> {rss} kB, "
            f"{other_frames} non-message frames received while connecting"
        )
        broadcasts = []
        for number in range(p.capacity_broadcasts):
            result = await _broadcast(group, f"cap{target.kind}{number}", 30.0)
            broadcasts.append(result)
            ctx.say(
                f"  {target.kind}: broadcast {number}: {result['got']}/{result['of']} in "
                f"{_fmt(_ms(result['seconds']))} ms"
            )
            await asyncio.to_thread(
                servers.wait_quiet, pid, timeout=p.quiet_timeout, interval=p.quiet_interval
            )
        complete = [b["seconds"] for b in broadcasts if b["got"] == b["of"] and b["of"]]
        return {
            "sockets": group.ok,
            "failed": group.failed,
            "failures": group.failures,
            "connect_seconds": group.connect_seconds,
            "connect_rate": group.ok / group.connect_seconds if group.connect_seconds else None,
            "settle_seconds": settle,
            "frames_while_connecting": other_frames,
            "client_processes": len(group.procs),
            "rss_base_kb": base,
            "rss_kb": rss,
            "kb_per_connection": (rss - base) / group.ok
            if group.ok and rss is not None and base is not None
            else None,
            "nofile_limit": target.server.nofile_limit(),
            "broadcasts": broadcasts,
            "broadcast_ms": _ms(median(complete)) if len(complete) == len(broadcasts) else None,
        }
    finally:
        await group.close()


async def capacity(ctx: Context) -> dict[str, Any]:
    """Scenario 5."""
    p = ctx.profile
    started: list[Server] = []
    try:
        if ctx.kept:
            targets = ctx.kept["targets"]
            started = [ctx.kept["app"], ctx.kept["raw"]]
        else:
            overlay = servers.overlay_ini(OVERLAY)
            app = app_server("capacity-app", ctx.database_url, ini=overlay)
            raw = raw_server("capacity-raw", "broadcast")
            ctx.say(f"starting: fresh app and raw broadcast; {p.capacity_sockets} idle sockets")
            started = [app, raw]
            await asyncio.to_thread(start_all, started)
            channel, cookie, sender_cookie = await chat_setup(ctx, app)
            targets = [
                Target("app", app, f"/channels/{channel}/ws", cookie, sender_cookie),
                Target("raw", raw, "/ws", None, None),
            ]
        results = {target.kind: await _capacity_one(ctx, target) for target in targets}
    finally:
        await asyncio.to_thread(stop_all, started)
        ctx.kept.clear()
    app_r, raw_r = results["app"], results["raw"]
    n = p.capacity_sockets
    ctx.row(
        "5 capacity",
        f"KB per idle socket ({n})",
        app_r["kb_per_connection"],
        "KB",
        "raw aiohttp",
        raw_r["kb_per_connection"],
        below=40.0 + 1e-9,
        target="<= 40 KB",
    )
    ctx.row(
        "5 capacity",
        f"broadcast to all {n} ms",
        app_r["broadcast_ms"],
        "ms",
        "raw aiohttp",
        raw_r["broadcast_ms"],
        below=1000.0,
        target="< 1 s",
    )
    return {
        "status": "ok",
        "what": f"{n} idle authenticated websockets on one worker (one user's cookie)",
        "sockets": n,
        "servers": results,
        "figures": {
            "app_kb_per_connection": app_r["kb_per_connection"],
            "raw_kb_per_connection": raw_r["kb_per_connection"],
            "app_broadcast_ms": app_r["broadcast_ms"],
            "raw_broadcast_ms": raw_r["broadcast_ms"],
            "app_connect_rate": app_r["connect_rate"],
            "raw_connect_rate": raw_r["connect_rate"],
        },
    }


def cleanup(ctx: Context) -> dict[str, Any]:
    """Delete what this run made in the database (channels, their messages, users)."""
    done: dict[str, Any] = {"channels": list(ctx.channels), "users": list(ctx.users)}
    channels = list(ctx.channels)
    if ctx.drop_seed:
        channels.append(HISTORY_CHANNEL)
    users = list(ctx.users) + ([SEED_USER] if ctx.drop_seed else [])
    if not channels and not users:
        return done
    try:
        connection = psycopg2.connect(dsn_from_url(ctx.database_url))
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute("DELETE FROM messages WHERE channel = ANY(%s)", (channels,))
                cursor.execute('DELETE FROM messages WHERE "user" = ANY(%s)', (users,))
                cursor.execute("DELETE FROM presence WHERE channel = ANY(%s)", (channels,))
                cursor.execute("DELETE FROM chats WHERE channel = ANY(%s)", (channels,))
                cursor.execute("DELETE FROM users WHERE username = ANY(%s)", (users,))
        finally:
            connection.close()
    except psycopg2.Error as exc:
        done["error"] = str(exc)
    return done


def profile_dict(profile: Profile) -> dict[str, Any]:
    return asdict(profile)
