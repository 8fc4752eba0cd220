"""Profile a worker under one scenario's load with py-spy, and summarise where the time goes.

    .venv/bin/python -m bench.profile bridge|slow|dbjson|fanout|capacity [--seconds 10]

Starts the server the scenario measures (as bench/run.py does), loads it from other processes,
and runs ``py-spy record -p <worker> -f raw`` meanwhile (py-spy is in the testing extra). The
collapsed stacks go to ``bench/results/profile-<scenario>.txt`` (feed them to flamegraph.pl or
speedscope); the summary printed lists the functions with the most samples on top of the stack
(self), and the share of samples spent inside each package (inclusive). Samples are of the
worker's busy time only (py-spy leaves out idle waits in epoll).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import scenarios, servers
from bench.common import RESULTS_DIR, raise_nofile
from bench.httpload import run_load, wrk_path
from bench.wsclient import content
from bench.wsproc import kill_client_processes

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
PACKAGES = (
    (".jinja2", "templates (compiled jinja2)"),
    ("aiotutorial/aio/", "aiotutorial.aio (bridge)"),
    ("aiotutorial/", "aiotutorial (app)"),
    ("bench/", "bench"),
    ("pyramid_jinja2/", "pyramid_jinja2"),
    ("pyramid/", "pyramid"),
    ("jinja2/", "jinja2"),
    ("webob/", "webob"),
    ("aiohttp/", "aiohttp"),
    ("aiopg/", "aiopg"),
    ("sqlalchemy/", "sqlalchemy"),
    ("psycopg2/", "psycopg2"),
    ("greenlet/", "greenlet"),
    ("asyncio/", "asyncio"),
    ("multidict/", "multidict"),
    ("yarl/", "yarl"),
    ("json/", "json"),
    ("markupsafe/", "markupsafe"),
    ("gunicorn/", "gunicorn"),
    ("zope/", "zope"),
)


# Threads of a ThreadPoolExecutor waiting for work: blocked in a C lock, not idle to py-spy.
IDLE_LEAVES = {("_worker", "concurrent/futures/thread.py")}


def _frame(text: str) -> tuple[str, str]:
    found = FRAME.match(text)
    if not found:
        return text, ""
    return found.group("func"), found.group("file")


def _package(path: str) -> str:
    for marker, name in PACKAGES:
        if marker in path:
            return name
    return "stdlib/other" if path else "native"


def summarise(raw: Path, top: int = 25) -> str:
    """The self and inclusive tables of py-spy's collapsed stacks in ``raw``."""
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    package_self: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_frame(part) for part in stack.split(";")]
        func, path = frames[-1]
        if (func, path) in IDLE_LEAVES:
            idle += samples
            continue
        total += samples
        self_time[f"{func} ({path})"] += samples
        package_self[_package(path)] += samples
        for name in {f"{f} ({p})" for f, p in frames}:
            inclusive[name] += samples
        for name in {_package(p) for _, p in frames}:
            packages[name] += samples
    if not total:
        return "no samples"
    lines = [
        f"{total} samples ({idle} more of idle thread-pool threads left out)",
        "",
        "self (top of stack):",
    ]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in self_time.most_common(top)]
    lines += ["", "inclusive (anywhere in the stack; roots in over 90 % of samples left out):"]
    # Frames in (nearly) every sample are the process's and the loop's roots: left out.
    below = [(name, n) for name, n in inclusive.most_common() if n / total < 0.9]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in below[:top]]
    lines += ["", "self by package (time spent in the package's own code):"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in package_self.most_common()]
    lines += ["", "inclusive by package:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in packages.most_common()]
    return "\n".join(lines)


# ``--native``: C frames too (what a driver's C call spends its time on).
NATIVE: list[str] = []


def _record(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "200", "-f", "raw", *NATIVE]
    return subprocess.Popen(
        [*argv, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _http(server: servers.Server, path: str, connections: int, seconds: int, out: Path) -> None:
    generator = "wrk" if wrk_path() else "python"
    result: dict[str, Any] = {}

    def load() -> None:
        result.update(
            run_load(
                server.url(path),
                connections=connections,
                duration=seconds + 2,
                timeout=15,
                generator=generator,
            )
        )

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(1.0)
    spy = _record(server.worker_pids()[0], seconds, out)
    spy.wait(seconds + 60)
    loader.join(seconds + 90)
    print(f"load: {result.get('rps', 0):.0f} req/s with -c{connections} ({generator})")


async def _sockets(
    ctx: scenarios.Context, server: servers.Server, args: argparse.Namespace, out: Path
) -> None:
    channel, cookie, sender_cookie = await scenarios.chat_setup(ctx, server)
    target = scenarios.Target("app", server, f"/channels/{channel}/ws", cookie, sender_cookie)
    group = scenarios.Group(target)
    try:
        if args.scenario == "capacity":
            # The connection ramp itself (upgrades, joins, presence) is what is profiled.
            spy = _record(target.pid, args.seconds, out)
            await group.connect(args.clients, 4, ctx)
            print(f"{group.ok} sockets in {group.connect_seconds:.1f} s")
            await asyncio.to_thread(spy.wait, args.seconds + 60)
            return
        await group.connect(args.clients, 2, ctx)
        await group.open_sender()
        assert group.sender is not None
        print(f"{group.ok} sockets; sending {args.rate} messages/s")
        spy = _record(target.pid, args.seconds, out)
        started = time.time()
        count = int(args.rate * (args.seconds + 1))
        for index in range(count):
            delay = started + index / args.rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            group.sender.send_message(content(f"p{index}"))
        await asyncio.to_thread(spy.wait, args.seconds + 60)
        replies = await group.ask_all({"cmd": "count"}, "count")
        print(f"delivered {sum(r['deliveries'] for r in replies)} of {count * group.ok}")
    finally:
        await group.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["bridge", "slow", "dbjson", "fanout", "capacity"])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=1000, help="websockets (fanout, capacity)")
    parser.add_argument("--rate", type=int, default=100, help="messages/s sent (fanout)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--native", action="store_true", help="C frames too (py-spy --native)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    if args.native:
        NATIVE.append("--native")
    raise_nofile()
    from aiotutorial.pgcluster import default_database_url

    url = os.environ.get("DATABASE_URL") or default_database_url()
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"profile-{args.scenario}.txt"
    ctx = scenarios.Context(profile=scenarios.PROFILES["quick"], database_url=url, generator="")
    try:
        if args.scenario in ("bridge", "slow", "dbjson"):
            if args.scenario == "dbjson":
                scenarios.seed_history(url, 5000)
            server = servers.app_server("profile-app", url).start()
            path, connections = {
                "bridge": ("/demo?sleep=0", 50),
                "slow": ("/demo?sleep=0.1", 500),
                "dbjson": (f"/channels/{scenarios.HISTORY_CHANNEL}/messages?limit=50", 50),
            }[args.scenario]
            _http(server, path, connections, args.seconds, out)
        else:
            overlay = servers.overlay_ini(scenarios.OVERLAY)
            server = servers.app_server("profile-app", url, ini=overlay).start()
            asyncio.run(_sockets(ctx, server, args, out))
    finally:
        servers.stop_all()
        kill_client_processes()
        scenarios.cleanup(ctx)
    print(f"collapsed stacks: {out}\n")
    print(summarise(out, args.top))


if __name__ == "__main__":
    main()
