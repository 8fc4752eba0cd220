"""The ramp: for one kind of event and M listening workers, offer more and more events a
second until the delivery p99 passes 100 ms (or the database stops keeping up); the limit is
the last rate that passed, narrowed down between it and the first that failed.

Each step: the publishers start on a schedule; after a warm-up, a window during which what
is scheduled is counted; then the coordinator waits until every listener has read every
committed event of the window (or gives up: those count as missing). A step passes when the
p99 of every delivery (event x listener) is at most 100 ms, at least 97 % of the offered
events were committed in time, none failed and none went missing. The machine is shared:
each step waits (bounded) for the rest of the machine to go quiet, and a step during which
other processes used over half a core is run again (once; the least disturbed run
is kept, and its CPU readings say how disturbed it was).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg2

from harness.procfs import cpu_seconds, machine_cpu_seconds, process_tree
from harness.stats import Histogram

from .load import listen, publish

__all__ = ["Bench", "Step", "RATES", "P99_LIMIT"]

P99_LIMIT = 0.100
RATES = [250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000, 6000, 8000, 10000]
PUBLISHER_PROCESSES = 2
THREADS_PER_PUBLISHER = 4
MAX_LISTENER_PROCESSES = 4
DRAIN_TIMEOUT = 8.0
OTHER_CPU_LIMIT = 0.5  # cores
ATTEMPTS = 2
QUIET_WAIT = 6.0


def _ms(seconds: float | None) -> float:
    """A percentile of harness's Histogram in milliseconds (0 when nothing was counted)."""
    return 0.0 if seconds is None else seconds * 1000


@dataclass
class Step:
    kind: str
    listeners: int
    offered: float  # events/s
    committed: float = 0.0  # events/s scheduled in the window and committed
    delivered: float = 0.0  # deliveries/s (events x listeners)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    commit_p99_ms: float = 0.0
    missing: int = 0
    errors: int = 0
    queue_usage: float = 0.0  # pg_notification_queue_usage() at the window's end
    cpu: dict[str, float] = field(default_factory=dict)  # cores, per party
    passed: bool = False

    def row(self) -> dict[str, Any]:
        return asdict(self)


