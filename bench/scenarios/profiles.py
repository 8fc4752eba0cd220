"""The sizes of ``make bench``'s scenarios: the full, quick and smoke profiles.

A ``Profile`` says how long and how often each scenario loads its servers (warm-up, run length,
runs per server, which are interleaved), and how big its websocket populations are. ``full`` is
``make bench`` (about 20 minutes on 2 cores), ``quick`` is ``make bench QUICK=1`` (fewer and
shorter runs, smaller sizes), ``smoke`` the tiny sizes tests/functional/test_bench_smoke.py runs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Profile", "PROFILES"]


@dataclass
class Profile:
    name: str
    http_warmup: int  # seconds of load before the measured runs (0: none)
    http_duration: int
    http_runs: int
    db_runs: int  # runs per server of the history JSON (each worker count)
    slow_warmup: int
    slow_duration: int
    slow_runs: int
    slow_connections: int
    db_workers: tuple[int, ...]
    seed_messages: int
    fanout_clients: int
    fanout_procs: int
    fanout_rates: tuple[int, ...]
    fanout_duration: float
    fanout_runs: int
    fanout_max_deliveries: int  # a run sends at most this many deliveries' worth
    drain_timeout: float
    capacity_sockets: int
    capacity_procs: int
    capacity_broadcasts: int
    connect_timeout: float
    quiet_timeout: float
    http_connections: int = 50
    connect_concurrency: int = 25
    fresh_capacity_server: bool = True
    quiet_interval: float = 0.5  # a server is quiet after two such intervals at < 5 % CPU
    # Seconds of /proc sampling before each scenario (the other processes' CPU) and before
    # the run (the busy-machine check).
    machine_sample: float = 1.0
    busy_sample: float = 2.0
    # The write path (scenario 7): seconds each round sends, rounds per server and shape.
    writes_seconds: float = 4.0
    writes_runs: int = 3
    # Search (scenario 8): messages in its own database, rounds of every query, and whether
    # GET /search is timed too (on a server of its own).
    search_messages: int = 1_000_000
    search_runs: int = 50
    search_http: bool = True
    # Uploads (scenario 10): concurrent uploaders, seconds each round uploads, rounds per kind.
    upload_clients: int = 8
    upload_seconds: float = 4.0
    upload_runs: int = 3
    # Connects (scenario 11): sockets opened at once per run, runs per server.
    connects_sockets: int = 3000
    connects_runs: int = 3


PROFILES = {
    "full": Profile(
        name="full",
        http_warmup=2,
        http_duration=3,
        http_runs=5,
        db_runs=5,
        slow_warmup=2,
        slow_duration=10,
        slow_runs=3,
        slow_connections=500,
        db_workers=(1, 2, 4),
        seed_messages=5000,
        fanout_clients=1000,
        fanout_procs=2,
        fanout_rates=(10, 100, 500),
        fanout_duration=3.0,
        fanout_runs=3,
        fanout_max_deliveries=200_000,
        drain_timeout=60.0,
        capacity_sockets=10_000,
        capacity_procs=4,
        capacity_broadcasts=3,
        connect_timeout=300.0,
        quiet_timeout=120.0,
    ),
    "quick": Profile(
        name="quick",
        http_warmup=1,
        http_duration=1,
        http_runs=3,
        db_runs=2,
        slow_warmup=1,
        slow_duration=3,
        slow_runs=1,
        slow_connections=500,
        db_workers=(1, 2, 4),
        seed_messages=5000,
        fanout_clients=200,
        fanout_procs=1,
        fanout_rates=(10, 100, 500),
        fanout_duration=1.0,
        fanout_runs=1,
        fanout_max_deliveries=30_000,
        drain_timeout=15.0,
        capacity_sockets=1000,
        capacity_procs=2,
        capacity_broadcasts=2,
        connect_timeout=60.0,
        quiet_timeout=20.0,
        quiet_interval=0.3,
        writes_seconds=2.0,
        writes_runs=1,
        search_messages=100_000,
        search_runs=20,
        upload_clients=4,
        upload_seconds=2.0,
        upload_runs=1,
        connects_sockets=1000,
        connects_runs=2,
    ),
    "smoke": Profile(
        name="smoke",
        http_warmup=0,
        http_duration=1,
        http_runs=1,
        db_runs=1,
        slow_warmup=0,
        slow_duration=1,
        slow_runs=1,
        slow_connections=100,
        db_workers=(1,),
        seed_messages=200,
        fanout_clients=10,
        fanout_procs=1,
        fanout_rates=(10, 100),
        fanout_duration=0.3,
        fanout_runs=1,
        fanout_max_deliveries=10_000,
        drain_timeout=5.0,
        capacity_sockets=50,
        capacity_procs=1,
        capacity_broadcasts=1,
        connect_timeout=20.0,
        quiet_timeout=3.0,
        http_connections=20,
        fresh_capacity_server=False,
        quiet_interval=0.2,
        machine_sample=0.3,
        busy_sample=0.5,
        writes_seconds=0.5,
        writes_runs=1,
        search_messages=2000,
        search_runs=5,
        upload_clients=2,
        upload_seconds=0.5,
        upload_runs=1,
        connects_sockets=60,
        connects_runs=1,
    ),
}
