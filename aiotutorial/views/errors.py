"""Error pages: clear messages for what users cause, nothing internal for what we cause."""

from __future__ import annotations

import logging
from typing import Any

from pyramid.exceptions import URLDecodeError
from pyramid.httpexceptions import HTTPBadRequest, HTTPInternalServerError
from pyramid.request import Request
from pyramid.tweens import EXCVIEW
from pyramid.view import exception_view_config

log = logging.getLogger(__name__)


@exception_view_config(URLDecodeError)
async def undecodable_url(exc: URLDecodeError, request: Request) -> HTTPBadRequest:
    return HTTPBadRequest("The URL is not valid UTF-8.")


@exception_view_config(UnicodeDecodeError)
async def undecodable_input(exc: UnicodeDecodeError, request: Request) -> HTTPBadRequest:
    """Form data or a query string that is not UTF-8."""
    return HTTPBadRequest("The request is not valid UTF-8.")


@exception_view_config(DeprecationWarning)
async def non_utf8_form(exc: DeprecationWarning, request: Request) -> object:
    """WebOb refuses (with a DeprecationWarning) to decode forms in a charset other than UTF-8."""
    if (request.charset or "UTF-8").upper() != "UTF-8":
        return HTTPBadRequest("Forms must be sent in UTF-8.")
    return await unexpected_error(exc, request)


@exception_view_config(Exception)
async def unexpected_error(exc: Exception, request: Request) -> HTTPInternalServerError:
    """A bug: log it with its context, answer 500 with no detail (HTML or JSON by Accept)."""
    # Raw environ values: decoding the path again could fail in the very error being handled.
    environ = request.environ
    log.error(
        "unhandled error in %s %s?%s",
        environ.get("REQUEST_METHOD"),
        environ.get("PATH_INFO"),
        environ.get("QUERY_STRING"),
        exc_info=exc,
    )
    return HTTPInternalServerError("Something went wrong on our side; it has been logged.")


_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def form_body_tween(handler: Any, registry: Any) -> Any:
    """Read a posted form before anything else does (the CSRF check, a view), so that a body
    WebOb cannot parse (a multipart without a boundary, say) is a 400, not a 500 from
    whichever code touched ``request.POST`` first. Undecodable text keeps its own 400s
    (the exception views above)."""

    def tween(request: Request) -> Any:
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.content_type in _FORMS:
            try:
                request.POST  # noqa: B018 - parsed once, kept by WebOb for later
            except UnicodeDecodeError:
                raise
            except ValueError:
                raise HTTPBadRequest("The form in the request body could not be read.") from None
        return handler(request)

    return tween


def includeme(config) -> None:
    config.scan(__name__)
    config.add_tween("aiotutorial.views.errors.form_body_tween", under=EXCVIEW)
