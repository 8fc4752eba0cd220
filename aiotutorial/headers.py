"""Security headers on every response: what a browser may load, frame, sniff and refer.

The pages load their scripts as modules from /static and have no inline script, handler or
style attribute, so the Content-Security-Policy can be strict. HSTS is sent when
``security.hsts`` is set (production.ini sets it: the site is served over https there).
"""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response

__all__ = ["CONTENT_SECURITY_POLICY", "security_headers_tween"]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def security_headers_tween(handler: Any, registry: Any) -> Any:
    hsts = registry.settings.get("security.hsts", "").strip()

    def tween(request: Request) -> Response:
        response = handler(request)
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if (response.content_type or "").startswith("text/html"):
            headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            headers.setdefault("X-Frame-Options", "DENY")
        if hsts:
            headers.setdefault("Strict-Transport-Security", hsts)
        return response

    return tween


def includeme(config: Any) -> None:
    config.add_tween("aiotutorial.headers.security_headers_tween")
