"""``python -m scaling.fanout``: the two buses side by side, in one run, on the load they are
for: 16 workers, each serving the sockets of an eighth of 2,000 channels, Zipf traffic.

**The load.** 2,000 channels whose messages follow Zipf's law (s = 1, as ``scaling.shards``: the
busiest channel carries about 12 % of them). 16 workers; worker w serves the channels whose
number is w modulo 8, so each channel is served by two workers (its sockets spread over two
workers of the deployment) and each worker serves 250. A message is persisted as the app
persists one (``chat.insert_message``'s statements, compiled from its SQLAlchemy objects:
``BEGIN``, the channel's row lock, the insert, ``COMMIT``, with fsync and synchronous_commit
on), by a thin psycopg2 client, one transaction a message (no group commit: the app would do
better on the busiest channels), and announced on the bus under test:

- ``postgresql``: ``pg_notify`` inside the transaction; every worker's LISTEN connection hears
  every event and drops those of channels it does not serve (as a hub does);
- ``redis``: ``SPUBLISH`` on the channel's topic once committed; each worker subscribes to its
  250 channels' topics and hears only those.

The workers are the app's own bus classes (``PostgresBus``, ``RedisBus``) in four processes, so
what a worker's CPU costs is the app's. Sends are scheduled (open loop) and the scheduled time
travels in the message; a delivery's latency is from that time to the worker's handler.

**The ramp** (``scaling.ramp``): for each bus, the offered rate steps up until the p99 of the
deliveries passes 100 ms, any is missing, or fewer than 97 % of the messages are committed in
time; the limit is the last rate that passed, narrowed by bisection. The buses alternate at
each rate (NOTIFY, Redis, NOTIFY...) so that both see the same machine. CPU per party (PostgreSQL,
Redis, workers, publishers, the rest of the machine) says what stopped each.

``--workers-per-channel K`` (default 2) serves each channel from K of the 16 workers: 2 is a
deployment whose nginx routes a channel's sockets to the same instances (``--channel-affinity``
in deploy/), 16 one where every worker holds sockets of every channel (such a run is written to
``fanout-k16-<time>.json``).

Results: ``scaling/results/fanout-<time>.json`` and ``fanout-latest.json``; ``--report FILE``
prints a result's summary again.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime
import json
import random
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psycopg2
import redis

from aiotutorial.db import dsn_from_url, open_engine
from aiotutorial.game.strokes import StrokeWriter
from aiotutorial.realtime.bus import channel_topic, encode, use_transport
from aiotutorial.realtime.bus.postgres import NOTIFY_CHANNEL, PostgresBus, PostgresTransport
from aiotutorial.realtime.bus.redis import RedisBus, RedisTransport
from harness.cluster import ThrowawayCluster
from harness.redis import RedisServer
from harness.stats import Histogram

from .bus import _machine, cluster_version
from .cluster import make_fixture
from .load import _INSERT, _LOCK, _NOTIFY, _marked, _scheduled_time
from .ramp import P99_LIMIT, Bench
from .shards import CHANNELS, zipf_weights

__all__ = ["main", "summary"]

RESULTS = Path(__file__).resolve().parent / "results"
WORKERS = 16
GROUPS = 8  # worker w serves the channels numbered w modulo GROUPS: two workers a channel
BUSES = ("postgresql", "redis")
CHAT = "chat"
STROKES = "strokes"
KINDS = (CHAT, STROKES)
RATES = {
    CHAT: [100, 250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000, 6000, 8000],
    STROKES: [100, 250, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 16000],
}
BATCHES_PER_SECOND = 25  # a drawer's pace: games drawing = stroke batches a second / 25
DRAWER_WORKERS = 8  # the app's workers whose StrokeWriters write the strokes


def _mark(event: dict[str, Any]) -> float | None:
    """The scheduled time a message's content or a stroke batch's first op carries."""
    if event.get("type") == "game.draw":
        ops = event.get("ops") or [{}]
        return _scheduled_time(str(ops[0].get("c", "")))
    return _scheduled_time(event.get("content", ""))


def served_by(worker: int, channels: list[str], groups: int = GROUPS) -> list[str]:
    return [channel for n, channel in enumerate(channels) if n % groups == worker % groups]


# --- the workers ------------------------------------------------------------------------------


def workers(
    bus: str,
    db_url: str,
    redis_url: str,
    channels: list[str],
    first: int,
    count: int,
    groups: int,
    pipe: Any,
) -> None:
    """A process with workers ``first`` to ``first + count - 1``, each the app's bus class for
    ``bus`` with the channels it serves. Commands as ``scaling.load.listen``'s."""
    asyncio.run(_workers(bus, db_url, redis_url, channels, first, count, groups, pipe))


