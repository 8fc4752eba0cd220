"""aiotutorial: the Aiopyramid tutorial's application on an asyncio Pyramid stack."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.router import Router

from .jsontext import JSONRenderer
from .request import use_app_request


def main(global_config: dict[str, Any], **settings: Any) -> Router:
    """The paste app factory: ``[app:main] use = egg:aiotutorial``."""
    with Configurator(settings=settings) as config:
        use_app_request(config)
        # The JSON answers with orjson (aiotutorial.jsontext): the page every client reads first
        # (a channel's history) spent most of its encoding time in json.dumps.
        config.add_renderer("json", JSONRenderer)
        config.include("aiotutorial.aio")
        config.include("pyramid_jinja2")
        config.include(".jinja")
        config.include(".db")
        config.include(".accounts")
        config.include(".resources")
        config.add_static_view("static", "aiotutorial:static", cache_max_age=3600)
        config.include(".headers")
        config.include(".views.protocol")
        config.include(".views.errors")
        config.include(".views.health")
        config.include(".views.favicon")
        config.include(".realtime")
        config.include(".chat")
        config.include(".game")
        config.include(".pins")
        config.include(".access")
        config.include(".moderation")
        config.include(".views.channels")
        config.include(".views.access")
        config.include(".views.search")
        config.include(".views.uploads")
        config.include(".views.avatars")
        config.include(".views.moderation")
        config.include(".views.game")
        config.include(".views.demo")
    return config.make_wsgi_app()
