"""The bench's harness without a benchmark: the order in which every scenario measures (its loads
stubbed: round i of each server, then round i + 1), the spreads a row carries into the table,
and the layout of bench/ and of harness/ (a module per scenario; small modules and functions,
each module saying what it does).

tests/functional/test_bench_smoke.py runs the benchmarks themselves, on tiny sizes.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import importlib
import unittest
from types import SimpleNamespace
from typing import Any
from unittest import mock

from harness.paths import PROJECT_ROOT


def _summary(rps: float) -> dict[str, Any]:
    return {
        "rps": rps,
        "latency_us": {"p50": 1000, "p99": 2000},
        "requests": 10,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
    }


class InterleavingTest(unittest.TestCase):
    """Each scenario's measurement order, with the loads stubbed: the two servers of every
    ratio alternate (round i of each, then round i + 1), and the figures carry their spread."""

    def context(self, **changes: Any) -> Any:
        from bench.scenarios import PROFILES, Context

        profile = dataclasses.replace(PROFILES["smoke"], **changes)
        return Context(profile=profile, database_url="", generator="wrk", say=lambda text: None)

    def test_http_rounds_alternate_after_one_warm_up_each(self) -> None:
        from bench.scenarios import httprun

        calls: list[tuple[str, int]] = []

        def load(url: str, **options: Any) -> dict[str, Any]:
            calls.append((url.rsplit("/", 1)[1], options["duration"]))
            return _summary(100.0 * len(calls))

        targets = {"app": "http://127.0.0.1:9/app", "raw": "http://127.0.0.1:9/raw"}
        with mock.patch.object(httprun, "run_load", load):
            result = httprun.measure_http(
                self.context(), "x", targets, connections=1, duration=2, runs=3, warmup=1
            )
        order = [("app", 1), ("raw", 1)] + [("app", 2), ("raw", 2)] * 3
        self.assertEqual(calls, order)
        app = result["servers"]["app"]
        self.assertEqual(app["rps_runs"], [300.0, 500.0, 700.0])
        self.assertEqual((app["rps"], app["rps_min"], app["rps_max"]), (500.0, 300.0, 700.0))

    def test_fanout_runs_alternate_at_each_rate(self) -> None:
        fanout = importlib.import_module("bench.scenarios.fanout")  # the package exports fanout()

        calls: list[tuple[str, int, str]] = []

        async def run(group: Any, rate: int, ctx: Any, tag: str) -> dict[str, Any]:
            calls.append((group.kind, rate, tag))
            return {
                "p50_ms": 1.0,
                "p99_ms": 2.0,
                "deliveries_per_s": 3.0,
                "deliveries": 1,
                "expected": 1,
            }

        groups = {kind: SimpleNamespace(kind=kind) for kind in ("app", "raw")}
        ctx = self.context(fanout_rates=(10, 100), fanout_runs=2)
        with mock.patch.object(fanout, "fanout_run", run):
            asyncio.run(fanout._measure(ctx, groups))
        measured = [(kind, rate) for kind, rate, tag in calls if tag != "warm"]
        self.assertEqual(calls[:2], [("app", 50, "warm"), ("raw", 50, "warm")])
        self.assertEqual(
            measured, [("app", 10), ("raw", 10)] * 2 + [("app", 100), ("raw", 100)] * 2
        )

    def test_capacity_broadcasts_alternate(self) -> None:
        capacity = importlib.import_module("bench.scenarios.capacity")

        calls: list[str] = []

        async def broadcast(group: Any, marker: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
            calls.append(group.kind)
            return {"got": 1, "of": 1, "seconds": 0.001 * len(calls)}

        async def quiet(ctx: Any, pid: int) -> float:
            return 0.0

        groups = {
            kind: SimpleNamespace(kind=kind, target=SimpleNamespace(pid=0))
            for kind in ("app", "raw")
        }
        with (
            mock.patch.object(capacity, "broadcast", broadcast),
            mock.patch.object(capacity, "_quiet", quiet),
        ):
            done = asyncio.run(capacity._broadcasts(self.context(capacity_broadcasts=3), groups))
        self.assertEqual(calls, ["app", "raw"] * 3)
        held = {"base": 1000, "rss": 2000, "settle": 0.0, "other_frames": 0}
        group = SimpleNamespace(
            ok=10,
            failed=0,
            failures={},
            connect_seconds=1.0,
            procs=[],
            target=SimpleNamespace(server=SimpleNamespace(nofile_limit=lambda: None)),
        )
        result = capacity._result(group, held, done["app"])
        self.assertEqual((result["broadcast_ms_min"], result["broadcast_ms_max"]), (1.0, 5.0))
        self.assertEqual(result["kb_per_connection"], 100.0)

    def test_stroke_and_chat_windows_alternate(self) -> None:
        from bench.strokes.windows import Windows

        kinds: list[str] = []

        async def measure(kind: str) -> dict[str, Any]:
            kinds.append(kind)
            return {
                "p50_ms": 1.0,
                "p99_ms": 2.0,
                "delivered": 1,
                "expected": 1,
                "sent_rate": 25,
                "loop_lag_p99_ms": 0.1,
                "errors": 0,
            }

        bench = Windows()
        bench.profile = SimpleNamespace(quiet_timeout=0, extra_runs=0)  # type: ignore[assignment]
        bench.ctx = SimpleNamespace(say=lambda text: None)  # type: ignore[assignment]
        done = asyncio.run(bench.windows(["strokes", "chat"], 3, measure))
        self.assertEqual(kinds, ["strokes", "chat"] * 3)
        self.assertEqual([len(done["strokes"]), len(done["chat"])], [3, 3])

    def test_rows_carry_the_spread_and_the_table_prints_it(self) -> None:
        from bench import report

        ctx = self.context()
        row = ctx.row(
            "1 x",
            "f",
            2.0,
            "req/s",
            "ref",
            2.0,
            runs=[1.0, 2.0, 3.0],
            reference_runs=[2.0, 2.0, 2.0],
            ratio_target=1.0,
        )
        self.assertEqual((row["value_min"], row["value_max"], row["value_runs"]), (1.0, 3.0, 3))
        self.assertEqual((row["ratio_min"], row["ratio_max"]), (0.5, 1.5))
        self.assertIn("2.00 req/s [1.00-3.00]", report.table(ctx.rows))
        self.assertIn("1.00x [0.50-1.50]", report.table(ctx.rows))


# Every module of the benchmark and of the shared server package: a docstring, at most this
# many lines, and no function longer than that.
MAX_MODULE_LINES = 300


MAX_FUNCTION_LINES = 60


class LayoutTest(unittest.TestCase):
    """A module per scenario; small modules and functions, each module saying what it does."""

    def test_a_module_per_scenario(self) -> None:
        for name in ("bridge", "sync_pyramid", "db_json", "fanout", "capacity", "common"):
            with self.subTest(module=name):
                module = importlib.import_module(f"bench.scenarios.{name}")
                self.assertTrue(module.__doc__)
        for name in ("part", "delivery", "capacity", "meter", "bus", "listener", "report"):
            with self.subTest(module=name):
                self.assertTrue(importlib.import_module(f"bench.strokes.{name}").__doc__)
        import bench.scenarios
        import bench.strokes

        for package in (bench.scenarios, bench.strokes):
            for name in package.__all__:
                self.assertTrue(hasattr(package, name), name)

    def test_sizes_and_docstrings(self) -> None:
        paths = sorted((PROJECT_ROOT / "bench").rglob("*.py"))
        paths += sorted((PROJECT_ROOT / "harness").rglob("*.py"))
        for path in paths:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
            with self.subTest(module=str(path.relative_to(PROJECT_ROOT))):
                self.assertTrue(ast.get_docstring(tree))
                self.assertLessEqual(text.count("\n"), MAX_MODULE_LINES)
                for node in ast.walk(tree):
                    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                        length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                        self.assertLessEqual(length, MAX_FUNCTION_LINES, node.name)


if __name__ == "__main__":
    unittest.main()
