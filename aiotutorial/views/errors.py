"""Error pages: clear messages for what users cause, nothing internal for what we cause."""

from __future__ import annotations

import logging
from typing import Any

from pyramid.exceptions import BadCSRFOrigin, BadCSRFToken, URLDecodeError
from pyramid.httpexceptions import (
    HTTPBadRequest,
    HTTPError,
    HTTPInternalServerError,
    HTTPRequestEntityTooLarge,
    HTTPSeeOther,
)
from pyramid.renderers import render_to_response
from pyramid.request import Request
from pyramid.response import Response
from pyramid.tweens import EXCVIEW
from pyramid.view import exception_view_config

from ..aio.helpers import is_bridge_greenlet, run_awaitable, run_in_executor
from ..aio.websocket import UPGRADE_ENVIRON_KEY
from ..db import DatabaseUnavailable

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
            _check_form_size(request)
            try:
                if is_bridge_greenlet():
                    # A file upload may be megabytes, and a form of many fields costs time to
                    # split: parsed (and spooled) in a thread, never on the event loop.
                    run_awaitable(run_in_executor(None, _read_form, request))
                else:
                    request.POST  # noqa: B018 - parsed once, kept by WebOb for later
            except UnicodeDecodeError:
                raise
            except ValueError:
                raise HTTPBadRequest("The form in the request body could not be read.") from None
        return handler(request)

    return tween


# The app's plain forms (log-in, register, a channel, a conversation) are a few hundred bytes;
# files come as multipart, in few parts (one file and the CSRF token).
FORM_MAX_BYTES = 64 * 1024
MULTIPART_MAX_PARTS = 16


def _check_form_size(request: Request) -> None:
    """Refuse what would cost much to parse before parsing it: an urlencoded form over
    ``FORM_MAX_BYTES`` (the larger body limits of some paths are for files), a multipart body
    of more than ``MULTIPART_MAX_PARTS`` parts (counted with one pass over the bytes)."""
    length = request.content_length or 0
    if request.content_type != "multipart/form-data":
        if length > FORM_MAX_BYTES:
            raise HTTPRequestEntityTooLarge(
                f"A form may have at most {FORM_MAX_BYTES // 1024} kB; send files as multipart."
            )
        return
    boundary = _boundary(request.headers.get("Content-Type", ""))
    if boundary and request.body.count(b"--" + boundary) > MULTIPART_MAX_PARTS + 1:
        raise HTTPBadRequest(f"A form may have at most {MULTIPART_MAX_PARTS} parts.")


def _boundary(content_type: str) -> bytes | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary":
            value = value.strip().strip('"')
            return value.encode("latin-1", "replace") if value else None
    return None


def _read_form(request: Request) -> None:
    request.POST  # noqa: B018 - parsed once, kept by WebOb for later


def _wants_json(request: Request) -> bool:
    if request.content_type == "application/json":
        return True
    offers = request.accept.acceptable_offers(["text/html", "application/json"])
    return bool(offers) and offers[0][0] == "application/json"


def error_page(request: Request, error: HTTPError) -> Response:
    """An error as people and programs read it: a page in the site's layout with a way back,
    or JSON ``{"error": ..., "detail": ...}`` for a client that asks for JSON; an anonymous
    browser refused a page (a session that ended) is sent to log in, and back."""
    if (error.content_type or "") == "application/json" and error.body:
        return error  # already JSON (``bad_parameter`` and friends)
    detail = error.detail if isinstance(error.detail, str) else None
    # Pyramid's details here are about its own functions, not about what to do.
    if isinstance(error, BadCSRFOrigin):
        detail = (
            "This request came from another site, or said nothing of where it came from "
            "(over https a request must carry an Origin or Referer of this site)."
        )
    elif isinstance(error, BadCSRFToken):
        detail = (
            "The form's CSRF token does not match your session (the page was open from "
            "before you signed in or out, say): reload the page and send it again."
        )
    if (
        error.status_int == 403
        and request.method == "GET"
        and request.identity is None
        and not _wants_json(request)
        and UPGRADE_ENVIRON_KEY not in request.environ
    ):
        target = request.path_qs
        return HTTPSeeOther(location=request.route_path("login", _query={"next": target}))
    if error.status_int >= 500 and "user" not in request.__dict__:
        # A page about a server error must not need the server's database: the layout shows
        # the visitor as signed out rather than ask who they are (the database may be down).
        request.__dict__["user"] = None
    if _wants_json(request):
        response = Response(
            json_body={"error": _slug(error.title), "detail": detail or error.explanation},
            status=error.status,
        )
    else:
        values = {
            "status": error.status_int,
            "title": error.title,
            "detail": detail or error.explanation,
        }
        response = render_to_response("aiotutorial:templates/error.jinja2", values, request=request)
        response.status = error.status
    for name in ("Retry-After", "Allow", "WWW-Authenticate"):
        if name in error.headers:
            response.headers[name] = error.headers[name]
    return response


def _slug(title: str) -> str:
    return "_".join(title.lower().split())


def error_pages_tween(handler: Any, registry: Any) -> Any:
    """Every 4xx and 5xx response, raised or returned, through ``error_page``."""

    def tween(request: Request) -> Any:
        response = handler(request)
        if isinstance(response, HTTPError):
            try:
                return error_page(request, response)
            except (UnicodeDecodeError, URLDecodeError, DatabaseUnavailable):
                # A request so broken (a URL that is not UTF-8), or a database gone while the
                # page was being made, that the layout cannot be built: the plain error it
                # already has.
                return response
        return response

    return tween


def includeme(config) -> None:
    config.scan(__name__)
    config.add_tween("aiotutorial.views.errors.form_body_tween", under=EXCVIEW)
    config.add_tween("aiotutorial.views.errors.error_pages_tween", over=EXCVIEW)
