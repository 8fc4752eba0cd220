"""The table printed at the end of ``make bench`` and the PNG plots in bench/results/."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import Histogram

__all__ = ["table", "plot_all"]


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def table(rows: Sequence[dict[str, Any]]) -> str:
    """One line per figure: value, reference measured in the same run, ratio, target, met."""
    header = ["scenario", "figure", "value", "reference", "ref. value", "ratio", "target", "met"]
    lines = [header]
    for row in rows:
        met = row["met"]
        lines.append(
            [
                row["scenario"],
                row["figure"],
                _num(row["value"], row["unit"]),
                row["reference"] or "",
                _num(row["reference_value"], row["unit"]) if row["reference"] else "",
                f"{row['ratio']:.2f}x" if row["ratio"] is not None else "",
                row["target"],
                {True: "yes", False: "NO", None: "-"}[met],
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {2, 4, 5}
    out = []
    for number, line in enumerate(lines):
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if number == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


# --- plots ------------------------------------------------------------------------------------


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

    bridge = scenarios.get("bridge", {})
    sync = scenarios.get("sync_pyramid", {})
    if bridge.get("status") == "ok" and sync.get("status") == "ok":
        figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        f1, f2 = bridge["figures"], sync["figures"]
        names = ["aiotutorial", "raw aiohttp", "sync", "gthread 10"]
        values = [f1["app_rps"], f1["raw_rps"], f2["sleep0_sync_rps"], f2["sleep0_gthread_rps"]]
        left.bar(names, [v or 0 for v in values], color=["C0", "C1", "C2", "C3"])
        left.set_title("GET /demo?sleep=0, 1 worker")
        left.set_ylabel("requests/s")
        names = ["aiotutorial", "sync", "gthread 10"]
        values = [f2["sleep01_app_rps"], f2["sleep01_sync_rps"], f2["sleep01_gthread_rps"]]
        right.bar(names, [v or 0 for v in values], color=["C0", "C2", "C3"])
        right.set_yscale("log")
        connections = sync["sleep0.1"]["connections"]
        right.set_title(f"GET /demo?sleep=0.1, -c{connections}, 1 worker")
        right.set_ylabel("requests/s (log)")
        save(figure, "http_demo.png")

    db = scenarios.get("db_json", {})
    if db.get("status") == "ok":
        figure, axis = plt.subplots(figsize=(6, 4))
        workers = sorted(int(w) for w in db["by_workers"])
        for name, label in (("app", "aiotutorial (aiopg.sa)"), ("gthread", "sync + psycopg2")):
            axis.plot(
                workers,
                [db["by_workers"][str(w)]["servers"][name]["rps"] for w in workers],
                marker="o",
                label=label,
            )
        axis.set_xticks(workers)
        axis.set_xlabel("gunicorn workers")
        axis.set_ylabel("requests/s")
        axis.set_title("GET /channels/bench-history/messages?limit=50")
        axis.legend()
        save(figure, "db_json.png")

    fan = scenarios.get("fanout", {})
    if fan.get("status") == "ok":
        rates = fan["rates"]
        figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        for kind, color in (("app", "C0"), ("raw", "C1")):
            by_rate = fan["summary"][kind]
            for key, style in (("p50_ms", "--"), ("p99_ms", "-")):
                left.plot(
                    rates,
                    [by_rate[str(r)][key] for r in rates],
                    style,
                    marker="o",
                    color=color,
                    label=f"{kind} {key[:3]}",
                )
            right.plot(
                rates,
                [by_rate[str(r)]["deliveries_per_s"] for r in rates],
                marker="o",
                color=color,
                label=kind,
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
        right.set_ylabel("deliveries/s")
        right.set_title("fan-out throughput")
        right.legend(fontsize=8)
        save(figure, "fanout.png")

        figure, axis = plt.subplots(figsize=(7, 4))
        for kind, style in (("app", "-"), ("raw", "--")):
            for number, rate in enumerate(rates):
                histogram = Histogram.from_sparse(fan["summary"][kind][str(rate)]["hist"])
                if histogram.total:
                    xs, ys = histogram.cdf()
                    axis.plot(
                        [x * 1000 for x in xs],
                        ys,
                        style,
                        color=f"C{number}",
                        label=f"{kind} {rate}/s",
                    )
        axis.set_xscale("log")
        axis.set_xlabel("send to delivery (ms)")
        axis.set_ylabel("fraction of deliveries")
        axis.set_title("fan-out latency distribution")
        axis.legend(fontsize=8)
        save(figure, "fanout_cdf.png")

    cap = scenarios.get("capacity", {})
    if cap.get("status") == "ok":
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
        right.bar(
            names, [f["app_broadcast_ms"] or 0, f["raw_broadcast_ms"] or 0], color=["C0", "C1"]
        )
        right.axhline(1000, color="gray", linewidth=0.8, linestyle=":")
        right.set_ylabel("ms until the last socket has it")
        right.set_title("one broadcast to all")
        save(figure, "capacity.png")

    strokes = scenarios.get("strokes", {})
    part1, part2 = strokes.get("delivery", {}), strokes.get("capacity", {})
    if part1.get("status") == "ok" or part2.get("status") == "ok":
        figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        if part1.get("status") == "ok":
            for kind, color in (("strokes", "C0"), ("chat", "C2")):
                histogram = Histogram.from_sparse(part1[kind]["hist"])
                if histogram.total:
                    xs, ys = histogram.cdf()
                    left.plot([x * 1000 for x in xs], ys, color=color, label=kind)
            left.set_xscale("log")
            left.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            left.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            left.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            left.set_xlabel("send to delivery (ms)")
            left.set_ylabel("fraction of deliveries")
            left.set_title(
                f"{part1['rate']}/s to {part1['watchers']} sockets, {part1['workers']} workers"
            )
            left.legend(fontsize=8)
        if part2.get("status") == "ok" and part2["steps"]:
            steps = [s for s in part2["steps"] if s["p99_ms"] is not None]
            games = [s["games"] for s in steps]
            for key, color in (("p50_ms", "C1"), ("p99_ms", "C0")):
                middle = [s[key] for s in steps]
                low = [s[key] - s[f"{key}_min"] for s in steps]
                high = [s[f"{key}_max"] - s[key] for s in steps]
                right.errorbar(
                    games, middle, yerr=[low, high], marker="o", color=color, label=key[:3]
                )
            right.axhline(part2["threshold_ms"], color="gray", linewidth=0.8, linestyle=":")
            right.set_xscale("log", base=2)
            right.set_xticks(games)
            right.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            right.set_yscale("log")
            right.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            right.set_xlabel(f"games of {part2['players']} players on 1 worker")
            right.set_ylabel("send to delivery (ms), median [min-max]")
            right.set_title(f"games per worker, {part2['rate']} batches/s each")
            right.legend(fontsize=8)
        save(figure, "strokes.png")
    return written
