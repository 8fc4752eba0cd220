"""Scenario 6 of ``make bench``: the game's strokes, against the chat, and what the bus carries.

1. **Delivery**: one game in one channel on a gunicorn instance with 2 workers; one drawer sends
   ``game.draw`` batches at 25 a second (a ``more`` op of ~10 points, a ``line`` op every 2 s)
   to 50 watchers spread over both workers (checked, and rebalanced, from /proc). From send to
   delivery, p50 and p99; then, on the same server and sockets' users, the chat's fan-out at
   the same rate (one sender, 25 messages a second, 50 members) in a channel without a game.
   Stroke and chat windows alternate (the drawer pauses while the chat is measured).
2. **Capacity**: one worker, games of 5 players (one drawer at 25 batches a second, 4 watchers
   each), 1, 2, 4, 8... of them (fresh games at each step, the accounts reused) until the
   strokes' p99 reaches 100 ms; each step is warmed up, then measured in a few windows while
   every game keeps drawing.
3. **The bus**: in every window, the NOTIFY events the database carried (a LISTEN connection of
   the harness's own counts them, by type), the deliveries that makes (notifications x
   listening backends), ``pg_notification_queue_usage()``, what the server's backends were
   doing (``pg_stat_activity`` sampled 20 times a second: running, waiting for a lock, for the
   WAL's fsync, for the client), and the CPU of the PostgreSQL processes (from /proc: the whole
   cluster's, and this bench's share: the cluster less other clients' backends), of the
   workers, of the harness, and of everything else on the machine.

One clock: every client socket lives in this (the harness's) process, so a batch's send time
and its arrivals are read from the same ``time.time()``; a loop-lag probe reports how late the
harness's own loop ran, which adds to what is measured. Batches are timed by bookkeeping, not
by anything added to the payload: the drawer notes each send's time under the batch's ``turn``
and its place in the turn (what the server numbers ``seq``), and checks it against the batch's
ops, which the server relays byte for byte (a random walk: each batch's are unique), so a batch
the server refused cannot shift the others' times. A turn lasts ``draw_seconds`` (240): part 1
moves to a fresh game before its turn could end within a window; part 2 starts fresh games at
each step; a turn that ends anyway is followed (the next drawer chooses at once and draws).

The machine is shared (other processes, the load generator): before each window the harness
waits (bounded) for the others to go quiet and for any backlog to drain; a window during which
other processes used over half a core is kept in the raw numbers, left out of the figures and
run again (a few times at most); the tables say how many were kept.

Run it alone with ``python -m bench.run --only strokes [--quick]``; ``python -m bench.strokes
capacity [--games 8,16,32] [--runs N] [--duration S]`` runs part 2 alone, and
``python -m bench.strokes profile --games N [--gil]`` profiles the worker under N games with
py-spy. ``python -m bench.strokes listen`` is the NOTIFY counter the harness starts.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import select
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # ``python bench/strokes.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from .common import HOST, PROJECT_ROOT, Histogram, median
from .scenarios import OVERLAY, Account, Context
from .servers import Server, app_server, cpu_ticks, overlay_ini, start_all, stop_all
from .wsclient import Stats, WSClient, content

__all__ = [
    "StrokesProfile",
    "PROFILES",
    "SETTINGS",
    "run",
    "cleanup",
    "tables",
    "GameSocket",
]

NOTIFY_CHANNEL = "aiotutorial_events"  # aiotutorial.realtime.bus.NOTIFY_CHANNEL
SCENARIO = "6 strokes"
# The bench server's settings: the chat's lifted limits (scenario 4), and the game's too, so
# that a backlog shows as latency and never as refused frames.
SETTINGS: dict[str, Any] = {
    **OVERLAY,
    "game.draw_per_second": 1000,
    "game.draw_burst": 1000,
    "game.rate_per_second": 1000,
    "game.rate_burst": 1000,
}
ROUNDS = 10
DRAW_SECONDS = 240
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_PCT = 25.0
WAIT_SAMPLE_EVERY = 0.05
NOISY_PCT = 50.0

DRAW_PREFIX = b'{"type":"game.draw"'
TURN_SEQ = re.compile(rb'"turn":(\d+),"seq":(\d+)')
OPS_KEY = b'"ops":'
FRAME_TYPE = re.compile(rb'"type":"([A-Za-z_.]+)"')
PAYLOAD_TYPE = re.compile(r'"type":"([A-Za-z_.]+)"')


@dataclass
class StrokesProfile:
    name: str
    rate: int  # stroke batches (and chat messages) a second, per drawer
    points: int  # points per batch
    workers: int  # part 1's gunicorn workers
    watchers: int  # part 1: sockets receiving the drawer's batches (and the chat's messages)
    warmup: float  # part 1: seconds of strokes (and of chat) before the measured windows
    duration: float  # part 1: one measured window
    runs: int  # part 1: windows of each kind (strokes, chat), alternating
    players: int  # part 2: sockets per game (the drawer included)
    games: tuple[int, ...]  # part 2: the steps
    cap_warmup: float
    cap_duration: float
    cap_runs: int
    threshold_ms: float = 100.0
    drain_timeout: float = 15.0
    # Other processes share the cores: before a window, wait (up to this) for them to use
    # under QUIET_PCT of a core; a window during which they used over NOISY_PCT is left out
    # of the figures (kept in the raw numbers) and run again, up to ``extra_runs`` more.
    quiet_timeout: float = 10.0
    extra_runs: int = 2
    connect_concurrency: int = 20
    register_concurrency: int = 4
    balance_rounds: int = 12


PROFILES = {
    "full": StrokesProfile(
        name="full",
        rate=25,
        points=10,
        workers=2,
        watchers=50,
        warmup=5.0,
        duration=10.0,
        runs=3,
        players=5,
        games=(1, 2, 4, 8, 16, 24, 32, 48, 64),
        cap_warmup=3.0,
        cap_duration=5.0,
        cap_runs=3,
    ),
    "quick": StrokesProfile(
        name="quick",
        rate=25,
        points=10,
        workers=2,
        watchers=50,
        warmup=2.0,
        duration=4.0,
        runs=2,
        players=5,
        games=(1, 2, 4, 8, 16, 32),
        cap_warmup=2.0,
        cap_duration=3.0,
        cap_runs=2,
        drain_timeout=8.0,
        quiet_timeout=8.0,
        extra_runs=2,
    ),
    "smoke": StrokesProfile(
        name="smoke",
        rate=25,
        points=10,
        workers=2,
        watchers=6,
        warmup=0.5,
        duration=1.5,
        runs=1,
        players=3,
        games=(1, 2),
        cap_warmup=0.5,
        cap_duration=1.0,
        cap_runs=1,
        drain_timeout=5.0,
        quiet_timeout=0.0,
        extra_runs=0,
    ),
}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# --- windows: what one measured slice of time saw -------------------------------------------------


class Window:
    """Sends made while it was open, their deliveries (whenever they arrive), the loop's lag."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.hist = Histogram()  # send to delivery, watchers only
        self.echo = Histogram()  # send to the drawer's own copy (its worker's round trip)
        self.send_lag = Histogram()  # how late the pacer sent, against its schedule
        self.loop_lag = Histogram()  # the harness loop's lateness (a 5 ms sleep's overshoot)
        self.sent = 0
        self.expected = 0
        self.delivered = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.turn_changes = 0
        self.first_sent: float | None = None
        self.last_sent: float | None = None
        self.last_delivery: float | None = None
        self.open = True

    def summary(self) -> dict[str, Any]:
        span = (self.last_sent - self.first_sent) if self.sent > 1 else None
        return {
            "kind": self.kind,
            "sent": self.sent,
            "sent_rate": (self.sent - 1) / span if span else None,
            "expected": self.expected,
            "delivered": self.delivered,
            "lost": self.expected - self.delivered,
            "p50_ms": _ms(self.hist.percentile(50)),
            "p90_ms": _ms(self.hist.percentile(90)),
            "p99_ms": _ms(self.hist.percentile(99)),
            "max_ms": _ms(self.hist.percentile(100)),
            "echo_p50_ms": _ms(self.echo.percentile(50)),
            "echo_p99_ms": _ms(self.echo.percentile(99)),
            "send_lag_p99_ms": _ms(self.send_lag.percentile(99)),
            "loop_lag_p99_ms": _ms(self.loop_lag.percentile(99)),
            "loop_lag_max_ms": _ms(self.loop_lag.percentile(100)),
            "errors": dict(self.errors),
            "turn_changes": self.turn_changes,
            "hist": self.hist.sparse(),
        }


