"""``GET /channels/{name}/pins``: the channel's pinned messages now (JSON)."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from ..resources import Channel
from . import store


@view_config(
    route_name="channel",
    context=Channel,
    name="pins",
    request_method="GET",
    renderer="json",
    permission="view",
)
async def channel_pins(context: Channel, request: Request) -> dict[str, Any]:
    """``{"pins": [{"message": {...}, "by": "alice", "time": ...}], "position": P}``: the
    last pinned first; ``position`` is where a socket's ``?pins=`` goes on from."""
    position = await store.latest(request.db, context.name)
    return {"pins": await store.pinned(request.db, context.name), "position": position}