async def _workers(
    bus: str,
    db_url: str,
    redis_url: str,
    channels: list[str],
    first: int,
    count: int,
    groups: int,
    pipe: Connection,
) -> None:
    window = [float("inf"), float("inf")]
    counts = {"delivered": 0, "unmarked": 0}
    histogram = [Histogram()]

    async def nothing() -> None:
        pass

    buses: list[Any] = []
    for worker in range(first, first + count):
        mine = set(served_by(worker, channels, groups))

        async def on_event(event: dict[str, Any], text: str, mine: set[str] = mine) -> None:
            if event.get("channel") not in mine:
                return  # (NOTIFY: every worker hears every channel's events)
            scheduled = _mark(event)
            if scheduled is None:
                counts["unmarked"] += 1
            elif window[0] <= scheduled < window[1]:
                counts["delivered"] += 1
                histogram[0].add(time.time() - scheduled)

        if bus == "postgresql":
            listener: Any = PostgresBus(dsn_from_url(db_url), None, on_event, nothing)
        else:
            listener = RedisBus(redis_url, on_event, nothing)
        await listener.start()
        listener.subscribe([channel_topic(channel) for channel in sorted(mine)])
        buses.append(listener)
    for listener in buses:
        await asyncio.wait_for(listener.connected.wait(), 30)
    await asyncio.sleep(1.0)  # the subscriptions sent
    done = asyncio.Event()

    def command() -> None:
        while pipe.poll():
            message = pipe.recv()
            if message[0] == "window":
                window[0], window[1] = message[1], message[2]
                histogram[0] = Histogram()
                counts["delivered"] = counts["unmarked"] = 0
            elif message[0] == "result":
                pipe.send((counts["delivered"], histogram[0].sparse(), counts["unmarked"]))
            else:
                done.set()

    asyncio.get_running_loop().add_reader(pipe.fileno(), command)
    pipe.send("ready")
    await done.wait()
    for listener in buses:
        await listener.stop()


# --- the publishers ---------------------------------------------------------------------------