# --- the sockets ----------------------------------------------------------------------------------


class GameSocket(WSClient):
    """A channel socket of the harness: chat messages are timed by ``WSClient`` (their content
    carries the send time); ``game.draw`` frames are matched to their send by ``turn``/``seq``
    with a bytes search only; other game frames and errors are decoded and handed on."""

    def __init__(
        self, port: int, path: str, cookie: str | None, stats: Stats, user: str, driver: Any
    ) -> None:
        super().__init__(HOST, port, path, cookie, stats)
        self.user = user
        self.driver = driver

    def _text(self, buffer: bytearray, start: int, end: int, now: float) -> None:
        if buffer.startswith(DRAW_PREFIX, start):
            found = TURN_SEQ.search(buffer, start, end)
            at = buffer.find(OPS_KEY, start, end)
            if found is not None and at >= 0 and self.driver is not None:
                # The ops as the server re-serialised them (the frame ends with them and "}").
                ops = bytes(buffer[at + len(OPS_KEY) : end - 1])
                self.driver.on_draw(self, int(found[1]), int(found[2]), ops, now)
            return
        kind = FRAME_TYPE.search(buffer, start, min(end, start + 64))
        name = kind[1] if kind is not None else b""
        if name.startswith(b"game.") or name == b"error":
            frame = json.loads(bytes(buffer[start:end]))
            if self.driver is not None:
                self.driver.on_frame(self, frame, now)
            if name == b"error":
                self.stats.errors += 1
            return
        super()._text(buffer, start, end, now)

    def local_port(self) -> int | None:
        if self.transport is None:
            return None
        name = self.transport.get_extra_info("sockname")
        return name[1] if name else None


async def open_socket(
    port: int,
    path: str,
    cookie: str,
    stats: Stats,
    user: str,
    driver: Any,
    within: float = 30.0,
) -> GameSocket:
    loop = asyncio.get_running_loop()

    async def connect() -> GameSocket:
        _, sock = await loop.create_connection(
            lambda: GameSocket(port, path, cookie, stats, user, driver), HOST, port
        )
        await sock.ready
        return sock

    return await asyncio.wait_for(connect(), within)


async def close_sockets(sockets: Iterable[WSClient], timeout: float = 3.0) -> None:  # noqa: ASYNC109
    sockets = list(sockets)
    for sock in sockets:
        sock.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(not s.closed for s in sockets):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    for sock in sockets:
        if not sock.closed:
            sock.abort()


# --- one game -------------------------------------------------------------------------------------


class Scribble:
    """A drawer's hand: a random walk on the 800 x 600 board, a new stroke every 50 batches."""

    def __init__(self, rng: random.Random, points: int) -> None:
        self.rng = rng
        self.points = points
        self.x = rng.randrange(100, 700)
        self.y = rng.randrange(100, 500)
        self.count = 0

    def ops(self) -> list[dict[str, Any]]:
        rng = self.rng
        p: list[int] = []
        for _ in range(self.points):
            self.x = min(799, max(0, self.x + rng.randint(-8, 8)))
            self.y = min(599, max(0, self.y + rng.randint(-8, 8)))
            p += (self.x, self.y)
        first = self.count % 50 == 0
        self.count += 1
        if first:
            return [{"op": "line", "c": rng.randrange(1, 16), "w": rng.randrange(4), "p": p}]
        return [{"op": "more", "p": p}]


class Session:
    """One drawer's turn: the time and window of each batch it sent, in sending order, and
    each batch's ops text (unique: a random walk) to find it from what is delivered."""

    def __init__(self, drawer: GameSocket, watchers: int) -> None:
        self.drawer = drawer
        self.watchers = watchers
        self.started = time.monotonic()
        self.turn: int | None = None
        self.echoed = 0  # batches the drawer got back: the ones after them are in flight
        self.sent: list[float] = []
        self.windows: list[Window | None] = []
        self.by_ops: dict[bytes, int] = {}
        self.shifted = 0  # batches whose seq was not their place in sending order