class Bench:
    """Listeners and publishers for one (kind, M), on the cluster at ``url``."""

    def __init__(
        self,
        url: str,
        postmaster: int,
        kind: str,
        listeners: int,
        targets: list[tuple[str, str]],
        *,
        warmup: float,
        window: float,
        publishers: bool = True,
    ) -> None:
        self.url = url
        self.postmaster = postmaster
        self.kind = kind
        self.m = listeners
        # How many listeners each event reaches (with NOTIFY, all of them).
        self.fanout = listeners
        self.other_pids: dict[str, list[int]] = {}  # more parties whose CPU is counted
        self.warmup = warmup
        self.window = window
        context = multiprocessing.get_context("spawn")
        procs = min(listeners, MAX_LISTENER_PROCESSES)
        shares = [listeners // procs + (1 if i < listeners % procs else 0) for i in range(procs)]
        self.listeners = []
        first = 0
        for share in shares:
            mine, theirs = context.Pipe()
            target, args = self.listener_process(first, share)
            process = context.Process(target=target, args=(*args, theirs), daemon=True)
            process.start()
            self.listeners.append((process, mine))
            first += share
        self.publishers = []
        for i in range(PUBLISHER_PROCESSES if publishers else 0):
            mine, theirs = context.Pipe()
            target, args = self.publisher_process(targets[i::PUBLISHER_PROCESSES])
            process = context.Process(target=target, args=(*args, theirs), daemon=True)
            process.start()
            self.publishers.append((process, mine))
        for _process, pipe in self.listeners + self.publishers:
            if not pipe.poll(60) or pipe.recv() != "ready":
                raise RuntimeError("a load process did not start")
        self.probe = psycopg2.connect(url)
        self.probe.autocommit = True

    def listener_process(self, first: int, count: int) -> tuple[Any, tuple[Any, ...]]:
        """What a listening process runs (its pipe last): ``count`` listeners, the first
        numbered ``first``."""
        return listen, (self.url, count)

    def publisher_process(self, targets: list[tuple[str, str]]) -> tuple[Any, tuple[Any, ...]]:
        """What a publishing process runs (its pipe last), for its share of ``targets``."""
        return publish, (self.url, self.kind, THREADS_PER_PUBLISHER, targets)

    def close(self) -> None:
        for process, pipe in self.listeners + self.publishers:
            pipe.send(("quit",))
            process.join(10)
            if process.is_alive():
                process.kill()
        self.probe.close()

    def _our_pids(self) -> dict[str, list[int]]:
        return {
            "postgresql": process_tree(self.postmaster),
            "listeners": [p.pid for p, _ in self.listeners if p.pid],
            "publishers": [p.pid for p, _ in self.publishers if p.pid],
            **self.other_pids,
        }

    def step(self, rate: float) -> Step:
        """One step; run again (up to ``ATTEMPTS`` in all) while other processes of the
        machine used over ``OTHER_CPU_LIMIT`` during its window; the least disturbed kept."""
        tries: list[Step] = []
        for _attempt in range(ATTEMPTS):
            self._wait_for_quiet()
            tries.append(self._step(rate))
            if tries[-1].cpu.get("others", 0.0) <= OTHER_CPU_LIMIT:
                break
        return min(tries, key=lambda s: s.cpu.get("others", 0.0))

    def _wait_for_quiet(self) -> None:
        """Wait (up to ``QUIET_WAIT`` s) until the rest of the machine uses under
        ``OTHER_CPU_LIMIT`` cores."""
        deadline = time.time() + QUIET_WAIT
        while time.time() < deadline:
            pids = [pid for group in self._our_pids().values() for pid in group]
            ours, machine = cpu_seconds(pids), machine_cpu_seconds()
            time.sleep(0.5)
            others = (machine_cpu_seconds() - machine) - (cpu_seconds(pids) - ours)
            if others / 0.5 <= OTHER_CPU_LIMIT:
                return

    def _step(self, rate: float) -> Step:
        begin = time.time() + 0.3
        start, end = begin + self.warmup, begin + self.warmup + self.window
        for _process, pipe in self.listeners:
            pipe.send(("window", start, end))
        for _process, pipe in self.publishers:
            pipe.send(("step", rate / len(self.publishers), begin, start, end))
        time.sleep(max(0.0, start - time.time()))
        pids = self._our_pids()
        before = {name: cpu_seconds(p) for name, p in pids.items()}
        machine_before = machine_cpu_seconds()
        time.sleep(max(0.0, end - time.time()))
        cpu = {name: (cpu_seconds(p) - before[name]) / self.window for name, p in pids.items()}
        cpu["others"] = max(
            0.0, (machine_cpu_seconds() - machine_before) / self.window - sum(cpu.values()) - 0.02
        )
        with self.probe.cursor() as cursor:
            cursor.execute("SELECT pg_notification_queue_usage()")
            queue_usage = cursor.fetchone()[0]
        committed = errors = 0
        commit_times = Histogram()
        for _process, pipe in self.publishers:
            done, failed, times = pipe.recv()
            committed, errors = committed + done, errors + failed
            commit_times.merge(Histogram.from_sparse(times))
        expected = committed * self.fanout
        deadline = time.time() + DRAIN_TIMEOUT
        while True:
            delivered, histogram = 0, Histogram()
            for _process, pipe in self.listeners:
                pipe.send(("result",))
            for _process, pipe in self.listeners:
                count, state, _unmarked = pipe.recv()
                delivered += count
                histogram.merge(Histogram.from_sparse(state))
            if delivered >= expected or time.time() > deadline:
                break
            time.sleep(0.1)
        step = Step(
            self.kind,
            self.m,
            rate,
            committed=committed / self.window,
            delivered=delivered / self.window,
            p50_ms=_ms(histogram.percentile(50)),
            p99_ms=_ms(histogram.percentile(99)),
            max_ms=_ms(histogram.percentile(100)),
            commit_p99_ms=_ms(commit_times.percentile(99)),
            missing=max(0, expected - delivered),
            errors=errors,
            queue_usage=queue_usage,
            cpu={name: round(value, 3) for name, value in cpu.items()},
        )
        step.passed = (
            step.p99_ms <= P99_LIMIT * 1000
            and committed >= 0.97 * rate * self.window
            and errors == 0
            and step.missing == 0
        )
        return step

    def ramp(self, rates: list[int], refine: int = 2) -> tuple[list[Step], float]:
        """Every step run, and the limit (events/s): the last rate that passed."""
        steps: list[Step] = []
        good, bad = 0.0, math.inf
        for rate in rates:
            step = self.step(rate)
            steps.append(step)
            self._report(step)
            if not step.passed:
                bad = rate
                break
            good = rate
            time.sleep(0.5)
        for _ in range(refine if bad < math.inf and good else 0):
            middle = round((good + bad) / 2 / 50) * 50
            if middle in (good, bad):
                break
            step = self.step(middle)
            steps.append(step)
            self._report(step)
            if step.passed:
                good = middle
            else:
                bad = middle
        return steps, good

    def _report(self, step: Step) -> None:
        verdict = "ok" if step.passed else "FAIL"
        cpu = " ".join(f"{name} {value:.2f}" for name, value in step.cpu.items())
        print(
            f"  {step.kind:7} M={step.listeners:<2} offered {step.offered:6.0f}/s "
            f"committed {step.committed:6.0f}/s p50 {step.p50_ms:6.1f} ms "
            f"p99 {step.p99_ms:7.1f} ms missing {step.missing} {verdict} (cpu: {cpu})",
            flush=True,
        )
