"""The front page: a welcome until the chat lobby takes its place."""

from __future__ import annotations

from pyramid.request import Request
from pyramid.view import view_config


@view_config(route_name="home", renderer="aiotutorial:templates/home.jinja2")
async def home(request: Request) -> dict:
    return {"title": "aiotutorial"}


def includeme(config) -> None:
    config.add_route("home", "/")
    config.scan(__name__)
