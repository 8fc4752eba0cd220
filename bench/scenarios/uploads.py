"""Scenario 10: upload throughput. Signed-in clients post files to ``POST
/channels/{name}/uploads`` on one worker as fast as it answers, for a few seconds a round:
each kind of file in its own rounds, the kinds interleaved (round i of each, then i + 1).

Kinds: a photo (a 1600 x 1200 JPEG of about 500 kB: Pillow decodes it, turns it, re-encodes it
without EXIF and makes a thumbnail, in a thread, two at a time), a 256 kB file that is no
image (stored as sent), and a small PNG (120 x 90, under 1 kB: the cost of an upload itself).
Figures: uploads a second, megabytes a second, and the answer's latency (median and p99),
with every answer's status (anything but 201 is counted and reported). The run's channel and
users are removed at the end of the run with the rest (scenarios.cleanup), their uploads and
bytes with them.
"""

from __future__ import annotations

import asyncio
import io
import random
import statistics
import time
from typing import Any

import aiohttp
from PIL import Image

from ..servers import app_server, overlay_ini, start_all, stop_all
from .accounts import Account
from .context import Context
from .search import percentile

__all__ = ["uploads", "KINDS"]


def _photo() -> bytes:
    """A photo-like JPEG: noise over gradients (it does not compress to nothing)."""
    rng = random.Random(7)
    image = Image.new("RGB", (1600, 1200))
    pixels = bytes(rng.randrange(256) for _ in range(1600 * 1200 * 3 // 64))
    noise = Image.frombytes("RGB", (200, 150), pixels[: 200 * 150 * 3]).resize((1600, 1200))
    image.paste(noise)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 90), (40, 120, 200)).save(out, "PNG")
    return out.getvalue()


# name -> (file name, type claimed, bytes maker)
KINDS: dict[str, tuple[str, str, Any]] = {
    "photo": ("photo.jpg", "image/jpeg", _photo),
    "file": ("data.bin", "application/octet-stream", lambda: random.Random(3).randbytes(262_144)),
    "small png": ("icon.png", "image/png", _small_png),
}


async def _round(
    base: str,
    accounts: list[Account],
    channel: str,
    upload: tuple[str, str, bytes],
    seconds: float,
) -> dict[str, Any]:
    name, kind, data = upload
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def client(account: Account) -> None:
        url = f"{base}/channels/{channel}/uploads"
        while time.perf_counter() < deadline:
            form = aiohttp.FormData()
            form.add_field("file", data, filename=name, content_type=kind)
            started = time.perf_counter()
            async with account.session.post(
                url, data=form, headers={"X-CSRF-Token": account.csrf, "Accept": "application/json"}
            ) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append((time.perf_counter() - started) * 1000.0)

    began = time.perf_counter()
    await asyncio.gather(*(client(account) for account in accounts))
    elapsed = time.perf_counter() - began
    done = statuses.get(201, 0)
    return {
        "uploads_per_s": done / elapsed,
        "mb_per_s": done * len(data) / elapsed / 1e6,
        "median_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": percentile(latencies, 99),
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "seconds": elapsed,
    }


async def _measure(ctx: Context, base: str) -> dict[str, Any]:
    p = ctx.profile
    prefix = f"bench_{ctx.run_id}_up"
    accounts = [Account(base, f"{prefix}{index}") for index in range(p.upload_clients)]
    try:
        for account in accounts:
            await account.register()
            ctx.users.append(account.username)
        channel = f"bench-{ctx.run_id}-uploads"
        await accounts[0].create_channel(channel)
        ctx.channels.append(channel)
        files = {kind: (name, claimed, make()) for kind, (name, claimed, make) in KINDS.items()}
        rounds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in files}
        for _ in range(p.upload_runs):
            for kind, (name, claimed, data) in files.items():
                rounds[kind].append(
                    await _round(base, accounts, channel, (name, claimed, data), p.upload_seconds)
                )
        out: dict[str, Any] = {}
        for kind, runs in rounds.items():
            rates = [run["uploads_per_s"] for run in runs]
            out[kind] = {
                "bytes": len(files[kind][2]),
                "uploads_per_s": statistics.median(rates),
                "uploads_per_s_range": [min(rates), max(rates)],
                "mb_per_s": statistics.median(run["mb_per_s"] for run in runs),
                "median_ms": statistics.median(run["median_ms"] for run in runs),
                "p99_ms": statistics.median(run["p99_ms"] for run in runs),
                "p99_ms_range": [
                    min(run["p99_ms"] for run in runs),
                    max(run["p99_ms"] for run in runs),
                ],
                "not_201": sum(
                    count
                    for run in runs
                    for code, count in run["statuses"].items()
                    if code != "201"
                ),
                "runs": runs,
            }
        return out
    finally:
        for account in accounts:
            await account.close()


async def uploads(ctx: Context) -> dict[str, Any]:
    """Scenario 10."""
    p = ctx.profile
    # Every upload counts in its uploader's daily quota: out of the way for the measurement.
    ini = overlay_ini({"uploads.daily_quota": str(10**13), "security.register_attempts": "1000"})
    server = app_server("uploads-app", ctx.database_url, ini=ini)
    await asyncio.to_thread(start_all, [server])
    try:
        figures = await _measure(ctx, server.url(""))
    finally:
        await asyncio.to_thread(stop_all, [server])
    for kind, entry in figures.items():
        low, high = entry["uploads_per_s_range"]
        ctx.say(
            f"  {kind:<9} ({entry['bytes'] / 1024:.0f} kB): "
            f"{entry['uploads_per_s']:.1f} uploads/s [{low:.1f}-{high:.1f}], "
            f"{entry['mb_per_s']:.1f} MB/s, median {entry['median_ms']:.0f} ms, "
            f"p99 {entry['p99_ms']:.0f} ms, {entry['not_201']} not 201"
        )
        spread = (low, high, p.upload_runs)
        ctx.row("10 uploads", f"{kind}: uploads/s", entry["uploads_per_s"], "/s", spread=spread)
        p99_low, p99_high = entry["p99_ms_range"]
        ctx.row(
            "10 uploads",
            f"{kind}: p99 ms",
            entry["p99_ms"],
            "ms",
            spread=(p99_low, p99_high, p.upload_runs),
        )
    return {
        "status": "ok",
        "what": (
            f"POST /channels/{{name}}/uploads, 1 worker, {p.upload_clients} clients uploading "
            f"as fast as answered, {p.upload_seconds:g} s a round, {p.upload_runs} rounds a kind "
            "(interleaved)"
        ),
        "kinds": figures,
    }