class _Publisher:
    """One connection persisting and announcing its share of a step's messages."""

    def __init__(self, bus: str, db_url: str, redis_url: str, seed: int) -> None:
        self.bus = bus
        self.conn = psycopg2.connect(db_url)
        self.conn.autocommit = True  # BEGIN and COMMIT are statements, as with aiopg
        self.redis = redis.Redis.from_url(redis_url) if bus == "redis" else None
        self.random = random.Random(seed)
        self.committed = 0
        self.errors = 0
        self.commit_times = Histogram()

    def run_step(
        self,
        first: float,
        interval: float,
        window: tuple[float, float],
        channels: list[str],
        cumulative: list[float],
        users: list[str],
    ) -> None:
        start, end = window
        self.committed, self.errors, self.commit_times = 0, 0, Histogram()
        cursor = self.conn.cursor()
        n = 0
        while True:
            scheduled = float(f"{first + n * interval:.6f}")
            if scheduled >= end:
                break
            delay = scheduled - time.time()
            if delay > 0:
                time.sleep(delay)
            pick = bisect.bisect_left(cumulative, self.random.random() * cumulative[-1])
            channel = channels[min(pick, len(channels) - 1)]
            user = users[pick % len(users)]
            try:
                self._message(cursor, channel, user, scheduled)
            except (psycopg2.Error, redis.RedisError):
                self.errors += 1
            else:
                if start <= scheduled < end:
                    self.committed += 1
                    self.commit_times.add(time.time() - scheduled)
            n += 1

    def _message(self, cursor: Any, channel: str, user: str, scheduled: float) -> None:
        content = f"{_marked(scheduled)} a chat message of about the usual length, for the bus"
        cursor.execute("BEGIN")
        cursor.execute(_LOCK, {"channel": channel})
        cursor.execute(_INSERT, {"channel": channel, "user": user, "content": content})
        row = cursor.fetchone()
        frame = encode(
            {
                "type": "message",
                "id": row[0],
                "channel": channel,
                "user": user,
                "time": row[3].isoformat(timespec="microseconds"),
                "content": content,
                "prev_in_stream": row[0] - 1,
            }
        )
        if self.redis is None:
            cursor.execute(_NOTIFY, {"channel": NOTIFY_CHANNEL, "payload": frame})
            cursor.execute("COMMIT")
        else:
            cursor.execute("COMMIT")
            self.redis.execute_command("SPUBLISH", channel_topic(channel), frame)


def publishers(
    bus: str,
    db_url: str,
    redis_url: str,
    threads: int,
    channels: list[str],
    users: list[str],
    seed: int,
    pipe: Any,
) -> None:
    """A process with ``threads`` publishing connections, each drawing channels by their Zipf
    weight. Commands as ``scaling.load.publish``'s."""
    weights = zipf_weights(len(channels))
    cumulative = []
    total = 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    pubs = [_Publisher(bus, db_url, redis_url, seed * 100 + i) for i in range(threads)]
    pipe.send("ready")
    while True:
        command = pipe.recv()
        if command[0] != "step":
            break
        _, rate, begin, start, end = command
        interval = threads / rate
        running = [
            threading.Thread(
                target=p.run_step,
                args=(
                    begin + i * interval / threads,
                    interval,
                    (start, end),
                    channels,
                    cumulative,
                    users,
                ),
            )
            for i, p in enumerate(pubs)
        ]
        for thread in running:
            thread.start()
        for thread in running:
            thread.join()
        times = Histogram()
        for p in pubs:
            times.merge(p.commit_times)
        pipe.send((sum(p.committed for p in pubs), sum(p.errors for p in pubs), times.sparse()))
    for p in pubs:
        p.conn.close()


class _DrawStep:
    """One step's drawing: ``rate / 25`` games, a batch a turn each, counted in the window."""

    def __init__(
        self,
        games: list[tuple[str, str]],
        rate: float,
        window: tuple[float, float],
        writers: list[StrokeWriter],
        rng: random.Random,
    ) -> None:
        self.drawing = games[: max(1, min(len(games), round(rate / BATCHES_PER_SECOND)))]
        self.window = window
        self.writers = writers
        self.rng = rng
        self.committed = 0
        self.errors = 0
        self.times = Histogram()

    async def draw(self, n: int, scheduled: float) -> None:
        game = n % len(self.drawing)
        channel, user = self.drawing[game]
        points = [self.rng.randrange(800) for _ in range(20)]
        ops = [{"op": "more", "c": _marked(scheduled), "p": points}]
        writer = self.writers[game % len(self.writers)]
        try:
            refused = await writer.append(channel, user, ops, json.dumps(ops))
        except Exception:  # noqa: BLE001 - a failed write is counted, not raised
            self.errors += 1
            return
        if refused is not None:
            self.errors += 1
        elif self.window[0] <= scheduled < self.window[1]:
            self.committed += 1
            self.times.add(time.time() - scheduled)


