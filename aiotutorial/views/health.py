"""``GET /healthz``: is this worker able to serve: can it reach the database, and does it hear
the bus?

The database down is an error (503): nothing can be served. The bus down (Redis away) is
``"degraded"`` with a 200: history, pages and sends still work (messages are stored and
acknowledged), only live delivery to the other workers waits until the bus is back, and a
load balancer must not take every instance out at once for it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from ..db import DatabaseUnavailable
from ..realtime import get_hub

HEALTH_TIMEOUT = 3.0


@view_config(route_name="healthz", renderer="json")
async def healthz(request: Request) -> dict[str, Any]:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            await request.db.scalar("SELECT 1")
    except (DatabaseUnavailable, TimeoutError):
        request.response.status = 503
        return {"status": "error", "db": "unavailable"}
    try:
        bus_heard = get_hub(request.registry).bus.connected.is_set()
    except RuntimeError:
        bus_heard = False  # the hub is not running (yet): nothing is heard
    if not bus_heard:
        return {"status": "degraded", "db": "ok", "bus": "unavailable"}
    return {"status": "ok", "db": "ok", "bus": "ok"}


def includeme(config: Any) -> None:
    config.add_route("healthz", "/healthz")
    config.scan(__name__)
