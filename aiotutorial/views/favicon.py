"""``GET /favicon.ico``: the site's icon where clients look for it without reading the page.

Pages name ``static/favicon.svg`` in their ``<link rel="icon">``; feed readers, bookmarks and
some browsers ask ``/favicon.ico`` anyway. The icon is read once, when the app is configured
(not on the event loop), and served from memory with a day's caching.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from pyramid.request import Request
from pyramid.response import Response

ICON_MAX_AGE = 86400


def includeme(config: Any) -> None:
    icon = resources.files("aiotutorial").joinpath("static/favicon.svg").read_bytes()

    async def favicon(request: Request) -> Response:
        response = Response(body=icon, content_type="image/svg+xml")
        response.cache_control.max_age = ICON_MAX_AGE
        response.cache_control.public = True
        return response

    config.add_route("favicon", "/favicon.ico")
    config.add_view(favicon, route_name="favicon", request_method=("GET", "HEAD"))