def drawers(
    bus: str,
    db_url: str,
    redis_url: str,
    games: list[tuple[str, str]],
    seed: int,
    pipe: Any,
) -> None:
    """A process with ``DRAWER_WORKERS // 2`` of the app's workers' stroke writers
    (``game.strokes.StrokeWriter``, each on an engine of its own, on the bus's transport), and
    the drawers of ``games`` (a game to a writer, round robin). ``("step", rate, ...)`` draws
    ``rate`` batches a second in all, in ``rate / 25`` games; commands as ``publishers``'."""
    asyncio.run(_drawers(bus, db_url, redis_url, games, seed, pipe))


async def _drawers(
    bus: str, db_url: str, redis_url: str, games: list[tuple[str, str]], seed: int, pipe: Any
) -> None:
    async def unsent(events: list[dict[str, Any]]) -> None:
        pass  # counted as missing by the workers

    transport: Any = RedisTransport(redis_url, unsent) if bus == "redis" else PostgresTransport()
    use_transport(transport)
    writers = []
    for _ in range(DRAWER_WORKERS // 2):
        engine = await open_engine({"db.pool_min": "2", "db.pool_max": "4"}, url=db_url)
        writers.append(StrokeWriter(engine, max_batches=2**31 - 1, max_bytes=2**31 - 1))
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    steps: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    loop.add_reader(pipe.fileno(), lambda: steps.put_nowait(pipe.recv()))
    pipe.send("ready")
    while True:
        command = await steps.get()
        if command[0] != "step":
            break
        _, rate, begin, start, end = command
        step = _DrawStep(games, rate, (start, end), writers, rng)
        interval = 1 / rate
        pending: set[asyncio.Task[None]] = set()
        n = 0
        while True:
            scheduled = float(f"{begin + n * interval:.6f}")
            if scheduled >= end:
                break
            delay = scheduled - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(step.draw(n, scheduled))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
        if pending:
            await asyncio.wait(pending, timeout=10)
        pipe.send((step.committed, step.errors, step.times.sparse()))
    for writer in writers:
        await writer.drain()


class FanoutBench(Bench):
    """16 workers on one bus, each event reaching the ``16 / groups`` that serve its channel."""

    def __init__(
        self,
        kind: str,
        bus: str,
        db_url: str,
        postmaster: int,
        redis_server: RedisServer,
        channels: list[str],
        users: list[str],
        games: list[tuple[str, str]],
        *,
        warmup: float,
        window: float,
        groups: int = GROUPS,
    ) -> None:
        self.bus = bus
        self.groups = groups
        self.redis_url = redis_server.redis_url
        # The channels the workers serve (each game is in a channel of its own).
        self.channels = channels if kind == CHAT else [channel for channel, _ in games]
        self.users = users
        self.games = games
        self._seed = 0
        super().__init__(db_url, postmaster, kind, WORKERS, games, warmup=warmup, window=window)
        self.fanout = WORKERS // groups
        self.other_pids = {"redis": [redis_server.pid]} if bus == "redis" else {}

    def listener_process(self, first: int, count: int) -> tuple[Any, tuple[Any, ...]]:
        return workers, (
            self.bus,
            self.url,
            self.redis_url,
            self.channels,
            first,
            count,
            self.groups,
        )

    def publisher_process(self, targets: list[tuple[str, str]]) -> tuple[Any, tuple[Any, ...]]:
        self._seed += 1
        if self.kind == STROKES:
            return drawers, (self.bus, self.url, self.redis_url, targets, self._seed)
        args = (self.bus, self.url, self.redis_url, 4, self.channels, self.users, self._seed)
        return publishers, args


# --- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    warmup, window = (0.5, 2.0) if args.quick else (1.0, 4.0)
    most_games = max(RATES[STROKES]) // BATCHES_PER_SECOND
    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "p99_limit_ms": P99_LIMIT * 1000,
        "window_seconds": window,
        "workers": WORKERS,
        "channels": CHANNELS,
        "channels_per_worker": CHANNELS // (WORKERS // args.workers_per_channel),
        "workers_per_channel": args.workers_per_channel,
        "busiest_share": round(zipf_weights(CHANNELS)[0], 4),
        "drawer_workers": DRAWER_WORKERS,
        "kinds": {},
    }
    with ThrowawayCluster(prefix="aiotutorial-fanout-") as db, RedisServer("fanout") as server:
        postmaster = db.cluster.pid()
        assert postmaster is not None
        assert isinstance(server, RedisServer)
        fixture = make_fixture(db.url, channels=CHANNELS, games=most_games, rooms=0)
        results["postgresql"] = cluster_version(db.url)
        results["redis"] = server.cli("INFO", "server").split("redis_version:")[1].split()[0]
        print(f"{results['postgresql']}, Redis {results['redis']}", flush=True)
        for kind in args.kinds:
            results["kinds"][kind] = ramp_both(args, kind, db.url, postmaster, server, fixture)
            results["kinds"][kind]["window"] = window
    return results


