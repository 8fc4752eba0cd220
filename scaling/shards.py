"""``python -m scaling.shards``: channels partitioned over K PostgreSQL clusters, simulated
with the per-database limits ``scaling.bus`` measured.

**The model.** A cluster's bus is one queue served one commit at a time: a commit that sends
a NOTIFY holds a cluster-wide lock through its WAL flush (README, scenario 6), so each
cluster is a FIFO single server. Its mean service time is calibrated so that one simulated
cluster reaches the p99 limit (100 ms) exactly at the rate that was measured for that kind of
event and number of listening workers (``scaling/results/latest.json``); service times vary
(exponential: the pessimistic choice), and every delivery also pays the fixed time measured
at low load (the p50 of the first step). The model is checked against the measurement: the
simulated p99 of one cluster at each rate the ramp offered is printed beside the measured one.

**The load.** 2,000 channels whose traffic follows Zipf's law (s = 1: the busiest channel
carries about 12 % of the events), Poisson arrivals. Each channel lives on the cluster its name
hashes to (rendezvous hashing over blake2b: stable across processes and releases, and going
from K to K+1 clusters moves only the channels the new one wins, about 1/(K+1) of them).

**The answer.** For K = 1, 2, 4, 8: the largest total rate at which every cluster keeps its
p99 under 100 ms, the speed-up over one cluster, how uneven the hash left the load (and the
same with a directory that places the busiest channels deliberately), and the
ceiling no number of clusters lifts: one channel lives on one cluster, so the busiest
channel alone cannot pass one cluster's limit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["cluster_of", "simulate", "main", "zipf_weights", "CHANNELS"]

RESULTS = Path(__file__).resolve().parent / "results"
CHANNELS = 2000
ZIPF_S = 1.0
P99_LIMIT = 0.100
SIM_SECONDS = 20.0


def cluster_of(channel: str, clusters: Sequence[str]) -> str:
    """The cluster a channel lives on: rendezvous (highest random weight) hashing, so that
    adding a cluster moves only the channels it wins."""
    return max(
        clusters,
        key=lambda name: hashlib.blake2b(f"{name}/{channel}".encode(), digest_size=8).digest(),
    )


def zipf_weights(channels: int) -> list[float]:
    """Each channel's share of the events, busiest first (Zipf, s = ZIPF_S)."""
    raw = [1 / (rank**ZIPF_S) for rank in range(1, channels + 1)]
    total = sum(raw)
    return [w / total for w in raw]


def _p99_of_queue(rate: float, service: float, fixed: float, seconds: float, seed: int) -> float:
    """p99 of one FIFO single-server queue (Lindley's recursion), Poisson arrivals at
    ``rate``, exponential service of mean ``service``, plus ``fixed`` per event."""
    if rate <= 0:
        return 0.0
    rng = random.Random(seed)
    count = max(200, int(rate * seconds))
    waits = []
    wait = 0.0
    for _ in range(count):
        took = rng.expovariate(1 / service)
        waits.append(wait + took + fixed)
        gap = rng.expovariate(rate)
        wait = max(0.0, wait + took - gap)
    waits.sort()
    return waits[int(0.99 * (len(waits) - 1))]


def _largest_rate(p99_at: Any, high: float) -> float:
    """The largest rate (to 1 %) whose p99 is within the limit; ``p99_at(rate)``."""
    low = 0.0
    while high - low > max(1.0, 0.01 * high):
        middle = (low + high) / 2
        if p99_at(middle) <= P99_LIMIT:
            low = middle
        else:
            high = middle
    return low


def calibrate(limit: float, fixed: float) -> float:
    """The mean service time at which one simulated cluster's p99 is 100 ms at ``limit``."""
    low, high = 1e-6, 1.0 / limit
    for _ in range(30):
        middle = (low + high) / 2
        if _p99_of_queue(limit, middle, fixed, SIM_SECONDS, 1) <= P99_LIMIT:
            low = middle
        else:
            high = middle
    return low


