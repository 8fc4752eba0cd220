"""aiotutorial.jinja: the templates read a dict's keys first, and everything else as Jinja2."""

from __future__ import annotations

import unittest
from typing import Any

from jinja2 import Undefined
from pyramid.config import Configurator
from pyramid_jinja2 import IJinja2Environment

from aiotutorial.jinja import dict_first_getattr


class Thing:
    name = "an attribute"


def environment_of(*includes: str) -> Any:
    config = Configurator(settings={})
    for name in ("pyramid_jinja2", *includes):
        config.include(name)
    config.commit()
    return config.registry.getUtility(IJinja2Environment, name=".jinja2")


class DictFirstTests(unittest.TestCase):
    def setUp(self) -> None:
        self.env = environment_of("aiotutorial.jinja")

    def test_the_apps_environment_reads_a_dicts_key_first(self) -> None:
        # Jinja2's own getattr gives the dict's method; the app's gives the key.
        self.assertIs(environment_of().getattr({"items": 1}, "items").__self__.__class__, dict)
        self.assertEqual(self.env.getattr({"items": 1}, "items"), 1)
        self.assertIsNone(self.env.getattr({"game": None}, "game"))

    def test_anything_else_is_looked_up_as_jinja2_does(self) -> None:
        self.assertEqual(self.env.getattr(Thing(), "name"), "an attribute")
        self.assertEqual(self.env.getattr({"a": 1}, "keys")(), {"a": 1}.keys())
        self.assertIsInstance(self.env.getattr({"a": 1}, "b"), Undefined)
        self.assertIsInstance(self.env.getattr(Thing(), "missing"), Undefined)
        # A dict subclass is left to Jinja2 (its attributes may be properties).
        self.assertEqual(dict_first_getattr(self.env, type("D", (dict,), {})(a=1), "a"), 1)

    def test_a_template_renders_the_same(self) -> None:
        source = (
            "{% for item in channels %}{{ item.name }}:{{ item.online }}"
            "{% if item.game %}+{{ item.game.players }}{% endif %}{{ item.nothing }};{% endfor %}"
        )
        channels = [
            {"name": "a<b", "online": 2, "game": {"players": 3}},
            {"name": "c", "online": 0, "game": None},
        ]
        for env in (self.env, environment_of()):
            template = env.from_string(source)
            self.assertEqual(template.render(channels=channels), "a&lt;b:2+3;c:0;")