def ramp_both(
    args: argparse.Namespace,
    kind: str,
    url: str,
    postmaster: int,
    server: RedisServer,
    fixture: Any,
) -> dict[str, Any]:
    """Both buses' ramps for ``kind``, a rate at a time, the buses in turn; then each limit
    narrowed by bisection."""
    warmup, window = (0.5, 2.0) if args.quick else (1.0, 4.0)
    benches = {
        bus: FanoutBench(
            kind,
            bus,
            url,
            postmaster,
            server,
            fixture.channels,
            fixture.users,
            fixture.games,
            warmup=warmup,
            window=window,
            groups=WORKERS // args.workers_per_channel,
        )
        for bus in args.buses
    }
    outcome: dict[str, Any] = {"buses": {}}
    try:
        for bus in benches:
            outcome["buses"][bus] = {"steps": [], "limit": 0.0, "failed": None}
        open_buses = list(args.buses)
        for rate in RATES[kind]:
            for bus in list(open_buses):
                step = benches[bus].step(rate)
                benches[bus]._report(step)
                entry = outcome["buses"][bus]
                entry["steps"].append({"bus": bus, **step.row()})
                if step.passed:
                    entry["limit"] = rate
                else:
                    entry["failed"] = rate
                    open_buses.remove(bus)
                time.sleep(0.5)
            if not open_buses:
                break
        for bus, bench in benches.items():
            entry = outcome["buses"][bus]
            good, bad = entry["limit"], entry["failed"]
            for _ in range(1 if args.quick else 2):
                if not good or bad is None:
                    break
                middle = round((good + bad) / 2 / 50) * 50
                if middle in (good, bad):
                    break
                step = bench.step(middle)
                bench._report(step)
                entry["steps"].append({"bus": bus, **step.row()})
                if step.passed:
                    good = entry["limit"] = middle
                else:
                    bad = entry["failed"] = middle
    finally:
        for bench in benches.values():
            bench.close()
    return outcome


