"""The application's request class: what views reach as ``request.db``, ``request.user``,
``request.csrf_token`` and ``request.protocol``, as properties computed once per request
(``aio.requests`` says why a class and not ``add_request_method``)."""

from __future__ import annotations

from typing import Any

from pyramid.csrf import get_csrf_token
from pyramid.decorator import reify
from pyramid.request import Request

from .accounts import identity_of
from .aio.requests import use_request_class
from .db import RequestConnection
from .views.protocol import request_protocol, request_protocol_json

__all__ = ["AppRequest", "use_app_request"]


class AppRequest(Request):
    @reify
    def db(self) -> RequestConnection:
        return RequestConnection(self)

    @reify
    def user(self) -> Any:
        return identity_of(self)

    @reify
    def csrf_token(self) -> str:
        token: str = get_csrf_token(self)
        return token

    @reify
    def protocol(self) -> dict[str, Any]:
        return request_protocol(self)

    @reify
    def protocol_json(self) -> str:
        return request_protocol_json(self)


def use_app_request(config: Any) -> None:
    """Make ``AppRequest`` the request factory; call before the includes (they look)."""
    use_request_class(config, AppRequest)
