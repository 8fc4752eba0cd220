"""The PNG plots of ``make bench`` in bench/results/ (matplotlib, the ``bench`` extra).

One figure per scenario, from the results' JSON: requests/s of the demo page (scenarios 1-2)
and of the history JSON by workers (3), with each median's [min-max] as error bars; the
fan-out's latency and throughput by rate and its latency distribution (4); memory per idle
socket and the broadcast time (5); the game's strokes against the chat and games per worker
(6). Each figure carries the machine, the profile and the date.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.stats import Histogram

__all__ = ["plot_all"]

Save = Callable[[Any, str], None]


def _errors(items: list[dict[str, Any]], key: str) -> list[list[float]]:
    """Error bars from ``key``'s median to its ``_min`` and ``_max`` (0 when unknown)."""
    low, high = [], []
    for item in items:
        middle, lo, hi = item.get(key), item.get(f"{key}_min"), item.get(f"{key}_max")
        ok = None not in (middle, lo, hi)
        low.append(middle - lo if ok else 0.0)
        high.append(hi - middle if ok else 0.0)
    return [low, high]


def _http(plt: Any, scenarios: dict[str, Any], save: Save) -> None:
    bridge, sync = scenarios.get("bridge", {}), scenarios.get("sync_pyramid", {})
    if bridge.get("status") != "ok" or sync.get("status") != "ok":
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    fast = sync["sleep0"]["servers"]
    fast = [bridge["servers"]["app"], bridge["servers"]["raw"], fast["sync"], fast["gthread"]]
    left.bar(
        ["aiotutorial", "raw aiohttp", "sync", "gthread 10"],
        [s["rps"] or 0 for s in fast],
        yerr=_errors(fast, "rps"),
        color=["C0", "C1", "C2", "C3"],
    )
    left.set_title("GET /demo?sleep=0, 1 worker")
    left.set_ylabel("requests/s (median [min-max])")
    slow = sync["sleep0.1"]["servers"]
    slow = [slow["app"], slow["sync"], slow["gthread"]]
    right.bar(
        ["aiotutorial", "sync", "gthread 10"],
        [s["rps"] or 0 for s in slow],
        yerr=_errors(slow, "rps"),
        color=["C0", "C2", "C3"],
    )
    right.set_yscale("log")
    right.set_title(f"GET /demo?sleep=0.1, -c{sync['sleep0.1']['connections']}, 1 worker")
    right.set_ylabel("requests/s (log)")
    save(figure, "http_demo.png")


def _db_json(plt: Any, scenarios: dict[str, Any], save: Save) -> None:
    db = scenarios.get("db_json", {})
    if db.get("status") != "ok":
        return
    figure, axis = plt.subplots(figsize=(6, 4))
    workers = sorted(int(w) for w in db["by_workers"])
    for name, label in (("app", "aiotutorial (aiopg.sa)"), ("gthread", "sync + psycopg2")):
        items = [db["by_workers"][str(w)]["servers"][name] for w in workers]
        axis.errorbar(
            workers,
            [item["rps"] for item in items],
            yerr=_errors(items, "rps"),
            marker="o",
            label=label,
            capsize=3,
        )
    axis.set_xticks(workers)
    axis.set_xlabel("gunicorn workers")
    axis.set_ylabel("requests/s (median [min-max])")
    axis.set_title("GET /channels/bench-history/messages?limit=50")
    axis.legend()
    save(figure, "db_json.png")


