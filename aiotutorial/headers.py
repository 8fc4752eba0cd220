"""Security headers on every response: what a browser may load, frame, sniff, refer and store.

The pages load their scripts as modules from /static and have no inline script, handler or
style attribute, so the Content-Security-Policy can be strict. It goes on every answer, not
only on pages: a JSON answer or a static file opened in a tab is a document too, and one
framed by another site is as much a clickjacking target as a page. HSTS is sent when
``security.hsts`` is set (production.ini sets it: the site is served over https there).

A page that holds the session's CSRF token (its forms, or the meta tag the scripts read) must
not be stored by a browser's or a proxy's cache, where whoever uses the machine or the cache
next could read the token: such answers get ``Cache-Control: no-store``. The token is put in a
page by reading ``request.csrf_token`` (the templates do), which keeps it on the request.
"""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response

__all__ = ["CONTENT_SECURITY_POLICY", "security_headers_tween", "holds_csrf_token"]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def holds_csrf_token(request: Request) -> bool:
    """Was the CSRF token read for this request's answer? ``request.csrf_token`` is reified:
    once read, it is in the request's ``__dict__``."""
    return "csrf_token" in request.__dict__


def security_headers_tween(handler: Any, registry: Any) -> Any:
    hsts = registry.settings.get("security.hsts", "").strip()

    def tween(request: Request) -> Response:
        response = handler(request)
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
        if holds_csrf_token(request):
            # Whatever the view asked for: a stored copy of the token outlives the session.
            headers["Cache-Control"] = "no-store"
        if hsts:
            headers.setdefault("Strict-Transport-Security", hsts)
        return response

    return tween


def includeme(config: Any) -> None:
    config.add_tween("aiotutorial.headers.security_headers_tween")