class GameDriver:
    """One channel's game as its players' clients play it: the starter starts it, whoever gets
    ``game.words`` chooses at once, and the drawer draws at ``rate`` while not paused."""

    def __init__(self, bench: Bench, channel: str, index: int) -> None:
        self.bench = bench
        self.channel = channel
        self.index = index
        self.sockets: list[GameSocket] = []
        self.drawer: GameSocket | None = None
        self.session: Session | None = None
        self.sessions: dict[int, Session] = {}
        self.can_draw = False
        self.paused = False
        self.drawing = asyncio.Event()  # the first turn's word is chosen
        self.errors: collections.Counter[str] = collections.Counter()
        self.unmatched = 0
        self.turns = 0
        self.scribble = Scribble(random.Random(index), bench.profile.points)
        self.stats = Stats()
        self._pacer: asyncio.Task | None = None

    # frames from the sockets

    def on_frame(self, sock: GameSocket, frame: dict[str, Any], now: float) -> None:
        kind = frame.get("type")
        if kind == "game.words":
            self.drawer = sock
            self.can_draw = False
            sock.send_text(json.dumps({"type": "game.choose", "index": 0}))
        elif kind == "game.word":
            if self.session is not None and self.session.drawer is sock and self.can_draw:
                return
            self.drawer = sock
            self.session = Session(sock, len(self.sockets) - 1)
            self.turns += 1
            if self.turns > 1:
                window = self.bench.window
                if window is not None:
                    window.turn_changes += 1
            self.can_draw = True
            self.drawing.set()
        elif kind in ("game.turn_end", "game.over") and sock is self.drawer:
            self.can_draw = False
        elif kind == "error":
            code = str(frame.get("error"))
            self.errors[code] += 1
            window = self.bench.window
            if window is not None:
                window.errors[code] += 1

    def on_draw(self, sock: GameSocket, turn: int, seq: int, ops: bytes, now: float) -> None:
        """A delivered batch: ``seq`` is where the server stored it in the turn, ``ops`` find
        which send it was (the seq alone would be one off after a batch the server refused)."""
        session = self.sessions.get(turn)
        if session is None:
            session = self.session
            if session is None or session.turn is not None:
                self.unmatched += 1
                return
            session.turn = turn
            self.sessions[turn] = session
        index = session.by_ops.get(ops)
        if index is None:
            self.unmatched += 1
            return
        if sock is session.drawer:
            session.echoed += 1
            if index != seq - 1:
                session.shifted += 1
        window = session.windows[index]
        if window is None:
            return
        delay = now - session.sent[index]
        if sock is session.drawer:
            window.echo.counts[Histogram.index(delay)] += 1
            return
        window.hist.counts[Histogram.index(delay)] += 1
        window.delivered += 1
        window.last_delivery = now
        self.bench.deliveries += 1

    def in_flight(self) -> int:
        """Batches sent that the drawer has not had back yet."""
        session = self.session
        return len(session.sent) - session.echoed if session is not None else 0

    def all_sessions(self) -> list[Session]:
        sessions = {id(s): s for s in self.sessions.values()}
        if self.session is not None:
            sessions[id(self.session)] = self.session
        return list(sessions.values())

    def turn_age(self) -> float:
        """Seconds since the current drawer got its word (a turn lasts ``DRAW_SECONDS``)."""
        return time.monotonic() - self.session.started if self.session is not None else 0.0

    # the drawer's hand

    def pause(self) -> None:
        self.paused = True

    def start_pacer(self, offset: float) -> None:
        if self._pacer is None:
            self._pacer = asyncio.ensure_future(self._pace(offset))

    async def stop(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
            self._pacer = None

    async def _pace(self, offset: float) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.bench.profile.rate
        due = loop.time() + offset
        while True:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            lag = now - due
            due += period
            if now - due > period:
                due = now + period  # a stalled browser skips ticks; it does not burst
            if self.paused or not self.can_draw or self.drawer is None or self.session is None:
                continue
            self._send(lag)

    def _send(self, lag: float) -> None:
        session = self.session
        assert session is not None and self.drawer is not None
        # Serialised as the server re-serialises a batch (drawing.validate_ops): the same keys
        # in the same order, compact; so the relayed frame carries these very bytes.
        ops = json.dumps(self.scribble.ops(), separators=(",", ":"))
        while ops.encode() in session.by_ops:  # a walk that came back exactly: draw another
            ops = json.dumps(self.scribble.ops(), separators=(",", ":"))
        session.by_ops[ops.encode()] = len(session.sent)
        text = '{"type":"game.draw","ops":' + ops + "}"
        window = self.bench.window
        if window is not None and (not window.open or window.kind != "strokes"):
            window = None
        sent = time.time()
        session.sent.append(sent)
        session.windows.append(window)
        self.drawer.send_text(text)
        if window is not None:
            window.sent += 1
            window.expected += session.watchers
            window.send_lag.counts[Histogram.index(max(lag, 0.0))] += 1
            if window.first_sent is None:
                window.first_sent = sent
            window.last_sent = sent


# --- measuring the machine: /proc and the bus -----------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found.extend(int(p) for p in (task / "children").read_text().split())
    return found


def _ppid(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        text = Path(f"/proc/{pid}/stat").read_text()
        return int(text[text.rindex(")") + 2 :].split()[1])
    return None


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all cores, from /proc/stat."""
    with contextlib.suppress(OSError, ValueError):
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        total = sum(fields[:8])
        idle = fields[3] + fields[4]
        return total - idle, total
    return None


def socket_workers(server: Server, ports: Iterable[int]) -> dict[int, int]:
    """Client port -> the worker pid holding the server's end of that connection (/proc)."""
    wanted = set(ports)
    suffix = f":{server.port:04X}"
    by_inode: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) < 10 or not fields[1].endswith(suffix):
                    continue
                remote = int(fields[2].rsplit(":", 1)[1], 16)
                if remote in wanted:
                    by_inode[fields[9]] = remote
    owners: dict[int, int] = {}
    for pid in server.worker_pids():
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in by_inode:
                        owners[by_inode[link[8:-1]]] = pid
    return owners


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


def listen_main(args: argparse.Namespace) -> None:
    """The counter's process: LISTEN, count, answer ``count`` with the totals so far. It also
    samples, 20 times a second, what the server's backends are doing (``pg_stat_activity``:
    running, or waiting and on what: a lock, the WAL's fsync, the client...)."""
    import psycopg2
    import psycopg2.extensions

    connection = psycopg2.connect(f"{args.dsn} application_name=bench-strokes-listener")
    connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    cursor = connection.cursor()
    cursor.execute(f'LISTEN "{NOTIFY_CHANNEL}"')
    cursor.execute("SELECT pg_backend_pid()")
    backend = cursor.fetchone()[0]
    by_type: collections.Counter[str] = collections.Counter()
    totals = {"total": 0, "bytes": 0, "mine": 0}
    mine = f'"channel":"{args.mine}'

    def take() -> None:
        notes = connection.notifies
        for note in notes:
            payload = note.payload
            totals["total"] += 1
            totals["bytes"] += len(payload)
            found = PAYLOAD_TYPE.search(payload, 0, 80)
            by_type[found[1] if found else "?"] += 1
            if mine in payload:
                totals["mine"] += 1
        notes.clear()

    def say(reply: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()

    waits: collections.Counter[str] = collections.Counter()
    samples = [0]

    def sample_waits() -> None:
        cursor.execute(
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
            "WHERE application_name = %s",
            (args.app,),
        )
        for state, kind, event in cursor.fetchall():
            if state == "active" and kind is None:
                waits["active: on CPU (or runnable)"] += 1
            else:
                waits[f"{state}: {kind}/{event}"] += 1
        samples[0] += 1
        take()

    say({"event": "ready", "backend_pid": backend, "postmaster_pid": None})
    stdin = sys.stdin.fileno()
    pending = b""
    due = time.monotonic()
    while True:
        ready, _, _ = select.select([connection, stdin], [], [], max(0.0, due - time.monotonic()))
        if connection in ready:
            connection.poll()
            take()
        now = time.monotonic()
        if now >= due:
            sample_waits()
            due = max(due + WAIT_SAMPLE_EVERY, now)
        if stdin not in ready:
            continue
        data = os.read(stdin, 65536)
        if not data:
            break
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            command = json.loads(line).get("cmd")
            if command == "quit":
                return
            if command != "count":
                continue
            cursor.execute(
                "SELECT pg_notification_queue_usage(), pid, application_name, backend_type, "
                "datname = current_database(), query ILIKE 'LISTEN%%' FROM pg_stat_activity"
            )
            rows = cursor.fetchall()
            usage = rows[0][0] if rows else None
            wal: dict[str, Any] = {}
            with contextlib.suppress(psycopg2.Error):  # pg_stat_wal: PostgreSQL 14 and later
                cursor.execute(
                    "SELECT wal_records, wal_fpi, wal_bytes::float8, wal_buffers_full, "
                    "wal_write, wal_sync FROM pg_stat_wal"
                )
                names = ("records", "fpi", "bytes", "buffers_full", "writes", "syncs")
                wal = dict(zip(names, cursor.fetchone(), strict=True))
            here = [row for row in rows if row[4]]
            listeners = sum(1 for row in here if row[5])
            listeners_app = sum(1 for row in here if row[5] and row[2] == args.app)
            app_pids = [row[1] for row in rows if row[2] == args.app]
            # Client backends of anyone else (other tests and servers on this cluster).
            other_pids = [
                row[1]
                for row in rows
                if row[3] == "client backend" and row[2] != args.app and row[1] != backend
            ]
            connection.poll()
            take()
            say(
                {
                    "event": "count",
                    "at": time.time(),
                    **totals,
                    "by_type": dict(by_type),
                    "queue_usage": usage,
                    "listeners": listeners,
                    "listeners_app": listeners_app,
                    "app_pids": app_pids,
                    "other_pids": other_pids,
                    "wal": wal,
                    "wait_samples": samples[0],
                    "waits": dict(waits),
                }
            )


class Meter:
    """CPU of the workers, the PostgreSQL processes, the harness and the machine, and the bus's
    notifications, between ``start`` and ``stop``."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    async def sample(self) -> dict[str, Any]:
        bench = self.bench
        counter = bench.counter
        counts = await counter.count() if counter is not None else None
        postmaster = bench.postmaster
        pg_pids = ([postmaster, *_children(postmaster)]) if postmaster else []
        helpers = [bench.server.pid]  # the gunicorn master, and the NOTIFY counter
        if counter is not None and counter.process is not None:
            helpers.append(counter.process.pid)
        return {
            "time": time.time(),
            "bus": counts,
            "workers": {pid: cpu_ticks(pid) for pid in bench.server.worker_pids()},
            "postgres": {pid: cpu_ticks(pid) for pid in pg_pids},
            "helpers": {pid: cpu_ticks(pid) for pid in helpers},
            "harness": cpu_ticks(os.getpid()),
            "machine": _machine_ticks(),
            "loadavg": list(os.getloadavg()),
        }

    def between(self, first: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
        seconds = last["time"] - first["time"]

        def pct(ticks: float | None) -> float | None:
            if ticks is None or seconds <= 0:
                return None
            return 100.0 * ticks / CLK_TCK / seconds

        def delta(a: dict[int, int | None], b: dict[int, int | None], pids: Iterable[int]) -> int:
            total = 0
            for pid in pids:
                end = b.get(pid)
                if end is None:
                    continue
                total += end - (a.get(pid) or 0)  # a process started meanwhile: all of it
            return total

        workers = {
            str(pid): pct(delta(first["workers"], last["workers"], [pid]))
            for pid in last["workers"]
        }
        out: dict[str, Any] = {
            "seconds": seconds,
            "loadavg": last["loadavg"],
            "cpu_pct_of_core": {
                "workers": workers,
                "workers_total": pct(delta(first["workers"], last["workers"], last["workers"])),
                "harness": pct(
                    (last["harness"] - first["harness"])
                    if last["harness"] is not None and first["harness"] is not None
                    else None
                ),
            },
        }
        cpu = out["cpu_pct_of_core"]
        cpu["bench_helpers"] = pct(delta(first["helpers"], last["helpers"], last["helpers"]))
        if last["postgres"]:
            cpu["postgres_total"] = pct(
                delta(first["postgres"], last["postgres"], last["postgres"])
            )
        bus_a, bus_b = first["bus"], last["bus"]
        if bus_b is not None and bus_a is not None:
            app_pids = [pid for pid in bus_b["app_pids"] if pid in last["postgres"]]
            other_pids = set(bus_b["other_pids"]) | set(bus_a["other_pids"])
            if last["postgres"]:
                cpu["postgres_app_backends"] = pct(
                    delta(first["postgres"], last["postgres"], app_pids)
                )
                # This bench's share: the cluster less the backends of other clients (their
                # tests and servers); the shared processes (WAL writer...) count as ours.
                cpu["postgres_others"] = pct(
                    delta(first["postgres"], last["postgres"], other_pids & set(last["postgres"]))
                )
                cpu["postgres_bench"] = max(
                    0.0, (cpu["postgres_total"] or 0.0) - (cpu["postgres_others"] or 0.0)
                )
            notes = bus_b["total"] - bus_a["total"]
            by_type = {
                kind: count - bus_a["by_type"].get(kind, 0)
                for kind, count in bus_b["by_type"].items()
                if count - bus_a["by_type"].get(kind, 0)
            }
            span = bus_b["at"] - bus_a["at"]
            out["bus"] = {
                "notifications": notes,
                "notify_per_s": notes / span if span > 0 else None,
                "bench_share": (bus_b["mine"] - bus_a["mine"]) / notes if notes else None,
                # Those about this run's channels only (the database may carry others' too).
                "bench_notify_per_s": (bus_b["mine"] - bus_a["mine"]) / span if span > 0 else None,
                "bytes_per_s": (bus_b["bytes"] - bus_a["bytes"]) / span if span > 0 else None,
                "by_type_per_s": {k: v / span for k, v in sorted(by_type.items())}
                if span > 0
                else {},
                "listeners": bus_b["listeners"],
                "listeners_server": bus_b["listeners_app"],
                # Each listening backend of the database gets every notification.
                "deliveries_per_s": notes * bus_b["listeners"] / span
                if span > 0 and bus_b["listeners"]
                else None,
                "queue_usage": bus_b["queue_usage"],
            }
            if bus_a.get("wal") and bus_b.get("wal") and span > 0:
                # The whole cluster's WAL (others' too), per second and per notification.
                out["wal_per_s"] = {
                    key: (bus_b["wal"][key] - bus_a["wal"][key]) / span for key in bus_b["wal"]
                }
                if notes:
                    out["wal_bytes_per_notification"] = (
                        bus_b["wal"]["bytes"] - bus_a["wal"]["bytes"]
                    ) / notes
            samples = bus_b["wait_samples"] - bus_a["wait_samples"]
            if samples > 0:
                # Per state and wait event: how many of the server's backends were in it, on
                # average over the samples (their sum: the average number of backends).
                out["server_backends"] = {
                    key: round((count - bus_a["waits"].get(key, 0)) / samples, 3)
                    for key, count in sorted(bus_b["waits"].items(), key=lambda kv: -kv[1])
                    if count - bus_a["waits"].get(key, 0)
                }
        machine_a, machine_b = first["machine"], last["machine"]
        if machine_a and machine_b and machine_b[1] > machine_a[1]:
            cores = os.cpu_count() or 1
            busy = (machine_b[0] - machine_a[0]) / (machine_b[1] - machine_a[1]) * 100.0 * cores
            cpu["machine_busy"] = busy
            known = sum(
                value
                for key in ("workers_total", "harness", "postgres_bench", "bench_helpers")
                if (value := cpu.get(key)) is not None
            )
            cpu["everything_else"] = max(0.0, busy - known)
        return out


# --- the bench: a server, its accounts, its games -------------------------------------------------


class Bench:
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
        from aiotutorial.db import dsn_from_url

        self.counter = await BusCounter(dsn_from_url(self.ctx.database_url), self.app, mine).start()
        backend = self.counter.info.get("backend_pid")
        if backend:  # None when the database is on another machine (no /proc of it here)
            self.postmaster = _ppid(backend)
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
        for _ in range(self.profile.balance_rounds):
            owners = await asyncio.to_thread(
                socket_workers, self.server, [s.local_port() or 0 for s in sockets]
            )
            counts = collections.Counter(owners.get(s.local_port(), 0) for s in sockets)
            for pid in self.server.worker_pids():
                counts.setdefault(pid, 0)
            if len(counts) < 2 or max(counts.values()) - min(counts.values()) <= 1:
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

    # windows

    async def quiet(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """Wait (up to ``timeout``) until the machine's other processes use under QUIET_PCT
        of a core, sampled over half a second while this bench's own load runs, and until no
        backlog is left (at most 2 batches in flight per game): a window must not inherit the
        queue a disturbed one left behind."""
        started = time.monotonic()
        while True:
            first = await self.meter.sample()
            await asyncio.sleep(0.5)
            last = await self.meter.sample()
            others = self.meter.between(first, last)["cpu_pct_of_core"].get("everything_else")
            backlog = sum(game.in_flight() for game in self.games)
            waited = time.monotonic() - started
            calm = others is None or others < QUIET_PCT
            if (calm and backlog <= 2 * len(self.games)) or waited >= timeout:
                return {"waited_s": round(waited, 1), "others_pct": others, "backlog": backlog}

    async def windows(
        self, kinds: list[str], runs: int, measure: Callable[[str], Any]
    ) -> dict[str, list[dict[str, Any]]]:
        """``runs`` windows of each kind (alternating), each after ``quiet``; a window during
        which other processes used over NOISY_PCT of a core is marked ``noisy`` and run
        again, up to ``extra_runs`` times per kind."""
        p = self.profile
        done: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}

        def wanted(kind: str) -> bool:
            clean = sum(1 for run in done[kind] if not run["noisy"])
            return clean < runs and len(done[kind]) < runs + p.extra_runs

        while any(wanted(kind) for kind in kinds):
            for kind in kinds:
                if not wanted(kind):
                    continue
                gate = await self.quiet(p.quiet_timeout) if p.quiet_timeout else None
                result = await measure(kind)
                others = (result.get("cpu_pct_of_core") or {}).get("everything_else")
                result["quiet_gate"] = gate
                result["noisy"] = others is not None and others > NOISY_PCT
                done[kind].append(result)
                self.ctx.say(_line(f"{kind:<7} window {len(done[kind])}", result))
        return done

    async def strokes_window(
        self, duration: float, on_close: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Measure the strokes sent for ``duration`` s, then wait for their deliveries (the
        load keeps flowing meanwhile unless ``on_close`` stops it)."""
        window = Window("strokes")
        before = await self.meter.sample()
        self.window = window
        await asyncio.sleep(duration)
        window.open = False
        if on_close is not None:
            on_close()
        after = await self.meter.sample()
        await self._drain(window)
        self.window = None
        return {**window.summary(), **self.meter.between(before, after)}

    async def _drain(self, window: Window) -> None:
        """Until every delivery of the window's batches arrived, ``drain_timeout`` passed, or
        nothing at all (of any window) arrived for 3 s. A backlog deeper than the timeout
        leaves deliveries counted as undelivered (``lost``): the server is saturated."""
        deadline = time.monotonic() + self.profile.drain_timeout
        last = -1
        progress = time.monotonic()
        while window.delivered < window.expected and time.monotonic() < deadline:
            if self.deliveries != last or any(game.in_flight() for game in self.games):
                last = self.deliveries
                progress = time.monotonic()
            elif time.monotonic() - progress > 3.0:
                break
            await asyncio.sleep(0.05)

    async def chat_window(
        self, sender: GameSocket, receivers: Stats, count_receivers: int, duration: float, tag: str
    ) -> dict[str, Any]:
        """``rate`` chat messages a second for ``duration`` s, timed on arrival."""
        rate = self.profile.rate
        window = Window("chat")
        receivers.reset()
        before = await self.meter.sample()
        self.window = window
        loop = asyncio.get_running_loop()
        count = max(1, round(rate * duration))
        start = loop.time()
        for index in range(count):
            due = start + index / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            window.send_lag.add(max(0.0, loop.time() - due))
            sent = time.time()
            sender.send_message(content(f"{tag}{index}", sent))
            if window.first_sent is None:
                window.first_sent = sent
            window.last_sent = sent
            window.sent += 1
        window.open = False
        after = await self.meter.sample()
        window.expected = count * count_receivers
        deadline = time.monotonic() + self.profile.drain_timeout
        while receivers.deliveries < window.expected and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self.window = None
        window.hist = receivers.histogram
        window.delivered = receivers.deliveries
        window.errors.update({"error frames": receivers.errors} if receivers.errors else {})
        return {**window.summary(), **self.meter.between(before, after)}


def _server_url(database_url: str, app: str) -> str:
    """The server's database URL, its connections named ``app`` (in ``pg_stat_activity``)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url).update_query_dict({"application_name": app})
    return url.render_as_string(hide_password=False)


async def _server(ctx: Context, name: str, workers: int) -> tuple[Server, str]:
    app = f"bench-strokes-{ctx.run_id}-{name}"
    server = app_server(
        f"strokes-{name}",
        _server_url(ctx.database_url, app),
        workers=workers,
        ini=overlay_ini(SETTINGS),
    )
    await asyncio.to_thread(start_all, [server])
    return server, app


def _pick(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    values = [run[key] for run in runs if run.get(key) is not None]
    return {
        key: median(values),
        f"{key}_runs": [round(v, 2) for v in values],
        f"{key}_min": min(values) if values else None,
        f"{key}_max": max(values) if values else None,
    }


def _merge(runs: list[dict[str, Any]]) -> list[list[int]]:
    merged = Histogram()
    for run in runs:
        merged.merge(Histogram.from_sparse(run["hist"]))
    return merged.sparse()


def _summary(every: list[dict[str, Any]]) -> dict[str, Any]:
    """Median (and min, max, every run) of each figure over the runs that were not noisy (all
    of them if every one was); histograms merged."""
    runs = [run for run in every if not run.get("noisy")] or every
    out: dict[str, Any] = {
        "runs": len(runs),
        "runs_noisy_left_out": len(every) - len(runs),
        "noisy": all(run.get("noisy") for run in every),
    }
    for key in ("p50_ms", "p99_ms", "max_ms", "echo_p99_ms", "sent_rate", "loop_lag_p99_ms"):
        out.update(_pick(runs, key))
    out["lost"] = sum(run["lost"] for run in runs)
    out["errors"] = sum(sum(run["errors"].values()) for run in runs)
    out["turn_changes"] = sum(run["turn_changes"] for run in runs)
    flat = []
    for run in runs:
        bus = run.get("bus") or {}
        cpu = run.get("cpu_pct_of_core") or {}
        rate = run.get("sent_rate")

        def per_batch(pct: float | None, rate: float | None = rate) -> float | None:
            # % of a core is 10 ms of CPU a second: ms of CPU per batch (or message) sent.
            return pct * 10.0 / rate if pct is not None and rate else None

        flat.append(
            {
                "worker_ms_per_batch": per_batch(cpu.get("workers_total")),
                "pg_ms_per_batch": per_batch(cpu.get("postgres_bench")),
                "harness_ms_per_batch": per_batch(cpu.get("harness")),
                "notify_per_s": bus.get("notify_per_s"),
                "bench_notify_per_s": bus.get("bench_notify_per_s"),
                "bus_deliveries_per_s": bus.get("deliveries_per_s"),
                "queue_usage": bus.get("queue_usage"),
                "listeners": bus.get("listeners"),
                "pg_cpu": cpu.get("postgres_bench"),
                "pg_total_cpu": cpu.get("postgres_total"),
                "pg_app_cpu": cpu.get("postgres_app_backends"),
                "workers_cpu": cpu.get("workers_total"),
                "harness_cpu": cpu.get("harness"),
                "machine_busy": cpu.get("machine_busy"),
                "others_cpu": cpu.get("everything_else"),
                "load1": (run.get("loadavg") or [None])[0],
            }
        )
    for key in flat[0] if flat else ():
        out.update(_pick(flat, key))
    out["hist"] = _merge(runs)
    return out


def _runs_without_hist(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in run.items() if k != "hist"} for run in runs]


# --- part 1: delivery, strokes against chat -------------------------------------------------------


async def delivery(ctx: Context, p: StrokesProfile) -> dict[str, Any]:
    ctx.say(
        f"  part 1: {p.workers} workers, 1 drawer + {p.watchers} watchers, "
        f"{p.rate} batches/s, then the chat at {p.rate} msg/s"
    )
    server, app = await _server(ctx, f"{p.workers}w", p.workers)
    bench = Bench(ctx, p, server, app, "d")
    try:
        await bench.start()
        users = await bench.register(p.watchers + 1)
        (chat_channel,) = await bench.channels(1)
        chat_stats = Stats()
        chat_sockets = await bench.connect(chat_channel, users, chat_stats, None)
        chat_spread = await bench.balance(chat_sockets, chat_channel)
        sender = chat_sockets[0]
        sender.stats = Stats()  # its own echo is not a member's delivery
        port = sender.local_port() or 0
        sender_worker = (await asyncio.to_thread(socket_workers, server, [port])).get(port)
        games: list[dict[str, Any]] = []
        current: list[GameDriver] = []

        async def new_game(warmup: float) -> GameDriver:
            """A game in a fresh channel (a turn lasts DRAW_SECONDS: a long run needs more
            than one), the sockets spread, drawing for ``warmup`` s unmeasured, then paused."""
            await bench.retire(current)
            (channel,) = await bench.channels(1)
            driver = await bench.new_game(channel, users)
            spread = await bench.balance(driver.sockets, channel)
            await bench.start_games([driver])
            assert driver.drawer is not None
            port = driver.drawer.local_port() or 0
            owners = await asyncio.to_thread(socket_workers, server, [port])
            games.append({"channel": channel, "spread": spread, "drawer_worker": owners.get(port)})
            ctx.say(
                f"    game {len(games)}: sockets per worker {spread}, drawer on "
                f"{games[-1]['drawer_worker']}; chat: {chat_spread}, sender on {sender_worker}"
            )
            current[:] = [driver]
            await asyncio.sleep(warmup)
            driver.paused = True
            return driver

        # Warm-up: strokes, then chat, neither measured.
        await new_game(p.warmup)
        await asyncio.sleep(0.5)
        await bench.chat_window(sender, chat_stats, p.watchers, p.warmup, "warm")
        numbers = collections.Counter[str]()

        async def measure(kind: str) -> dict[str, Any]:
            numbers[kind] += 1
            if kind == "strokes":
                driver = current[0]
                if driver.turn_age() + p.duration + p.drain_timeout + 20 > DRAW_SECONDS:
                    driver = await new_game(1.0)
                driver.paused = False
                result = await bench.strokes_window(p.duration, on_close=driver.pause)
            else:
                result = await bench.chat_window(
                    sender, chat_stats, p.watchers, p.duration, f"r{numbers[kind]}c"
                )
            return result

        done = await bench.windows(["strokes", "chat"], p.runs, measure)
        strokes_runs, chat_runs = done["strokes"], done["chat"]
        await bench.retire(current)
        return {
            "status": "ok",
            "what": (
                f"one game, 1 drawer + {p.watchers} watchers on {p.workers} workers, "
                f"{p.rate} batches/s of a ~{p.points}-point 'more' op; the chat at the same "
                f"rate, 1 sender and {p.watchers} members, in another channel"
            ),
            "workers": p.workers,
            "watchers": p.watchers,
            "rate": p.rate,
            "sample_batch": {"type": "game.draw", "ops": Scribble(random.Random(1), 10).ops()},
            "spread": {
                "game": games[0]["spread"],
                "chat": chat_spread,
                "drawer_worker": games[0]["drawer_worker"],
                "chat_sender_worker": sender_worker,
            },
            "games": games,
            "unmatched_frames": bench.unmatched,
            "seq_shifts": bench.seq_shifts,
            "strokes": {**_summary(strokes_runs), "every_run": _runs_without_hist(strokes_runs)},
            "chat": {**_summary(chat_runs), "every_run": _runs_without_hist(chat_runs)},
        }
    finally:
        await bench.stop()
        await asyncio.to_thread(stop_all, [server])


def _line(label: str, run: dict[str, Any]) -> str:
    bus = run.get("bus") or {}
    cpu = run.get("cpu_pct_of_core") or {}
    return (
        f"    {label}: p50 {_fmt(run['p50_ms'])} ms, p99 {_fmt(run['p99_ms'])} ms, "
        f"{run['delivered']}/{run['expected']} delivered, sent {_fmt(run['sent_rate'])}/s; "
        f"NOTIFY {_fmt(bus.get('notify_per_s'), 0)}/s; CPU % of a core: workers "
        f"{_fmt(cpu.get('workers_total'), 0)}, postgres {_fmt(cpu.get('postgres_bench'), 0)}, "
        f"harness {_fmt(cpu.get('harness'), 0)}, else {_fmt(cpu.get('everything_else'), 0)}; "
        f"load {_fmt((run.get('loadavg') or [None])[0], 2)}; loop lag p99 "
        f"{_fmt(run['loop_lag_p99_ms'])} ms"
        + (f"; errors {run['errors']}" if run["errors"] else "")
        + ("; NOISY (left out)" if run.get("noisy") else "")
    )


# --- part 2: capacity, games per worker -----------------------------------------------------------


async def capacity(ctx: Context, p: StrokesProfile) -> dict[str, Any]:
    ctx.say(
        f"  part 2: 1 worker, games of {p.players} players at {p.rate} batches/s each, "
        f"steps {list(p.games)} until p99 >= {p.threshold_ms:g} ms"
    )
    server, app = await _server(ctx, "1w", 1)
    bench = Bench(ctx, p, server, app, "g")
    steps: list[dict[str, Any]] = []
    best: int | None = None
    stopped = "every step ran"
    try:
        await bench.start()
        for games in p.games:
            # Fresh games at each step (the last step's are closed), so that no turn runs out
            # of its DRAW_SECONDS during a step; the accounts are reused.
            started = time.monotonic()
            await bench.retire(list(bench.games))
            users = await bench.accounts_for(games * p.players)
            channels = await bench.channels(games)
            drivers = []
            for number, channel in enumerate(channels):
                seats = users[number * p.players : (number + 1) * p.players]
                drivers.append(await bench.new_game(channel, seats))
            await bench.start_games(drivers)
            setup = time.monotonic() - started
            await asyncio.sleep(p.cap_warmup)

            async def measure(kind: str) -> dict[str, Any]:
                return await bench.strokes_window(p.cap_duration)

            runs = (await bench.windows(["strokes"], p.cap_runs, measure))["strokes"]
            step = {
                "games": games,
                "sockets": games * p.players,
                "setup_seconds": setup,
                **_summary(runs),
                "every_run": _runs_without_hist(runs),
            }
            steps.append(step)
            ctx.say(
                f"    {games:>3} games: p99 {_fmt(step['p99_ms'])} ms "
                f"(runs {step['p99_ms_runs']}), p50 {_fmt(step['p50_ms'])} ms, "
                f"NOTIFY {_fmt(step['notify_per_s'], 0)}/s, CPU % of a core: worker "
                f"{_fmt(step['workers_cpu'], 0)}, postgres {_fmt(step['pg_cpu'], 0)}, "
                f"harness {_fmt(step['harness_cpu'], 0)}, else {_fmt(step['others_cpu'], 0)}; "
                f"load {_fmt(step['load1'], 2)}, lost {step['lost']}, errors {step['errors']}"
            )
            ok = (
                step["p99_ms"] is not None
                and step["p99_ms"] < p.threshold_ms
                and step["lost"] == 0
                and step["errors"] == 0
            )
            if not ok:
                stopped = (
                    f"{games} games: p99 {_fmt(step['p99_ms'])} ms"
                    + (f", {step['lost']} deliveries lost" if step["lost"] else "")
                    + (f", {step['errors']} errors" if step["errors"] else "")
                    + (" (every window disturbed by other processes)" if step["noisy"] else "")
                )
                break
            best = games
        return {
            "status": "ok",
            "what": (
                f"games of {p.players} players (1 drawer at {p.rate} batches/s, "
                f"{p.players - 1} watchers) on 1 worker; fresh games at each step"
            ),
            "players": p.players,
            "rate": p.rate,
            "threshold_ms": p.threshold_ms,
            "max_games_under_threshold": best,
            "stopped": stopped,
            "unmatched_frames": bench.unmatched + sum(d.unmatched for d in bench.games),
            "seq_shifts": bench.seq_shifts
            + sum(s.shifted for d in bench.games for s in d.all_sessions()),
            "steps": steps,
        }
    finally:
        await bench.stop()
        await asyncio.to_thread(stop_all, [server])


# --- the scenario ---------------------------------------------------------------------------------


async def run(ctx: Context) -> dict[str, Any]:
    """Scenario 6: its raw numbers; its rows go into ``ctx.rows``."""
    p = PROFILES[ctx.profile.name]
    out: dict[str, Any] = {"status": "ok", "profile": asdict(p), "settings": SETTINGS}
    for part, function in (("delivery", delivery), ("capacity", capacity)):
        try:
            out[part] = await function(ctx, p)
        except Exception as exc:  # noqa: BLE001 - recorded; the other part still runs
            import traceback

            out[part] = {
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-4000:],
            }
            out["status"] = "failed"
            out["error"] = f"{part}: {type(exc).__name__}: {exc}"
            ctx.say(f"  strokes {part} failed: {exc}")
    out["figures"] = _figures(out)
    _rows(ctx, out, p)
    return out


def _figures(out: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    part1 = out.get("delivery", {})
    if part1.get("status") == "ok":
        for kind in ("strokes", "chat"):
            for key in ("p50_ms", "p99_ms", "notify_per_s", "pg_cpu", "workers_cpu"):
                figures[f"{kind}_{key}"] = part1[kind][key]
    part2 = out.get("capacity", {})
    if part2.get("status") == "ok":
        figures["max_games"] = part2["max_games_under_threshold"]
        for step in part2["steps"]:
            figures[f"p99_ms_{step['games']}_games"] = step["p99_ms"]
        last = _last_ok_step(part2)
        if last is not None:
            figures["notify_per_s_at_max"] = last["notify_per_s"]
            figures["pg_cpu_at_max"] = last["pg_cpu"]
            figures["worker_cpu_at_max"] = last["workers_cpu"]
    return figures


def _last_ok_step(part2: dict[str, Any]) -> dict[str, Any] | None:
    best = part2.get("max_games_under_threshold")
    return next((s for s in part2.get("steps", []) if s["games"] == best), None)


def _rows(ctx: Context, out: dict[str, Any], p: StrokesProfile) -> None:
    part1 = out.get("delivery", {})
    if part1.get("status") == "ok":
        strokes, chat = part1["strokes"], part1["chat"]
        where = f"{p.rate}/s, {p.watchers} watchers, {p.workers}w"
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
            ctx.row(
                SCENARIO,
                f"stroke {label} ms ({where})",
                strokes[key],
                "ms",
                f"chat {p.rate} msg/s",
                chat[key],
            )
        ctx.row(
            SCENARIO,
            f"bus NOTIFY/s ({where})",
            strokes["notify_per_s"],
            "/s",
            "chat",
            chat["notify_per_s"],
        )
        ctx.row(
            SCENARIO,
            f"postgres CPU % of a core ({where})",
            strokes["pg_cpu"],
            "%",
            "chat",
            chat["pg_cpu"],
        )
    part2 = out.get("capacity", {})
    if part2.get("status") == "ok":
        for step in part2["steps"]:
            ctx.row(
                SCENARIO,
                f"stroke p99 ms, {step['games']} games x {p.players} (1w)",
                step["p99_ms"],
                "ms",
            )
        best = part2["max_games_under_threshold"]
        ctx.row(
            SCENARIO,
            f"games per worker, p99 < {p.threshold_ms:g} ms",
            best,
            "games",
        )
        last = _last_ok_step(part2)
        if last is not None:
            ctx.row(SCENARIO, f"bus NOTIFY/s at {best} games (1w)", last["notify_per_s"], "/s")
            ctx.row(SCENARIO, f"postgres CPU % of a core at {best} games", last["pg_cpu"], "%")


def _kept(item: dict[str, Any]) -> str:
    total = item["runs"] + item["runs_noisy_left_out"]
    return f"{item['runs']}/{total}" + ("!" if item["noisy"] else "")


def tables(result: dict[str, Any]) -> str:
    """The scenario's own tables (printed after the main one): every step and window."""
    lines: list[str] = []

    drain = (result.get("profile") or {}).get("drain_timeout")

    def spread(item: dict[str, Any], key: str) -> str:
        low, high = item.get(f"{key}_min"), item.get(f"{key}_max")
        if low is None:
            # Nothing arrived within the drain: later than that, if it ever does.
            return f"> {drain:g} s" if item.get("lost") and drain else "n/a"
        return f"{_fmt(item[key])} [{_fmt(low)}-{_fmt(high)}]"

    part1 = result.get("delivery", {})
    if part1.get("status") == "ok":
        lines.append(
            f"strokes vs chat, {part1['rate']}/s to {part1['watchers']} sockets on "
            f"{part1['workers']} workers (spread {part1['spread']['game']}); "
            "median [min-max] of the runs"
        )
        header = (
            f"  {'kind':<8} {'p50 ms':>18} {'p99 ms':>18} {'NOTIFY/s':>9} {'bus deliv/s':>11} "
            f"{'pg%':>5} {'pg all%':>7} {'worker%':>7} {'harn%':>6} {'else%':>6} {'load1':>6} "
            f"{'lost':>5} {'kept':>5}"
        )
        lines.append(header)
        for kind in ("strokes", "chat"):
            s = part1[kind]
            lines.append(
                f"  {kind:<8} {spread(s, 'p50_ms'):>18} {spread(s, 'p99_ms'):>18} "
                f"{_fmt(s['notify_per_s'], 0):>9} {_fmt(s['bus_deliveries_per_s'], 0):>11} "
                f"{_fmt(s['pg_cpu'], 0):>5} {_fmt(s['pg_total_cpu'], 0):>7} "
                f"{_fmt(s['workers_cpu'], 0):>7} "
                f"{_fmt(s['harness_cpu'], 0):>6} {_fmt(s['others_cpu'], 0):>6} "
                f"{_fmt(s['load1'], 2):>6} {s['lost']:>5} {_kept(s):>5}"
            )
    part2 = result.get("capacity", {})
    if part2.get("status") == "ok":
        if lines:
            lines.append("")
        lines.append(
            f"games per worker ({part2['players']} players, {part2['rate']} batches/s each): "
            f"{part2['max_games_under_threshold']} under {part2['threshold_ms']:g} ms p99 "
            f"(stopped: {part2['stopped']})"
        )
        lines.append(
            f"  {'games':>5} {'p50 ms':>18} {'p99 ms':>22} {'NOTIFY/s':>9} {'bus deliv/s':>11} "
            f"{'queue':>7} {'pg%':>5} {'pg all%':>7} {'worker%':>7} {'harn%':>6} {'else%':>6} "
            f"{'load1':>6} {'lost':>5} {'kept':>5} {'ms CPU/batch: worker pg harness':>31}"
        )
        for step in part2["steps"]:
            queue = step.get("queue_usage")
            lines.append(
                f"  {step['games']:>5} {spread(step, 'p50_ms'):>18} "
                f"{spread(step, 'p99_ms'):>22} {_fmt(step['notify_per_s'], 0):>9} "
                f"{_fmt(step['bus_deliveries_per_s'], 0):>11} "
                f"{'n/a' if queue is None else f'{queue:.1e}':>7} "
                f"{_fmt(step['pg_cpu'], 0):>5} {_fmt(step['pg_total_cpu'], 0):>7} "
                f"{_fmt(step['workers_cpu'], 0):>7} "
                f"{_fmt(step['harness_cpu'], 0):>6} {_fmt(step['others_cpu'], 0):>6} "
                f"{_fmt(step['load1'], 2):>6} {step['lost']:>5} {_kept(step):>5} "
                f"{_fmt(step['worker_ms_per_batch'], 2):>17} {_fmt(step['pg_ms_per_batch'], 2):>5} "
                f"{_fmt(step['harness_ms_per_batch'], 2):>7}"
            )
    if lines:
        lines.append(
            "  CPU in % of one core (200 % = both): pg = PostgreSQL for this bench (the cluster "
            "less other clients' backends), pg all = the whole cluster; else = the machine's "
            "busy time minus the server, this bench's PostgreSQL share and the harness (other "
            "processes); kept = windows kept of those run (a window is left out when else passed "
            f"{NOISY_PCT:g} %; ! = every one did, all kept); median [min-max] of those kept"
        )
    return "\n".join(lines)


def cleanup(ctx: Context) -> dict[str, Any]:
    """Delete the games of this run's channels (before ``scenarios.cleanup`` deletes the
    channels and users themselves, which the game's rows refer to)."""
    import psycopg2

    from aiotutorial.db import dsn_from_url

    channels, users = list(ctx.channels), list(ctx.users)
    done: dict[str, Any] = {}
    if not channels and not users:
        return done
    try:
        connection = psycopg2.connect(dsn_from_url(ctx.database_url))
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute("DELETE FROM game_state WHERE channel = ANY(%s)", (channels,))
                cursor.execute(
                    "DELETE FROM scores WHERE game IN "
                    '(SELECT id FROM games WHERE channel = ANY(%s)) OR "user" = ANY(%s)',
                    (channels, users),
                )
                # Cascades to the inbox, the turns and their strokes.
                cursor.execute("DELETE FROM games WHERE channel = ANY(%s)", (channels,))
                done["games"] = cursor.rowcount
                cursor.execute(
                    'DELETE FROM channel_player_totals WHERE channel = ANY(%s) OR "user" = ANY(%s)',
                    (channels, users),
                )
                cursor.execute('DELETE FROM player_totals WHERE "user" = ANY(%s)', (users,))
        finally:
            connection.close()
    except psycopg2.Error as exc:
        done["error"] = str(exc)
    return done


# --- py-spy on the worker under N games -----------------------------------------------------------


def _record(pid: int, seconds: int, out: Path, gil: bool) -> Any:
    """py-spy on ``pid`` (as bench/profile.py does), without pausing it for each sample;
    ``gil``: only samples holding the GIL (the CPU the worker's Python code uses, not its
    waits in system calls while other processes have the cores)."""
    import shutil
    import subprocess

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "200", "-f", "raw"]
    argv += ["--nonblocking", *(["--gil"] if gil else []), "-o", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def _profile(ctx: Context, games: int, seconds: int, out: Path, gil: bool) -> None:
    p = PROFILES["quick"]
    server, app = await _server(ctx, "profile", 1)
    bench = Bench(ctx, p, server, app, "p")
    try:
        await bench.start()
        users = await bench.register(games * p.players)
        channels = await bench.channels(games)
        drivers = [
            await bench.new_game(channel, users[i * p.players : (i + 1) * p.players])
            for i, channel in enumerate(channels)
        ]
        await bench.start_games(drivers)
        await asyncio.sleep(2.0)
        await bench.quiet(10.0)
        spy = _record(server.worker_pids()[0], seconds, out, gil)
        result = await bench.strokes_window(seconds)
        await asyncio.to_thread(spy.wait, seconds + 60)
        print(_line(f"{games} games under py-spy", result))
        print(
            f"    the server's backends (average count by state): {result.get('server_backends')}"
        )
        if spy.returncode:
            print(f"py-spy failed: {spy.stderr.read().decode() if spy.stderr else ''}")
    finally:
        await bench.stop()
        await asyncio.to_thread(stop_all, [server])


def _capacity_main(ctx: Context, args: argparse.Namespace) -> None:
    import dataclasses

    from . import scenarios

    p = PROFILES[args.profile]
    changes: dict[str, Any] = {}
    if args.games:
        changes["games"] = tuple(int(n) for n in args.games.split(","))
    if args.runs:
        changes["cap_runs"] = args.runs
    if args.duration:
        changes["cap_duration"] = args.duration
    p = dataclasses.replace(p, **changes)
    started = time.monotonic()
    ctx.say = lambda text: print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)
    result: dict[str, Any] = {}
    try:
        result["capacity"] = asyncio.run(capacity(ctx, p))
    finally:
        stop_all()
        cleanup(ctx)
        scenarios.cleanup(ctx)
    print()
    print(tables(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Scenario 6's helpers (see the docstring).")
    commands = parser.add_subparsers(dest="command", required=True)
    listen = commands.add_parser("listen", help="count NOTIFY traffic (the harness starts it)")
    listen.add_argument("--dsn", required=True)
    listen.add_argument("--app", required=True)
    listen.add_argument("--mine", required=True)
    profile = commands.add_parser("profile", help="py-spy on one worker under N games")
    profile.add_argument("--games", type=int, default=8)
    profile.add_argument("--seconds", type=int, default=10)
    profile.add_argument("--top", type=int, default=25)
    profile.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    part2 = commands.add_parser("capacity", help="part 2 alone, with other steps or options")
    part2.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    part2.add_argument("--games", help="comma-separated steps (default: the profile's)")
    part2.add_argument("--runs", type=int, help="windows per step")
    part2.add_argument("--duration", type=float, help="seconds per window")
    part2.add_argument("--out", type=Path, help="write the raw numbers (JSON) there")
    args = parser.parse_args(argv)
    if args.command == "listen":
        listen_main(args)
        return
    from aiotutorial.pgcluster import default_database_url

    from . import scenarios
    from .common import RESULTS_DIR, raise_nofile
    from .profile import summarise

    raise_nofile()
    url = os.environ.get("DATABASE_URL") or default_database_url()
    ctx = Context(profile=scenarios.PROFILES["quick"], database_url=url, generator="")
    if args.command == "capacity":
        _capacity_main(ctx, args)
        return
    out = RESULTS_DIR / f"profile-strokes-{args.games}{'-gil' if args.gil else ''}.txt"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(_profile(ctx, args.games, args.seconds, out, args.gil))
    finally:
        stop_all()
        cleanup(ctx)
        scenarios.cleanup(ctx)
    print(f"collapsed stacks: {out}\n")
    print(summarise(out, args.top))


if __name__ == "__main__":
    main()