def summary(results: dict[str, Any]) -> str:
    lines = [
        f"Measured {results['started']} on {results['machine']['cpus']} cores "
        f"({results['machine']['cpu']}), {results['postgresql']}, Redis {results['redis']}: "
        f"{results['workers']} workers, {results['channels']:,} channels (Zipf, the busiest "
        f"{results['busiest_share']:.1%}), {results['channels_per_worker']} channels a worker, "
        f"{results['workers_per_channel']} workers a channel; strokes written by "
        f"{results['drawer_workers']} workers' StrokeWriters; everything on the same cores.",
        "",
        "| events | bus | limit, p99 <= 100 ms | deliveries/s | p50 / p99 at the limit "
        "| CPU at the limit (cores: PostgreSQL / Redis / workers / publishers / others) "
        "| first failure |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    ratios = []
    for kind, outcome in results["kinds"].items():
        limits = {}
        for bus, entry in outcome["buses"].items():
            limit = entry["limit"]
            limits[bus] = limit
            label = "chat message" if kind == CHAT else "stroke batch"
            at = [s for s in entry["steps"] if s["passed"] and s["offered"] == limit]
            failure = _first_failure(entry, results["p99_limit_ms"])
            if not at:
                lines.append(f"| {label} | {bus} | below the first step | | | | {failure} |")
                continue
            best = at[-1]
            cpu = best["cpu"]
            parts = " / ".join(
                f"{cpu.get(name, 0):.2f}"
                for name in ("postgresql", "redis", "listeners", "publishers", "others")
            )
            shown = f"**{limit:,.0f}/s**"
            if kind == STROKES:
                shown += f" ({limit / BATCHES_PER_SECOND:,.0f} games drawing)"
            lines.append(
                f"| {label} | {bus} | {shown} | {best['delivered']:,.0f} "
                f"| {best['p50_ms']:.1f} / {best['p99_ms']:.1f} ms | {parts} | {failure} |"
            )
        if limits.get("postgresql") and limits.get("redis"):
            ratios.append(f"{kind}: Redis / NOTIFY = {limits['redis'] / limits['postgresql']:.1f}x")
    if ratios:
        lines += ["", "; ".join(ratios)]
    return "\n".join(lines)


def _first_failure(entry: dict[str, Any], p99_limit_ms: float) -> str:
    failed = [s for s in entry["steps"] if not s["passed"]]
    if not failed:
        return "-"
    worst = min(failed, key=lambda s: s["offered"])
    reasons = []
    if worst["p99_ms"] > p99_limit_ms:
        reasons.append(f"p99 {worst['p99_ms']:.0f} ms")
    if worst["committed"] < 0.97 * worst["offered"]:
        reasons.append(f"committed {worst['committed']:,.0f}/s")
    if worst["missing"]:
        reasons.append(f"{worst['missing']} missing")
    if worst["errors"]:
        reasons.append(f"{worst['errors']} errors")
    cpu = worst["cpu"]
    busy = ", ".join(f"{name} {value:.2f}" for name, value in cpu.items() if value >= 0.3)
    return (
        f"{worst['offered']:,.0f}/s: " + ", ".join(reasons) + (f" (cores: {busy})" if busy else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaling.fanout", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter windows")
    parser.add_argument(
        "--buses", default=",".join(BUSES), type=lambda v: [b for b in v.split(",") if b]
    )
    parser.add_argument(
        "--kinds", default=",".join(KINDS), type=lambda v: [k for k in v.split(",") if k]
    )
    parser.add_argument(
        "--workers-per-channel",
        type=int,
        default=WORKERS // GROUPS,
        choices=[k for k in range(1, WORKERS + 1) if WORKERS % k == 0],
        help="how many of the 16 workers serve each channel (2: sockets routed by channel, "
        "as nginx's channel affinity does; 16: every worker holds sockets of every channel)",
    )
    parser.add_argument("--report", type=Path, help="print the summary of a result file")
    args = parser.parse_args(argv)
    if args.report:
        print(summary(json.loads(args.report.read_text())))
        return 0
    for bus in args.buses:
        if bus not in BUSES:
            parser.error(f"unknown bus {bus!r}")
    for kind in args.kinds:
        if kind not in KINDS:
            parser.error(f"unknown kind {kind!r}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = run(args)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = json.dumps(results, indent=1)
    if args.workers_per_channel == WORKERS // GROUPS:
        (RESULTS / f"fanout-{stamp}.json").write_text(text)
        (RESULTS / "fanout-latest.json").write_text(text)
    else:
        (RESULTS / f"fanout-k{args.workers_per_channel}-{stamp}.json").write_text(text)
    print()
    print(summary(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
