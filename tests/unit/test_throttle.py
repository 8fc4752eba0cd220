"""``Throttle``: token buckets per key with bounded memory, driven by a fake clock.

Time is injected (``clock=``), so every number below is exact: no sleeping, no flakiness.
"""

from __future__ import annotations

import math
import unittest

from aiotutorial.throttle import DEFAULT_MAX_KEYS, Throttle


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ThrottleTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = FakeClock()
        # 5 attempts per 60 s: a burst of 5, then one more every 12 s.
        self.throttle = Throttle.per_window(5, 60, clock=self.clock)

    def test_per_window_means_burst_and_rate(self) -> None:
        self.assertEqual(self.throttle.burst, 5)
        self.assertAlmostEqual(self.throttle.rate, 5 / 60)
        self.assertEqual(self.throttle.max_keys, DEFAULT_MAX_KEYS)

    def test_burst_is_allowed_then_blocked(self) -> None:
        for attempt in range(5):
            self.assertEqual(self.throttle.retry_after("alice"), 0.0, attempt)
            self.assertEqual(self.throttle.consume("alice"), 0.0, attempt)
        self.assertGreater(self.throttle.retry_after("alice"), 0)
        self.assertGreater(self.throttle.consume("alice"), 0)

    def test_a_blocked_attempt_spends_nothing(self) -> None:
        for _ in range(5):
            self.throttle.consume("alice")
        # Hammering while blocked must not push the recovery further away.
        for _ in range(100):
            self.assertAlmostEqual(self.throttle.consume("alice"), 12.0)
        self.clock.advance(12.0)
        self.assertEqual(self.throttle.consume("alice"), 0.0)

    def test_retry_after_is_the_time_until_one_token(self) -> None:
        for _ in range(5):
            self.throttle.consume("alice")
        self.assertAlmostEqual(self.throttle.retry_after("alice"), 12.0)
        self.clock.advance(5.0)
        self.assertAlmostEqual(self.throttle.retry_after("alice"), 7.0)
        # consume() reports the same wait when it refuses.
        self.assertAlmostEqual(self.throttle.consume("alice"), 7.0)

    def test_refills_over_time_up_to_the_burst(self) -> None:
        for _ in range(5):
            self.throttle.consume("alice")
        self.clock.advance(11.9)
        self.assertGreater(self.throttle.consume("alice"), 0)
        self.clock.advance(0.1)
        self.assertEqual(self.throttle.consume("alice"), 0.0)  # one token back after 12 s
        self.assertGreater(self.throttle.consume("alice"), 0)  # and only one
        # A long pause refills to the burst, never beyond it.
        self.clock.advance(3600)
        allowed = 0
        while self.throttle.consume("alice") == 0.0:
            allowed += 1
        self.assertEqual(allowed, 5)

    def test_keys_are_independent(self) -> None:
        for _ in range(5):
            self.throttle.consume("alice")
        self.assertGreater(self.throttle.retry_after("alice"), 0)
        self.assertEqual(self.throttle.retry_after("bob"), 0.0)
        self.assertEqual(self.throttle.consume("bob"), 0.0)

    def test_retry_after_does_not_consume(self) -> None:
        for _ in range(50):
            self.assertEqual(self.throttle.retry_after("alice"), 0.0)
        for _ in range(5):
            self.assertEqual(self.throttle.consume("alice"), 0.0)
        self.assertEqual(len(self.throttle), 1)

    def test_reset_gives_a_full_bucket(self) -> None:
        for _ in range(5):
            self.throttle.consume("alice")
        self.throttle.reset("alice")
        self.assertEqual(self.throttle.retry_after("alice"), 0.0)
        self.assertEqual(len(self.throttle), 0)
        for _ in range(5):
            self.assertEqual(self.throttle.consume("alice"), 0.0)
        self.assertGreater(self.throttle.consume("alice"), 0)
        self.throttle.reset("never-seen")  # resetting an unknown key is harmless
        self.assertEqual(len(self.throttle), 1)

    def test_memory_is_bounded_by_max_keys(self) -> None:
        throttle = Throttle.per_window(3, 60, max_keys=1000, clock=self.clock)
        for number in range(100_000):
            throttle.consume(f"key-{number}")
            if number % 10_000 == 0:
                self.assertLessEqual(len(throttle), 1000)
        self.assertEqual(len(throttle), 1000)
        # The default bound holds too.
        default = Throttle.per_window(3, 60, clock=self.clock)
        for number in range(100_000):
            default.consume(f"key-{number}")
        self.assertEqual(len(default), DEFAULT_MAX_KEYS)

    def test_the_least_recently_used_key_is_forgotten_first(self) -> None:
        throttle = Throttle.per_window(2, 60, max_keys=3, clock=self.clock)
        for key in ("a", "b", "c"):
            throttle.consume(key)
        throttle.consume("a")  # "a" is now blocked and the most recently used
        self.assertGreater(throttle.retry_after("a"), 0)
        throttle.consume("d")  # evicts "b", the least recently used
        self.assertEqual(len(throttle), 3)
        self.assertGreater(throttle.retry_after("a"), 0, "the busy key must be kept")
        # "b" was forgotten: it starts again with a full bucket (2 attempts).
        self.assertEqual(throttle.consume("b"), 0.0)
        self.assertEqual(throttle.consume("b"), 0.0)
        self.assertGreater(throttle.consume("b"), 0)

    def test_invalid_arguments_are_refused(self) -> None:
        cases = {
            "zero rate": lambda: Throttle(0, 5),
            "negative rate": lambda: Throttle(-1, 5),
            "zero burst": lambda: Throttle(1, 0),
            "negative burst": lambda: Throttle(1, -3),
            "zero max_keys": lambda: Throttle(1, 5, max_keys=0),
            "no attempts per window": lambda: Throttle.per_window(0, 60),
            "negative window": lambda: Throttle.per_window(5, -60),
            "infinite window": lambda: Throttle.per_window(5, math.inf),
        }
        for name, make in cases.items():
            with self.subTest(name):
                with self.assertRaises(ValueError):
                    make()

    def test_a_window_that_is_not_a_positive_number_is_a_value_error(self) -> None:
        # `security.login_window = 0` (or `nan`) in an ini must be refused like every other bad
        # value: today 0 crashes the app factory with ZeroDivisionError, and NaN makes a
        # throttle that never blocks.
        cases = {
            "zero window": lambda: Throttle.per_window(5, 0),
            "NaN window": lambda: Throttle.per_window(5, math.nan),
            "NaN rate": lambda: Throttle(math.nan, 5),
        }
        for name, make in cases.items():
            with self.subTest(name):
                with self.assertRaises(ValueError):
                    make()

    def test_the_real_clock_is_the_default(self) -> None:
        throttle = Throttle(1000.0, 1)
        self.assertEqual(throttle.consume("k"), 0.0)
        wait = throttle.consume("k")
        self.assertGreater(wait, 0)
        self.assertLessEqual(wait, 0.001)


if __name__ == "__main__":
    unittest.main()
