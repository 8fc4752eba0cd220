"""Error pages: clear messages for what users cause, nothing internal for what we cause."""

from __future__ import annotations

import logging

from pyramid.httpexceptions import HTTPInternalServerError
from pyramid.request import Request
from pyramid.view import exception_view_config

log = logging.getLogger(__name__)


@exception_view_config(Exception)
async def unexpected_error(exc: Exception, request: Request) -> HTTPInternalServerError:
    """A bug: log it with its context, answer 500 with no detail (HTML or JSON by Accept)."""
    log.error("unhandled error in %s %s", request.method, request.path_qs, exc_info=exc)
    return HTTPInternalServerError("Something went wrong on our side; it has been logged.")


def includeme(config) -> None:
    config.scan(__name__)
