"""The bridge's body limits: ``aio.max_body_size`` for every path, and
``aio.max_body_size_by_path`` for the paths it names (an upload route)."""

from __future__ import annotations

import unittest

from aiotutorial.aio.wsgi import DEFAULT_MAX_BODY_SIZE, BridgeSettings


class BodyLimitTests(unittest.TestCase):
    def test_the_general_limit_without_patterns(self) -> None:
        settings = BridgeSettings({})
        self.assertEqual(settings.body_limit("/channels/lobby/uploads"), DEFAULT_MAX_BODY_SIZE)
        self.assertEqual(settings.largest_body_size, DEFAULT_MAX_BODY_SIZE)

    def test_a_pattern_names_whole_paths_and_a_star_is_one_segment(self) -> None:
        settings = BridgeSettings(
            {
                "aio.max_body_size": "1000",
                "aio.max_body_size_by_path": "\n/channels/*/uploads 5000\n/big 9000\n",
            }
        )
        self.assertEqual(settings.body_limit("/channels/lobby/uploads"), 5000)
        self.assertEqual(settings.body_limit("/big"), 9000)
        self.assertEqual(settings.largest_body_size, 9000)
        for other in (
            "/channels/lobby/messages",
            "/channels/lobby/uploads/1",  # the whole path, not a prefix
            "/channels/a/b/uploads",  # a star is one segment
            "/channels//uploads",
            "/x/channels/lobby/uploads",
            "/bigger",
        ):
            self.assertEqual(settings.body_limit(other), 1000, other)

    def test_patterns_are_not_regular_expressions(self) -> None:
        settings = BridgeSettings({"aio.max_body_size_by_path": "/a.b 10"})
        self.assertEqual(settings.body_limit("/a.b"), 10)
        self.assertEqual(settings.body_limit("/axb"), DEFAULT_MAX_BODY_SIZE)

    def test_a_malformed_line_is_an_error_at_startup(self) -> None:
        for value in ("/uploads", "/uploads ten", "uploads 10", "/uploads 10 20"):
            with self.assertRaises(ValueError, msg=value):
                BridgeSettings({"aio.max_body_size_by_path": value})