def _fanout(plt: Any, fan: dict[str, Any], save: Save) -> None:
    rates = fan["rates"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for kind, color in (("app", "C0"), ("raw", "C1")):
        by_rate = [fan["summary"][kind][str(r)] for r in rates]
        for key, style in (("p50_ms", "--"), ("p99_ms", "-")):
            left.plot(
                rates,
                [item[key] for item in by_rate],
                style,
                marker="o",
                color=color,
                label=f"{kind} {key[:3]}",
            )
        right.errorbar(
            rates,
            [item["deliveries_per_s"] for item in by_rate],
            yerr=_errors(by_rate, "deliveries_per_s"),
            marker="o",
            color=color,
            label=kind,
            capsize=3,
        )
    left.axhline(100, color="gray", linewidth=0.8, linestyle=":")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("messages/s sent")
    left.set_ylabel("send to delivery (ms)")
    left.set_title("fan-out latency")
    left.legend(fontsize=8)
    right.set_xscale("log")
    right.set_xlabel("messages/s sent")
    right.set_ylabel("deliveries/s (median [min-max])")
    right.set_title("fan-out throughput")
    right.legend(fontsize=8)
    save(figure, "fanout.png")


def _fanout_cdf(plt: Any, fan: dict[str, Any], save: Save) -> None:
    figure, axis = plt.subplots(figsize=(7, 4))
    for kind, style in (("app", "-"), ("raw", "--")):
        for number, rate in enumerate(fan["rates"]):
            histogram = Histogram.from_sparse(fan["summary"][kind][str(rate)]["hist"])
            if histogram.total:
                xs, ys = histogram.cdf()
                axis.plot(
                    [x * 1000 for x in xs], ys, style, color=f"C{number}", label=f"{kind} {rate}/s"
                )
    axis.set_xscale("log")
    axis.set_xlabel("send to delivery (ms)")
    axis.set_ylabel("fraction of deliveries")
    axis.set_title("fan-out latency distribution")
    axis.legend(fontsize=8)
    save(figure, "fanout_cdf.png")


def _capacity(plt: Any, cap: dict[str, Any], save: Save) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    f = cap["figures"]
    names = ["aiotutorial", "raw aiohttp"]
    left.bar(
        names,
        [f["app_kb_per_connection"] or 0, f["raw_kb_per_connection"] or 0],
        color=["C0", "C1"],
    )
    left.axhline(40, color="gray", linewidth=0.8, linestyle=":")
    left.set_ylabel("KB of worker RSS per socket")
    left.set_title(f"{cap['sockets']} idle websockets")
    items = [cap["servers"]["app"], cap["servers"]["raw"]]
    right.bar(
        names,
        [item["broadcast_ms"] or 0 for item in items],
        yerr=_errors(items, "broadcast_ms"),
        color=["C0", "C1"],
    )
    right.axhline(1000, color="gray", linewidth=0.8, linestyle=":")
    right.set_ylabel("ms until the last socket has it")
    right.set_title("one broadcast to all")
    save(figure, "capacity.png")


def _strokes_delivery(matplotlib: Any, axis: Any, part1: dict[str, Any]) -> None:
    for kind, color in (("strokes", "C0"), ("chat", "C2")):
        histogram = Histogram.from_sparse(part1[kind]["hist"])
        if histogram.total:
            xs, ys = histogram.cdf()
            axis.plot([x * 1000 for x in xs], ys, color=color, label=kind)
    axis.set_xscale("log")
    axis.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axis.set_xlabel("send to delivery (ms)")
    axis.set_ylabel("fraction of deliveries")
    axis.set_title(f"{part1['rate']}/s to {part1['watchers']} sockets, {part1['workers']} workers")
    axis.legend(fontsize=8)


def _strokes_capacity(matplotlib: Any, axis: Any, part2: dict[str, Any]) -> None:
    steps = [s for s in part2["steps"] if s["p99_ms"] is not None]
    games = [s["games"] for s in steps]
    for key, color in (("p50_ms", "C1"), ("p99_ms", "C0")):
        axis.errorbar(
            games,
            [s[key] for s in steps],
            yerr=_errors(steps, key),
            marker="o",
            color=color,
            label=key[:3],
        )
    axis.axhline(part2["threshold_ms"], color="gray", linewidth=0.8, linestyle=":")
    axis.set_xscale("log", base=2)
    axis.set_xticks(games)
    axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axis.set_xlabel(f"games of {part2['players']} players on 1 worker")
    axis.set_ylabel("send to delivery (ms), median [min-max]")
    axis.set_title(f"games per worker, {part2['rate']} batches/s each")
    axis.legend(fontsize=8)


def plot_all(results: dict[str, Any], directory: Path) -> list[str]:
    """Write the PNGs; returns their names. Needs matplotlib (the ``bench`` extra)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = results["scenarios"]
    written: list[str] = []
    subtitle = (
        f"{results['machine']['cores']} cores, {results['machine']['cpu_model']}; "
        f"{results['profile']['name']} profile, {results['date']}"
    )

    def save(figure: Any, name: str) -> None:
        figure.text(0.5, 0.005, subtitle, ha="center", va="bottom", fontsize=7, color="gray")
        figure.tight_layout(rect=(0, 0.03, 1, 1))
        figure.savefig(directory / name, dpi=110)
        plt.close(figure)
        written.append(name)

    _http(plt, scenarios, save)
    _db_json(plt, scenarios, save)
    fan = scenarios.get("fanout", {})
    if fan.get("status") == "ok":
        _fanout(plt, fan, save)
        _fanout_cdf(plt, fan, save)
    if scenarios.get("capacity", {}).get("status") == "ok":
        _capacity(plt, scenarios["capacity"], save)
    strokes = scenarios.get("strokes", {})
    part1, part2 = strokes.get("delivery", {}), strokes.get("capacity", {})
    if part1.get("status") == "ok" or part2.get("status") == "ok":
        figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        if part1.get("status") == "ok":
            _strokes_delivery(matplotlib, left, part1)
        if part2.get("status") == "ok" and part2["steps"]:
            _strokes_capacity(matplotlib, right, part2)
        save(figure, "strokes.png")
    return written
