"""The hub's registries refuse what would let one feature silently take another's: two streams
with one name, one query parameter or one ``ready`` field; two handlers for one frame type.
A feature plugs in through them alone (``aiotutorial.pins`` does: its stream and frames sit
beside the chat's and the game's)."""

from __future__ import annotations

import unittest
from typing import Any

from aiotutorial.chat import ChatFeature
from aiotutorial.game import GameFeature
from aiotutorial.pins import PinsFeature
from aiotutorial.realtime import Hub, PositionedStream, Stream


class _Engine:
    def acquire(self) -> Any:
        raise AssertionError("no database here")


def stream(name: str, params: tuple[str, ...] = (), ready: tuple[str, ...] = ()) -> type:
    return type(name, (Stream,), {"name": name, "params": params, "ready_keys": ready})


class RegistryTests(unittest.TestCase):
    def setUp(self) -> None:
        self.hub = Hub(_Engine(), "", {})  # type: ignore[arg-type]

    def test_streams_keep_their_names_parameters_and_ready_fields_apart(self) -> None:
        self.hub.add_stream(stream("one", ("after",), ("last_id",))(self.hub))
        self.hub.add_stream(stream("two", ("changes",), ("changes",))(self.hub))
        self.assertEqual(self.hub.stream_params, ["after", "changes"])
        for clash in (
            stream("one"),
            stream("three", ("after",)),
            stream("three", (), ("last_id",)),
            stream("three", (), ("user",)),  # the ready frame's own
        ):
            with self.subTest(clash=clash.__name__), self.assertRaises(ValueError):
                self.hub.add_stream(clash(self.hub))
        self.assertEqual([s.name for s in self.hub.streams], ["one", "two"])

    def test_one_handler_a_frame_type_and_visitors_only_where_allowed(self) -> None:
        async def handler(member: Any, frame: dict[str, Any]) -> None: ...

        self.hub.on_frame("look", handler, visitors=True)
        self.hub.on_frame("touch", handler)
        with self.assertRaises(ValueError):
            self.hub.on_frame("look", handler)
        self.assertEqual(self.hub.visitor_frames, {"look"})

    def test_a_third_feature_plugs_in_beside_the_others(self) -> None:
        hub = self.hub
        for factory in (ChatFeature, GameFeature, PinsFeature):
            hub.features[factory.name] = factory(hub)
        self.assertEqual(hub.stream_params, ["after", "changes", "pins"])
        self.assertIn("pin", hub.frame_handlers)
        self.assertIsInstance(hub.features["pins"].stream, PositionedStream)
        self.assertIn("pin.changed", hub.handlers)


if __name__ == "__main__":
    unittest.main()
