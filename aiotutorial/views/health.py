"""``GET /healthz``: is this worker able to serve, and can it reach the database?"""

from __future__ import annotations

import asyncio

from pyramid.request import Request
from pyramid.view import view_config

from ..db import DatabaseUnavailable

HEALTH_TIMEOUT = 3.0


@view_config(route_name="healthz", renderer="json")
async def healthz(request: Request) -> dict:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            await request.db.scalar("SELECT 1")
    except (DatabaseUnavailable, TimeoutError):
        request.response.status = 503
        return {"status": "error", "db": "unavailable"}
    return {"status": "ok", "db": "ok"}


def includeme(config) -> None:
    config.add_route("healthz", "/healthz")
    config.scan(__name__)
