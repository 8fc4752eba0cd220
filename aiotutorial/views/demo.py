"""Chapter one of the tutorial: the websocket echo and the page that tests it."""

from __future__ import annotations

import asyncio
import math

from pyramid.httpexceptions import HTTPBadRequest
from pyramid.request import Request
from pyramid.view import view_config

from ..aio import WebsocketConnection, WebsocketMapper

MAX_SLEEP = 10.0


def parse_sleep(raw: str | None) -> float:
    """The ``?sleep=`` seconds: a number from 0 to 10."""
    if raw is None or raw == "":
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_SLEEP:
        raise HTTPBadRequest(f"sleep must be a number of seconds from 0 to {MAX_SLEEP:g}.")
    return seconds


@view_config(route_name="demo", renderer="aiotutorial:templates/demo.jinja2")
async def demo(request: Request) -> dict:
    """The tutorial's test page; ``?sleep=N`` waits N seconds on the loop before answering."""
    seconds = parse_sleep(request.GET.get("sleep"))
    if seconds:
        await asyncio.sleep(seconds)
    return {"title": "aiotutorial websocket test", "slept": seconds}


@view_config(route_name="echo", mapper=WebsocketMapper)
async def echo(ws: WebsocketConnection) -> None:
    """Send every message back as it came, text as text and bytes as bytes."""
    async for message in ws:
        await ws.send(message)


def includeme(config) -> None:
    config.add_route("demo", "/demo")
    config.add_route("echo", "/echo")
    config.scan(__name__)
