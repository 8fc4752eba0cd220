"""Scenario 6 as ``make bench`` runs it: both parts, their figures and rows, and the cleanup.

``run`` runs part 1 (delivery.py) and part 2 (capacity.py), each recorded as failed without
stopping the other; its figures and the main table's rows come from their summaries.
``cleanup`` deletes this run's games (before the channels and users they refer to).
"""

from __future__ import annotations

import traceback
from dataclasses import asdict
from typing import Any

from ..scenarios.context import Context
from .capacity import capacity
from .delivery import delivery
from .profiles import PROFILES, SCENARIO, SETTINGS, StrokesProfile

__all__ = ["run", "cleanup", "last_ok_step"]


async def run(ctx: Context) -> dict[str, Any]:
    """Scenario 6: its raw numbers; its rows go into ``ctx.rows``."""
    p = PROFILES[ctx.profile.name]
    out: dict[str, Any] = {"status": "ok", "profile": asdict(p), "settings": SETTINGS}
    for part, function in (("delivery", delivery), ("capacity", capacity)):
        try:
            out[part] = await function(ctx, p)
        except Exception as exc:  # noqa: BLE001 - recorded; the other part still runs
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
        last = last_ok_step(part2)
        if last is not None:
            figures["notify_per_s_at_max"] = last["notify_per_s"]
            figures["pg_cpu_at_max"] = last["pg_cpu"]
            figures["worker_cpu_at_max"] = last["workers_cpu"]
    return figures


def last_ok_step(part2: dict[str, Any]) -> dict[str, Any] | None:
    best = part2.get("max_games_under_threshold")
    return next((s for s in part2.get("steps", []) if s["games"] == best), None)


def _spread(item: dict[str, Any], key: str) -> tuple[Any, Any, int]:
    """A figure's spread over the windows kept: (min, max, windows)."""
    return item.get(f"{key}_min"), item.get(f"{key}_max"), len(item.get(f"{key}_runs") or [])


def _delivery_rows(ctx: Context, part1: dict[str, Any], p: StrokesProfile) -> None:
    strokes, chat = part1["strokes"], part1["chat"]
    where = f"{p.rate}/s, {p.watchers} watchers, {p.workers}w"
    for key, figure, unit, reference in (
        ("p50_ms", f"stroke p50 ms ({where})", "ms", f"chat {p.rate} msg/s"),
        ("p99_ms", f"stroke p99 ms ({where})", "ms", f"chat {p.rate} msg/s"),
        ("notify_per_s", f"bus NOTIFY/s ({where})", "/s", "chat"),
        ("pg_cpu", f"postgres CPU % of a core ({where})", "%", "chat"),
    ):
        ctx.row(
            SCENARIO,
            figure,
            strokes[key],
            unit,
            reference,
            chat[key],
            spread=_spread(strokes, key),
            reference_spread=_spread(chat, key),
        )


def _capacity_rows(ctx: Context, part2: dict[str, Any], p: StrokesProfile) -> None:
    for step in part2["steps"]:
        ctx.row(
            SCENARIO,
            f"stroke p99 ms, {step['games']} games x {p.players} (1w)",
            step["p99_ms"],
            "ms",
            spread=_spread(step, "p99_ms"),
        )
    best = part2["max_games_under_threshold"]
    ctx.row(SCENARIO, f"games per worker, p99 < {p.threshold_ms:g} ms", best, "games")
    last = last_ok_step(part2)
    if last is not None:
        for key, figure, unit in (
            ("notify_per_s", f"bus NOTIFY/s at {best} games (1w)", "/s"),
            ("pg_cpu", f"postgres CPU % of a core at {best} games", "%"),
        ):
            ctx.row(SCENARIO, figure, last[key], unit, spread=_spread(last, key))


def _rows(ctx: Context, out: dict[str, Any], p: StrokesProfile) -> None:
    """The main table's rows: each figure the median of its windows, with their spread."""
    if out.get("delivery", {}).get("status") == "ok":
        _delivery_rows(ctx, out["delivery"], p)
    if out.get("capacity", {}).get("status") == "ok":
        _capacity_rows(ctx, out["capacity"], p)


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