def _shares(clusters: int, placement: str) -> dict[str, float]:
    """Each cluster's part of the events: channels placed by the hash, or ``balanced`` (a
    directory that places the busiest channels first, each on the least loaded cluster)."""
    names = [f"pg{n}" for n in range(clusters)]
    share = dict.fromkeys(names, 0.0)
    for rank, weight in enumerate(zipf_weights(CHANNELS)):
        if placement == "hash":
            share[cluster_of(f"channel-{rank}", names)] += weight
        else:
            share[min(share, key=share.__getitem__)] += weight
    return share


def simulate(limit: float, fixed: float, clusters: int, placement: str = "hash") -> dict[str, Any]:
    service = calibrate(limit, fixed)
    weights = zipf_weights(CHANNELS)
    share = _shares(clusters, placement)

    def p99_at(total: float) -> float:
        return max(
            _p99_of_queue(total * s, service, fixed, SIM_SECONDS, seed)
            for seed, s in enumerate(share.values())
        )

    best = _largest_rate(p99_at, high=limit * clusters * 1.5)
    return {
        "clusters": clusters,
        "limit": round(best),
        "largest_share": round(max(share.values()), 3),
        "evenness": round(max(share.values()) * clusters, 2),  # 1.0: perfectly even
        "hottest_channel_cap": round(limit / weights[0]),
    }


def moved_channels(before: int, after: int) -> float:
    """The fraction of channels that change cluster when going from ``before`` to ``after``."""
    old = [f"pg{n}" for n in range(before)]
    new = [f"pg{n}" for n in range(after)]
    channels = [f"channel-{n}" for n in range(CHANNELS)]
    return sum(cluster_of(c, old) != cluster_of(c, new) for c in channels) / CHANNELS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaling.shards", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--clusters", default="1,2,4,8")
    parser.add_argument("--listeners", type=int, default=16, help="M of the measurement used")
    args = parser.parse_args(argv)
    measured = json.loads(args.results.read_text())
    counts = [int(n) for n in args.clusters.split(",")]
    report: dict[str, Any] = {"source": str(args.results), "kinds": []}
    for entry in measured["bus"]:
        if entry["listeners"] != args.listeners or not entry["limit"]:
            continue
        first = entry["steps"][0]
        fixed = first["p50_ms"] / 1000
        service = calibrate(entry["limit"], fixed)
        check = [
            (s["offered"], s["p99_ms"], _p99_of_queue(s["offered"], service, fixed, 20, 7) * 1000)
            for s in entry["steps"]
        ]
        rows = [simulate(entry["limit"], fixed, k) for k in counts]
        balanced = [simulate(entry["limit"], fixed, k, "balanced") for k in counts]
        report["kinds"].append(
            {
                "kind": entry["kind"],
                "measured_limit": entry["limit"],
                "service_ms": service * 1000,
                "check": check,
                "rows": rows,
                "balanced": balanced,
            }
        )
        print(
            f"\n{entry['kind']}, M={args.listeners}: measured limit {entry['limit']:,}/s; "
            f"calibrated service {service * 1000:.3f} ms, fixed {fixed * 1000:.1f} ms"
        )
        print("  model check, one cluster (offered/s: measured p99 -> simulated p99):")
        for offered, real, simulated in check:
            print(f"    {offered:7,.0f}/s: {real:8.1f} ms -> {simulated:8.1f} ms")
        print(
            "  | clusters | by hash: events/s, every p99 <= 100 ms | x one | largest share x K "
            "| by directory (balanced): events/s | x one | largest share x K |"
        )
        print("  | --- | --- | --- | --- | --- | --- | --- |")
        base = rows[0]["limit"] or 1
        for row, even in zip(rows, balanced, strict=True):
            print(
                f"  | {row['clusters']} | {row['limit']:,} | {row['limit'] / base:.2f} "
                f"| {row['evenness']} | {even['limit']:,} | {even['limit'] / base:.2f} "
                f"| {even['evenness']} |"
            )
        print(
            f"  the busiest channel alone (Zipf, {zipf_weights(CHANNELS)[0]:.1%} of the events) "
            f"caps any K at {rows[0]['hottest_channel_cap']:,}/s"
        )
    moves = {f"{k}->{k + 1}": round(moved_channels(k, k + 1), 3) for k in counts}
    report["moved_on_growth"] = moves
    print(f"\nchannels moved when adding a cluster: {moves}")
    (RESULTS / "shards-latest.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
