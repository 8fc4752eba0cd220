"""HTTP load from a separate process: ``wrk`` (Debian's) when installed, else a small asyncio one.

``run_load(url, ...)`` runs one timed load and returns wrk's summary as a dict (requests,
duration, errors by kind, latency percentiles), whichever generator ran. The fallback is this
module run as a process, ``python -m bench.httpload URL -c N -d SECONDS``: N keep-alive
connections each sending GETs back to back. It is much slower than wrk (one Python process),
so figures made with it are comparable with each other only; the results say which one ran.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from .common import BENCH_DIR, HOST

__all__ = ["wrk_path", "run_load", "LoadError"]

LUA = BENCH_DIR / "wrk_report.lua"
MARK = "BENCHJSON "


class LoadError(RuntimeError):
    """The load generator failed."""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _check_url(url: str) -> None:
    host = urlsplit(url).hostname
    if host != HOST:
        raise ValueError(f"load goes to {HOST} only, not {host!r}")


def _argv(
    url: str,
    connections: int,
    duration: int,
    timeout: float,
    generator: str,
    threads: int,
    headers: Sequence[str] = (),
) -> list[str]:
    """The load generator's command line: wrk with the JSON report script, or the fallback;
    ``headers`` (``"Name: value"``) are sent with every request."""
    header_args = [arg for header in headers for arg in ("-H", header)]
    if generator == "wrk":
        wrk = wrk_path()
        if wrk is None:
            raise LoadError("wrk is not installed")
        return [
            wrk,
            "-t",
            str(max(1, min(threads, connections))),
            "-c",
            str(connections),
            "-d",
            f"{duration}s",
            "--timeout",
            f"{math.ceil(timeout)}s",
            "-s",
            str(LUA),
            *header_args,
            url,
        ]
    return [
        sys.executable,
        "-m",
        "bench.httpload",
        url,
        "-c",
        str(connections),
        "-d",
        str(duration),
        "--timeout",
        str(timeout),
        *header_args,
    ]


def run_load(
    url: str,
    *,
    connections: int,
    duration: int,
    timeout: float = 5.0,
    generator: str = "wrk",
    threads: int = 2,
    headers: Sequence[str] = (),
) -> dict[str, Any]:
    """One load of ``duration`` whole seconds on ``url``; wrk's summary plus ``rps``."""
    _check_url(url)
    argv = _argv(url, connections, duration, timeout, generator, threads, headers)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=duration + timeout + 60,
            cwd=BENCH_DIR.parent,
        )
    except subprocess.TimeoutExpired as exc:
        raise LoadError(f"{argv[0]} did not finish in time") from exc
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            summary = json.loads(line[len(MARK) :])
            break
    else:
        raise LoadError(
            f"no summary from {argv[0]} (exit {done.returncode}): "
            f"{(done.stderr or done.stdout)[-500:]}"
        )
    seconds = summary["duration_us"] / 1e6
    errors = summary["errors"]
    ok = summary["requests"] - errors["status"]
    summary["generator"] = generator
    summary["connections"] = connections
    summary["seconds"] = seconds
    summary["ok"] = ok
    summary["rps"] = ok / seconds if seconds > 0 else 0.0
    summary["error_count"] = sum(errors.values())
    return summary


# --- the fallback generator, run as a process --------------------------------------------------


class _Counters:
    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self.errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
        self.latencies: list[float] = []


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """(status, bytes read, server closes)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    chunked = False
    closes = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            closes = True
    size = len(head)
    if chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            chunk = int(size_line.split(b";")[0], 16)
            await reader.readexactly(chunk + 2)
            size += len(size_line) + chunk + 2
            if chunk == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
        size += length
    else:
        size += len(await reader.read())
        closes = True
    return status, size, closes


async def _connection(
    host: str, port: int, request: bytes, deadline: float, limit: float, counters: _Counters
) -> None:
    reader = writer = None
    while time.monotonic() < deadline:
        if writer is None:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), limit)
            except (OSError, TimeoutError):
                counters.errors["connect"] += 1
                await asyncio.sleep(0.05)
                continue
        started = time.monotonic()
        try:
            writer.write(request)
            status, size, closes = await asyncio.wait_for(_read_response(reader), limit)
        except TimeoutError:
            counters.errors["timeout"] += 1
            closes = True
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            counters.errors["read"] += 1
            closes = True
        else:
            if time.monotonic() <= deadline:
                counters.requests += 1
                counters.bytes += size
                counters.latencies.append(time.monotonic() - started)
                if not 200 <= status < 400:
                    counters.errors["status"] += 1
        if closes:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _generate(
    url: str, connections: int, duration: float, limit: float, headers: Sequence[str] = ()
) -> dict:
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host, port = parts.hostname or HOST, parts.port or 80
    extra = "".join(f"{header}\r\n" for header in headers)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n{extra}\r\n".encode()
    counters = _Counters()
    started = time.monotonic()
    deadline = started + duration
    tasks = [
        asyncio.ensure_future(_connection(host, port, request, deadline, limit, counters))
        for _ in range(connections)
    ]
    # Requests still in flight at the deadline are not counted (as wrk does).
    await asyncio.wait(tasks, timeout=duration + 0.5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = min(time.monotonic() - started, duration)
    latencies = sorted(counters.latencies) or [0.0]

    def pick(q: float) -> int:
        return int(latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))] * 1e6)

    return {
        "requests": counters.requests,
        "duration_us": int(elapsed * 1e6),
        "bytes": counters.bytes,
        "errors": counters.errors,
        "latency_us": {
            "mean": sum(latencies) / len(latencies) * 1e6,
            "p50": pick(50),
            "p90": pick(90),
            "p99": pick(99),
            "max": int(latencies[-1] * 1e6),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="A small keep-alive HTTP load generator.")
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=50)
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("-H", "--header", action="append", default=[], help='"Name: value"')
    args = parser.parse_args()
    _check_url(args.url)
    from .common import raise_nofile

    raise_nofile()
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    summary = runner(
        _generate(args.url, args.connections, args.duration, args.timeout, args.header)
    )
    print(MARK + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
