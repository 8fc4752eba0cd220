"""Scenario 9, fan-out with reactions mixed in: scenario 4's fan-out while reactions change
recent messages, against the plain fan-out in the same run.

aiotutorial on 1 worker (scenario 4's overlay, and the limit on changes a second lifted too)
holds ``fanout_clients`` sockets of one channel in client processes (bench/wsproc.py). One
sender posts messages for ``fanout_duration`` seconds (as scenario 4), at a rate the worker
can carry (``rates``: 100 a second, fewer when the sockets would need more than ``DELIVERIES``
deliveries a second: scenario 4 measures the ceiling, this one what reactions add below it);
in the mixed rounds a reacting socket (the sending user's second socket, in the harness, which
reads every frame) sends a fifth as many ``react`` frames a second on one of the last
``RECENT`` messages it has seen, with one of four emoji (a toggle: each is a change of the
message all the same), during the same seconds. Every socket then gets each message and each
change (``message.changed``, the whole message with its ``reactions``). The client processes
time each message from the send time it carries, and record each change's position in the
channel's stream of changes and its arrival; the reacting socket learns each change's position
from its answer (the same frame, with its ``ref``), so each change is timed from when its
``react`` was sent. Rounds interleaved: plain, mixed, plain, mixed... (``fanout_runs`` each,
at least 3, after a warm-up of each). Figures: the messages' p50/p99 and deliveries/s in both
kinds of round, and the changes' p50/p99 and how many reached every socket.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness.stats import Histogram

from .. import servers
from ..servers import app_server, start_all, stop_all
from ..wsclient import content
from .accounts import chat_setup
from .common import OVERLAY, fmt, ms, spread
from .context import Context
from .fanout import fanout_run
from .reactor import RECENT, Reactor
from .wsgroup import Group, Target, drain

__all__ = ["reactions", "rates", "Reactor", "MAX_RATE", "DELIVERIES"]

MAX_RATE = 100  # messages a second, as scenario 4's middle rate
DELIVERIES = 20_000  # deliveries a second asked of the worker, at most
REACT_SHARE = 5  # a react frame for every 5 messages
ROUNDS = 3  # at least, whatever the profile's fan-out rounds
# Scenario 4's, and the limit on edits and reactions (1 a second, bursts of 5) lifted.
REACT_OVERLAY = {**OVERLAY, "chat.edit_rate_per_second": 100000, "chat.edit_burst": 100000}


def rates(sockets: int) -> tuple[int, int]:
    """(messages a second, react frames a second) for ``sockets`` receiving sockets."""
    rate = max(10, min(MAX_RATE, DELIVERIES // max(1, sockets)))
    return rate, max(1, rate // REACT_SHARE)


async def _post(group: Group, count: int, tag: str, rate: int) -> float:
    """``count`` messages at ``rate`` a second: the first send time."""
    assert group.sender is not None
    first = time.time()
    for index in range(count):
        delay = first + index / rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        group.sender.send_message(content(f"{tag}{index}"))
    return first


async def _react(reactor: Reactor, count: int, per_second: int) -> int:
    """``count`` reactions at ``per_second`` (from the first message seen)."""
    started = time.time()
    sent = 0
    while sent < count:
        delay = started + sent / per_second - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if await reactor.react():
            sent += 1
        elif time.time() - started > 5:
            break
        else:
            await asyncio.sleep(0.01)
    return sent


async def _wait_changes(group: Group, expected: int, timeout: float) -> int:  # noqa: ASYNC109
    """Until ``expected`` changes arrived, nothing arrived for 3 s, or ``timeout``."""
    deadline = time.monotonic() + timeout
    last, progress = -1, time.monotonic()
    while True:
        total = sum(r["changed"] for r in await group.ask_all({"cmd": "count"}, "count"))
        now = time.monotonic()
        if total >= expected or now >= deadline:
            return total
        if total != last:
            last, progress = total, now
        elif now - progress > 3.0:
            return total
        await asyncio.sleep(0.1)


async def mixed_run(group: Group, reactor: Reactor, ctx: Context, tag: str) -> dict[str, Any]:
    """One round of messages with reactions mixed in."""
    p = ctx.profile
    await group.ask_all({"cmd": "reset"}, "reset")
    reactor.reset()
    rate, per_second = rates(group.ok)
    count = max(1, min(round(rate * p.fanout_duration), p.fanout_max_deliveries // group.ok))
    wanted = max(1, round(per_second * p.fanout_duration))
    first, reacted = await asyncio.gather(
        _post(group, count, tag, rate), _react(reactor, wanted, per_second)
    )
    expected = count * group.ok
    delivered = await drain(group, expected, p.drain_timeout)
    # The reacting socket's answers (each names its change's position) come in the channel's
    # order, behind the messages: wait for them too.
    deadline = time.monotonic() + p.drain_timeout
    while reactor.pending and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    expected_changes = len(reactor.sent_by_change) * group.ok
    changed = await _wait_changes(group, expected_changes, p.drain_timeout)
    replies = await group.ask_all({"cmd": "stats", "sent": reactor.sent_by_change}, "stats")
    messages, changes = Histogram(), Histogram()
    for reply in replies:
        messages.merge(Histogram.from_sparse(reply["hist"]))
        changes.merge(Histogram.from_sparse(reply["changed_hist"]))
    lasts = [reply["last"] for reply in replies if reply["last"] is not None]
    if delivered < expected or changed < expected_changes:
        await asyncio.to_thread(
            servers.wait_quiet, group.target.pid, timeout=p.quiet_timeout, interval=p.quiet_interval
        )
    deliveries = sum(reply["deliveries"] for reply in replies)
    return {
        "messages": count,
        "expected": expected,
        "deliveries": deliveries,
        "deliveries_per_s": deliveries / (max(lasts) - first) if lasts else None,
        "p50_ms": ms(messages.percentile(50)),
        "p99_ms": ms(messages.percentile(99)),
        "reactions_sent": reacted,
        "reactions_answered": len(reactor.sent_by_change),
        "reactions_unanswered": len(reactor.pending),
        "reaction_errors": dict(reactor.errors),
        "changes_expected": expected_changes,
        "changes_received": changed,
        "changes_timed": sum(reply["changed_matched"] for reply in replies),
        "changed_p50_ms": ms(changes.percentile(50)),
        "changed_p99_ms": ms(changes.percentile(99)),
        "errors": sum(reply["errors"] for reply in replies),
        "closed": sum(reply["closed"] for reply in replies),
        "hist": messages.sparse(),
        "changed_hist": changes.sparse(),
    }


def _summary(results: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        found = spread(result[key] for result in results)
        out[key] = found["median"]
        out[f"{key}_min"], out[f"{key}_max"] = found["min"], found["max"]
        out[f"{key}_runs"] = [result[key] for result in results]
    out["lost"] = sum(result["expected"] - result["deliveries"] for result in results)
    return out


def _rows(ctx: Context, plain: dict[str, Any], mixed: dict[str, Any], sockets: int) -> None:
    rate, per_second = rates(sockets)
    for key, figure, unit in (
        ("p99_ms", f"messages p99 ms @{rate} msg/s + {per_second} reactions/s", "ms"),
        ("deliveries_per_s", "message deliveries/s, reactions mixed in", "/s"),
    ):
        ctx.row(
            "9 reactions",
            figure,
            mixed[key],
            unit,
            "plain fan-out",
            plain[key],
            runs=mixed[f"{key}_runs"],
            reference_runs=plain[f"{key}_runs"],
        )
    for key in ("changed_p50_ms", "changed_p99_ms"):
        ctx.row(
            "9 reactions",
            f"message.changed {key.split('_')[1]} ms",
            mixed[key],
            "ms",
            runs=mixed[f"{key}_runs"],
        )


async def _rounds(ctx: Context, group: Group, reactor: Reactor) -> tuple[list, list]:
    """A warm-up of each, then the interleaved rounds: (plain runs, mixed runs)."""
    plain_runs: list[dict[str, Any]] = []
    mixed_runs: list[dict[str, Any]] = []
    await fanout_run(group, 50, ctx, "warm")
    await mixed_run(group, reactor, ctx, "warmr")
    for number in range(max(ROUNDS, ctx.profile.fanout_runs)):
        plain = await fanout_run(group, rates(group.ok)[0], ctx, f"p{number}")
        plain_runs.append(plain)
        mixed = await mixed_run(group, reactor, ctx, f"m{number}")
        mixed_runs.append(mixed)
        ctx.say(
            f"  round {number + 1}: plain p99 {fmt(plain['p99_ms'])} ms, "
            f"{fmt(plain['deliveries_per_s'], 0)} deliveries/s; with reactions p99 "
            f"{fmt(mixed['p99_ms'])} ms, {fmt(mixed['deliveries_per_s'], 0)} deliveries/s, "
            f"changes p50 {fmt(mixed['changed_p50_ms'])} p99 {fmt(mixed['changed_p99_ms'])} "
            f"ms ({mixed['changes_received']}/{mixed['changes_expected']})"
        )
    return plain_runs, mixed_runs


async def reactions(ctx: Context) -> dict[str, Any]:
    """Scenario 9."""
    p = ctx.profile
    app = app_server("reactions-app", ctx.database_url, ini=servers.overlay_ini(REACT_OVERLAY))
    ctx.say(f"starting: app (overlay ini, 1 worker); {p.fanout_clients} clients")
    await asyncio.to_thread(start_all, [app])
    group: Group | None = None
    reactor: Reactor | None = None
    try:
        channel, cookie, sender_cookie = await chat_setup(ctx, app)
        path = f"/channels/{channel}/ws"
        group = Group(Target("app", app, path, cookie, sender_cookie))
        await group.connect(p.fanout_clients, p.fanout_procs, ctx)
        await group.open_sender()
        reactor = Reactor(app.port, path, sender_cookie)
        await reactor.open()
        ctx.say(f"  {group.ok} sockets in {group.connect_seconds:.1f} s, and the reacting one")
        plain_runs, mixed_runs = await _rounds(ctx, group, reactor)
        sockets = group.ok
    finally:
        if reactor is not None:
            await reactor.close()
        if group is not None:
            await group.close()
        await asyncio.to_thread(stop_all, [app])
    plain_summary = _summary(plain_runs, ("p50_ms", "p99_ms", "deliveries_per_s"))
    mixed_summary = _summary(
        mixed_runs,
        ("p50_ms", "p99_ms", "deliveries_per_s", "changed_p50_ms", "changed_p99_ms"),
    )
    mixed_summary["changes_lost"] = sum(
        run["changes_expected"] - run["changes_received"] for run in mixed_runs
    )
    _rows(ctx, plain_summary, mixed_summary, sockets)
    rate, per_second = rates(sockets)
    strip = ("hist", "changed_hist")
    return {
        "status": "ok",
        "what": (
            f"one channel, {sockets} websockets on one worker, {rate} msg/s for "
            f"{p.fanout_duration} s a round; mixed rounds add {per_second} react frames/s on "
            f"the last {RECENT} messages"
        ),
        "overlay_settings": REACT_OVERLAY,
        "order": "after a warm-up of each: plain, mixed, plain, mixed...",
        "summary": {"plain": plain_summary, "mixed": mixed_summary},
        "runs": {
            "plain": [{k: v for k, v in run.items() if k not in strip} for run in plain_runs],
            "mixed": [{k: v for k, v in run.items() if k not in strip} for run in mixed_runs],
        },
    }
