"""The soak's run: set everything up, post under faults, catch up, check, clean up.

``run_soak(config)`` returns a ``SoakResult`` (``.passed``, ``.report()``); whatever happens,
everything it started is stopped and its temporary directory removed before it returns or
raises: the clients, both instances (every generation), the throwaway cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.chatclient import ChatClient
from harness.cluster import ThrowawayCluster
from harness.gunicorn import write_ini
from harness.instance import Instance
from harness.redis import RedisServer

from .checks import Fault, SoakResult, check_client, first_arrivals, recovery_time
from .clients import HttpLog, Poster, SoakSocket, User, now
from .fuzz import Fuzzer
from .servers import FINAL_STOP_TIMEOUT, STOP_TIMEOUT, LogScan, kill, scan_log

__all__ = ["BUSES", "FAULT_KINDS", "REDIS_FAULT_KINDS", "SoakConfig", "run_soak"]

KILL_WORKER = "kill -9 worker of A"
RESTART_POSTGRESQL = "restart PostgreSQL"
RESTART_B = "restart instance B"
FUZZ_BURST = "fuzz burst"
KILL_REDIS = "kill -9 Redis"
FAULT_KINDS = (KILL_WORKER, RESTART_POSTGRESQL, RESTART_B, FUZZ_BURST)
# With the Redis bus (--bus redis), Redis is killed too.
REDIS_FAULT_KINDS = (*FAULT_KINDS, KILL_REDIS)
BUSES = ("postgresql", "redis")

# The app's settings for the run: registrations, and chat rates well over the load.
APP_SETTINGS = {
    "security.register_attempts": "100000",
    "chat.rate_per_second": "1000",
    "chat.rate_burst": "1000",
}


def say(message: str) -> None:
    print(f"soak: {message}", flush=True)


@dataclass
class SoakConfig:
    duration: float = 180.0  # seconds of posting
    clients: int = 24
    rate: float = 10.0
    faults: list[tuple[float, str]] = field(default_factory=list)  # (seconds in, kind)
    fuzz_interval: float = 1.0  # background fuzz: one case about this often
    fuzz_sockets: int = 2
    postgresql_down: float = 2.0  # seconds the database stays stopped
    bus: str = "postgresql"  # or "redis": a redis-server of the run's own, killed among the faults
    redis_down: float = 2.0  # seconds Redis stays dead after its kill -9
    logs_dir: Path | None = None  # keep the logs and the report there (None: removed)
    verbose: bool = True

    @classmethod
    def for_minutes(cls, minutes: float = 3.0, **kwargs: Any) -> SoakConfig:
        """A fault every 15 s, in turn, from 8 s in until 12 s before the end."""
        duration = minutes * 60
        kinds = REDIS_FAULT_KINDS if kwargs.get("bus") == "redis" else FAULT_KINDS
        times = itertools.takewhile(lambda t: t + 12 <= duration, itertools.count(8.0, 15.0))
        faults = [(t, kinds[i % len(kinds)]) for i, t in enumerate(times)]
        return cls(duration=duration, faults=faults, **kwargs)

    @classmethod
    def quick(cls, **kwargs: Any) -> SoakConfig:
        """About 40 s in all: one fault of each kind in 30 s of posting (36 s with Redis)."""
        faults = [
            (3.0, KILL_WORKER),
            (9.0, RESTART_POSTGRESQL),
            (16.0, RESTART_B),
            (25.0, FUZZ_BURST),
        ]
        if kwargs.get("bus") == "redis":
            faults.insert(3, (22.0, KILL_REDIS))
            faults[-1] = (29.0, FUZZ_BURST)
            return cls(duration=36.0, faults=faults, **kwargs)
        return cls(duration=30.0, faults=faults, **kwargs)


async def run_soak(config: SoakConfig) -> SoakResult:
    soak = _Soak(config)
    try:
        return await soak.run()
    finally:
        await soak.cleanup()


class _Soak:
    def __init__(self, config: SoakConfig) -> None:
        self.config = config
        self.stack = contextlib.AsyncExitStack()
        self.http_log = HttpLog()
        self.faults: list[Fault] = []
        self.sockets: list[SoakSocket] = []
        self.fuzz_sockets: list[SoakSocket] = []
        self.users: list[User] = []
        self.run_id = secrets.token_hex(3)
        self.posting_ended = 0.0

    def say(self, message: str) -> None:
        if self.config.verbose:
            say(message)

    async def cleanup(self) -> None:
        await self.stack.aclose()

    # --- setup ----------------------------------------------------------------------------

    async def setup(self) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="aiotutorial-soak-"))
        self.stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        self.tmp = tmp
        if self.config.logs_dir is not None:
            self.logs_dir = self.config.logs_dir
            self.logs_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.logs_dir = tmp / "logs"
            self.logs_dir.mkdir()
        self.db = ThrowawayCluster(prefix="pg-", parent=tmp)
        self.stack.callback(self.db.destroy)
        self.say(f"a throwaway PostgreSQL cluster in {tmp}: initdb, start, migrate")
        await asyncio.to_thread(self.db.create)
        ini = write_ini(tmp / "soak.ini", APP_SETTINGS)
        env = {
            "DATABASE_URL": self.db.url,
            "AIOTUTORIAL_SECRET": "soak-" + secrets.token_hex(32),
            "BUS_URL": "postgresql",
        }
        self.redis: RedisServer | None = None
        if self.config.bus == "redis":
            self.redis = RedisServer("soak-redis", directory=tmp)
            self.stack.callback(self.redis.stop)
            self.say(f"a Redis of its own for the bus, on port {self.redis.port}")
            await asyncio.to_thread(self.redis.start)
            env["BUS_URL"] = self.redis.redis_url
        options: dict[str, Any] = {"logs_dir": self.logs_dir, "start_timeout": 60.0}
        self.a = Instance("a", ini, 2, env, stop_timeout=STOP_TIMEOUT, **options)
        self.b = Instance("b", ini, 1, env, stop_timeout=STOP_TIMEOUT, **options)
        self.stack.callback(self.b.stop_all, FINAL_STOP_TIMEOUT)
        self.stack.callback(self.a.stop_all, FINAL_STOP_TIMEOUT)
        self.say("starting instance A (2 workers) and B (1 worker)")
        await asyncio.gather(asyncio.to_thread(self.a.start), asyncio.to_thread(self.b.start))
        await self.a.wait_for_workers()

        # Users: about two thirds of the clients, so a third of the users have two sockets.
        count = self.config.clients
        user_count = max(2, (count * 2 + 2) // 3)
        fuzz_users = max(1, min(2, self.config.fuzz_sockets))
        self.say(f"registering {user_count + fuzz_users} users")
        for _ in range(user_count + fuzz_users):
            client = ChatClient(self.a.url(""))
            self.stack.push_async_callback(client.close)
            await client.register()
            self.users.append(User(client))
        checked_users, fuzzers = self.users[:user_count], self.users[user_count:]
        self.channel = await checked_users[0].client.new_channel()

        ports = {"a": self.a.bound_port, "b": self.b.bound_port}
        for i in range(count):
            server = "b" if i % 3 == 2 else "a"
            user = checked_users[i % user_count]
            sock = SoakSocket(f"{server}/{i:02d}", user, ports[server], self.channel, self.http_log)
            self.sockets.append(sock)
        for i in range(self.config.fuzz_sockets):
            server = "b" if i % 2 else "a"
            user = fuzzers[i % len(fuzzers)]
            sock = SoakSocket(
                f"{server}/fz{i}", user, ports[server], self.channel, self.http_log, checked=False
            )
            self.fuzz_sockets.append(sock)
        for sock in self.sockets + self.fuzz_sockets:
            self.stack.push_async_callback(sock.stop)
            sock.start()
        self.fuzzer = Fuzzer(
            lambda: [p for p in (self.a.port, self.b.port) if p],
            fuzzers,
            self.fuzz_sockets,
            self.channel,
            self.http_log,
        )
        live = await asyncio.gather(*(s.wait_live(30) for s in self.sockets + self.fuzz_sockets))
        if not all(live):
            raise RuntimeError("not every client connected within 30 s")

    # --- faults ---------------------------------------------------------------------------

    async def sockets_by_pid(self) -> dict[int, int]:
        """Open sockets in the channel per worker pid, from the ``presence`` table."""
        query = "SELECT worker, sum(connections) FROM presence WHERE channel = %s GROUP BY worker"
        try:
            rows = await asyncio.to_thread(self.db.query, query, (self.channel,))
        except Exception:  # noqa: BLE001 - only a preference: any worker will do
            return {}
        # A hub's worker id is "host:pid:random".
        return {int(worker.rsplit(":", 2)[1]): int(count) for worker, count in rows}

    async def kill_worker(self, fault: Fault) -> None:
        """``kill -9`` the worker of A that serves the most sockets of the channel."""
        pids = await self.a.wait_for_workers()
        load = await self.sockets_by_pid()
        pid = max(pids, key=lambda candidate: load.get(candidate, 0))
        kill(pid)
        fault.done = now()
        fault.detail = (
            f"worker {pid} of A, serving {load.get(pid, 0)} sockets; gunicorn boots another"
        )

    async def restart_postgresql(self, fault: Fault) -> None:
        await asyncio.to_thread(self.db.stop, "fast")
        stopped = now()
        # Requests while it is down, on both instances: the documented 503, not a 500.
        await self.fuzzer.while_database_down()
        await asyncio.sleep(max(0.0, stopped + self.config.postgresql_down - now()))
        await asyncio.to_thread(self.db.start)
        fault.done = now()
        fault.down = (fault.started, fault.done)
        down = self.config.postgresql_down
        fault.detail = (
            f"pg_ctl stop -m fast took {stopped - fault.started:.2f} s, down {down:g} s, "
            f"start took {fault.done - stopped - down:.2f} s"
        )

    async def restart_b(self, fault: Fault) -> None:
        status = await asyncio.to_thread(self.b.stop, signal.SIGTERM)
        stopped = now()
        await asyncio.to_thread(self.b.start)
        fault.done = now()
        fault.detail = (
            f"SIGTERM, exit status {status} after {stopped - fault.started:.2f} s, "
            f"answering again on port {self.b.port} after {fault.done - stopped:.2f} s"
        )

    async def kill_redis(self, fault: Fault) -> None:
        """``kill -9`` of redis-server (every worker's subscriptions and publishes fail), dead
        for ``redis_down`` seconds, then started again on its port, empty."""
        assert self.redis is not None
        await asyncio.to_thread(self.redis.kill)
        killed = now()
        await asyncio.sleep(self.config.redis_down)
        await asyncio.to_thread(self.redis.restart)
        fault.done = now()
        down = self.config.redis_down
        fault.detail = f"dead {down:g} s, started again in {fault.done - killed - down:.2f} s"

    async def fuzz_burst(self, fault: Fault) -> None:
        before = sum(self.fuzzer.sent.values())
        await self.fuzzer.burst()
        fault.done = now()
        fault.detail = f"{sum(self.fuzzer.sent.values()) - before} malformed requests and frames"

    async def run_faults(self, start: float) -> None:
        actions = {
            KILL_WORKER: self.kill_worker,
            RESTART_POSTGRESQL: self.restart_postgresql,
            RESTART_B: self.restart_b,
            FUZZ_BURST: self.fuzz_burst,
            KILL_REDIS: self.kill_redis,
        }
        for offset, kind in self.config.faults:
            await asyncio.sleep(max(0.0, start + offset - now()))
            fault = Fault(kind, now())
            self.faults.append(fault)
            self.say(f"t={fault.started - start:5.1f} {kind}")
            try:
                await actions[kind](fault)
            except Exception as exc:  # noqa: BLE001 - reported as the fault's failure
                fault.error = f"{type(exc).__name__}: {exc}"
                self.say(f"  failed: {fault.error}")
        # Leave nothing half-restarted: the database and B up, whatever happened.
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.db.start)
        if not self.b.is_running():
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.b.start)
        if self.redis is not None and not self.redis.is_running():
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.redis.restart)

    # --- the run --------------------------------------------------------------------------

    async def run(self) -> SoakResult:
        began = now()
        await self.setup()
        setup_seconds = now() - began
        config = self.config
        self.say(
            f"posting {config.rate:g} msg/s for {config.duration:g} s from {len(self.sockets)} "
            f"clients in #{self.channel}, {len(config.faults)} faults"
        )
        start = now()
        until = start + config.duration
        poster = Poster(self.sockets, config.rate, self.run_id)
        background = asyncio.ensure_future(self.fuzzer.background(until, config.fuzz_interval))
        faults = asyncio.ensure_future(self.run_faults(start))
        try:
            await poster.run(until)
            self.posting_ended = now()
            self.say("posting stopped; waiting for the last answers")
            await poster.drain()
            await faults
        finally:
            background.cancel()
            faults.cancel()
            await asyncio.gather(background, faults, return_exceptions=True)

        # Every client live again, then the truth, then every live socket up to date.
        live = await asyncio.gather(*(s.wait_live(60) for s in self.sockets))
        not_live = [s.name for s, ok in zip(self.sockets, live, strict=True) if not ok]
        truth = await self.read_truth()
        last = max(truth, default=0)
        stalled = await self.wait_for_id(last, 20.0)

        self.say("final catch-up: every client reconnects with after= its highest id")
        await asyncio.gather(*(sock.stop() for sock in self.fuzz_sockets + self.sockets))
        caught_up = await asyncio.gather(*(s.final_catch_up() for s in self.sockets))
        not_live += [s.name for s, ok in zip(self.sockets, caught_up, strict=True) if not ok]
        truth = await self.read_truth()

        # Stop the servers now, so that what they log on the way out is read too.
        await asyncio.gather(
            asyncio.to_thread(self.a.stop_all, FINAL_STOP_TIMEOUT),
            asyncio.to_thread(self.b.stop_all, FINAL_STOP_TIMEOUT),
        )
        logs = LogScan()
        for path in self.a.logs + self.b.logs:
            logs.merge(scan_log(path))
        with contextlib.suppress(OSError):
            shutil.copyfile(self.db.log_file, self.logs_dir / "postgresql.log")

        result = self.conclude(poster, truth, logs, start, stalled, not_live)
        result.setup_seconds = setup_seconds
        result.total_seconds = now() - began
        if config.logs_dir is not None:
            result.logs_dir = str(config.logs_dir)
            (config.logs_dir / "report.txt").write_text(result.report() + "\n")
            (config.logs_dir / "report.json").write_text(
                json.dumps(result.summary(), indent=1) + "\n"
            )
        return result

    async def read_truth(self) -> dict[int, str]:
        query = "SELECT id, content FROM messages WHERE channel = %s ORDER BY id"
        for attempt in range(20):
            try:
                rows = await asyncio.to_thread(self.db.query, query, (self.channel,))
                return {row[0]: row[1] for row in rows}
            except Exception:
                if attempt == 19:
                    raise
                await asyncio.sleep(1)
        raise AssertionError("unreachable")

    async def wait_for_id(self, last: int, timeout: float) -> list[str]:  # noqa: ASYNC109
        """Wait until every client has ``last``; the names of those that have not."""
        deadline = now() + timeout
        while now() < deadline:
            if all(s.max_id >= last for s in self.sockets):
                return []
            await asyncio.sleep(0.1)
        return [s.name for s in self.sockets if s.max_id < last]

    def conclude(
        self,
        poster: Poster,
        truth: dict[int, str],
        logs: LogScan,
        start: float,
        stalled: list[str],
        not_live: list[str],
    ) -> SoakResult:
        messages = sorted(poster.messages, key=lambda m: m.seq)
        acked_ids = {m.id for m in messages if m.acked and m.id is not None}
        config = self.config
        result = SoakResult(
            config={
                "duration": config.duration,
                "rate": config.rate,
                "clients": config.clients,
                "users": len({s.user.name for s in self.sockets}),
                "on_a": sum(1 for s in self.sockets if s.server == "a"),
                "on_b": sum(1 for s in self.sockets if s.server == "b"),
                "fuzz_sockets": len(self.fuzz_sockets),
                "faults": [[offset, kind] for offset, kind in config.faults],
            },
            clients=[check_client(s, truth, acked_ids, start) for s in self.sockets],
            messages=messages,
            truth=truth,
            faults=self.faults,
            http=self.http_log,
            logs=logs,
            skipped_ticks=poster.skipped,
            send_failed=poster.send_failed,
            stalled_clients=stalled,
            not_live_at_end=sorted(set(not_live)),
            t0=start,
        )
        committed = result.committed_tokens()
        result.server_duplicates = sorted(t for t, n in committed.items() if n > 1)
        result.foreign_messages = len(truth) - sum(committed.values())
        token_ids: dict[str, int] = {}
        for message_id, content in truth.items():
            token_ids.setdefault(content.split(" ", 1)[0], message_id)
        result.ack_mismatches = sum(
            1 for m in messages if m.acked and token_ids.get(m.token) != m.id
        )
        for sock in self.sockets:
            result.close_codes.update(sock.close_codes)
            result.error_frames.update(sock.error_frames)
            result.refusals.update(sock.refusals)
        for sock in self.fuzz_sockets:
            result.fuzz_error_frames.update(sock.error_frames)
            result.fuzz_close_codes.update(sock.close_codes)
            result.refusals.update({f"fuzz {k}": v for k, v in sock.refusals.items()})
        result.fuzz_close_codes.update(
            {f"one-shot {k}": v for k, v in self.fuzzer.one_shot_closes.items()}
        )
        result.fuzz_sent = self.fuzzer.sent
        result.fuzz_no_answer = self.fuzzer.no_answer

        # 503 asked while the database was deliberately stopped is the documented answer.
        outages = [f.down for f in self.faults if f.down is not None]
        for record in self.http_log.server_errors:
            expected = record.status == 503 and any(
                begin <= record.ended and record.started <= end for begin, end in outages
            )
            (result.expected_5xx if expected else result.unexpected_5xx).append(record)

        # Recovery after each fault.
        arrivals = {s.name: first_arrivals(s) for s in self.sockets}
        sent_after = sorted((m.sent, token_ids[m.token]) for m in messages if m.token in token_ids)
        ends = [f.started for f in self.faults[1:]] + [self.posting_ended]
        for fault, window_end in zip(self.faults, ends, strict=True):
            fault.recovery, fault.disconnected = recovery_time(
                fault, window_end, self.sockets, arrivals, sent_after
            )
        return result
