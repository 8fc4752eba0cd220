"""Avatars over HTTP.

- ``GET /account``: the account page (signed-in): the current picture or initials, a form to
  upload a new one and a button to remove it;
- ``POST /account/avatar`` (multipart, field ``file``, with the CSRF token): a new picture,
  made square and small (``avatars.images``): 201 ``{"avatar": {"url", "type", "size"}}``;
  400 ``not_an_image`` for anything but a PNG, JPEG, GIF or WebP that decodes; 413
  ``too_large`` over ``avatars.max_size`` (nothing stored). The same form posted with
  ``remove`` removes the picture. A browser's form (``Accept`` preferring HTML) gets 303 back
  to the account page, or the page with the error and its status;
- ``DELETE /account/avatar``: back to initials (204);
- ``GET /users/{username}/avatar``: the picture, public (``nosniff``, a CSP that lets nothing
  run, five minutes of cache and an ETag); 404 (cached a minute too, so that pages do not ask
  again and again) when the user has none, does not exist or was deactivated.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pyramid.httpexceptions import (
    HTTPCreated,
    HTTPNoContent,
    HTTPNotModified,
    HTTPSeeOther,
    exception_response,
)
from pyramid.renderers import render_to_response
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from .. import avatars
from ..accounts.users import username_error
from ..aio.helpers import run_in_executor
from ..uploads import field_bytes, image_work, megabytes

# What an avatar's answer may do in a browser, opened in a tab: nothing.
AVATAR_CSP = "default-src 'none'; sandbox"
_CACHED_FOR = 300
_MISSING_CACHED_FOR = 60
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": AVATAR_CSP,
    "Cross-Origin-Resource-Policy": "same-origin",
}
_ACCOUNT_PAGE = "aiotutorial:templates/account.jinja2"


def avatar_url(username: str, etag: str) -> str:
    """Where ``username``'s avatar is served; ``v`` (ignored by the server) makes a new picture
    a new URL for the caches that hold the old one."""
    return f"/users/{quote(username, safe='')}/avatar?v={quote(etag, safe='')}"


def _from_page(request: Request) -> bool:
    """A browser's form (without script): it prefers a page to JSON."""
    offers = request.accept.acceptable_offers(["application/json", "text/html"])
    return bool(offers) and offers[0][0] == "text/html"


async def _account_values(request: Request, error: str | None = None) -> dict[str, Any]:
    me = request.identity.username
    etag = await avatars.avatar_etag(request.db, me)
    return {
        "title": "Your account · aiotutorial",
        "username": me,
        "avatar_url": avatar_url(me, etag) if etag else None,
        "max_size": megabytes(avatars.max_size(request.registry)),
        "avatar_size": avatars.AVATAR_SIZE,
        "error": error,
    }


async def _refused(request: Request, status: int, error: str, detail: str) -> Any:
    """A refusal as the client reads it: JSON, or the account page saying what was wrong."""
    if _from_page(request):
        values = await _account_values(request, detail)
        response = render_to_response(_ACCOUNT_PAGE, values, request=request)
        response.status = status
        return response
    return exception_response(status, json_body={"error": error, "detail": detail})


@view_config(route_name="account", request_method="GET", permission="chat")
async def account_page(request: Request) -> Any:
    values = await _account_values(request)
    return render_to_response(_ACCOUNT_PAGE, values, request=request)


@view_config(route_name="account_avatar", request_method="POST", permission="chat")
async def upload_avatar(request: Request) -> Any:
    if request.content_type == "application/x-www-form-urlencoded" and "remove" in request.POST:
        return await remove_avatar(request)
    if request.content_type != "multipart/form-data":
        return await _refused(
            request,
            400,
            "bad_parameter",
            'Send the picture as multipart/form-data, in the field "file".',
        )
    if "remove" in request.POST:
        return await remove_avatar(request)
    fields = request.POST.getall("file")
    if len(fields) != 1 or not hasattr(fields[0], "file"):
        return await _refused(request, 400, "bad_parameter", "Choose one picture to upload.")
    limit = avatars.max_size(request.registry)
    data = await run_in_executor(None, field_bytes, fields[0])
    if not data:
        return await _refused(request, 400, "bad_parameter", "The file is empty.")
    if len(data) > limit:
        detail = f"A picture may have at most {megabytes(limit)}."
        return await _refused(request, 413, "too_large", detail)
    made = await image_work(avatars.make_avatar, data)
    if made is None:
        detail = "That is not a picture: send a PNG, JPEG, GIF or WebP image."
        return await _refused(request, 400, "not_an_image", detail)
    me = request.identity.username
    async with request.db.transaction() as conn:
        etag = await avatars.save_avatar(conn, me, made)
    if _from_page(request):
        return HTTPSeeOther(location=request.route_url("account"))
    url = avatar_url(me, etag)
    return HTTPCreated(
        json_body={"avatar": {"url": url, "type": made.type, "size": avatars.AVATAR_SIZE}}
    )


@view_config(route_name="account_avatar", request_method="DELETE", permission="chat")
async def remove_avatar(request: Request) -> Any:
    async with request.db.transaction() as conn:
        await avatars.remove_avatar(conn, request.identity.username)
    if request.method == "POST" and _from_page(request):
        return HTTPSeeOther(location=request.route_url("account"))
    return HTTPNoContent()


def _missing() -> Response:
    """404, as a plain answer (not an error page: it is cached, and no page is made for it)."""
    detail = "This user has no picture."
    response = Response(json_body={"error": "not_found", "detail": detail}, status=404)
    response.headers.update(_HEADERS)
    response.headers["Cache-Control"] = f"public, max-age={_MISSING_CACHED_FOR}"
    return response


@view_config(route_name="user_avatar", request_method=("GET", "HEAD"))
async def serve_avatar(request: Request) -> Any:
    username = request.matchdict["username"]
    if username_error(username) is not None:
        return _missing()
    found = await avatars.avatar_of(request.db, username)
    if found is None:
        return _missing()
    headers = {**_HEADERS, "Cache-Control": f"public, max-age={_CACHED_FOR}"}
    if found.etag in request.if_none_match:
        not_modified = HTTPNotModified(headers=headers)
        not_modified.etag = found.etag
        return not_modified
    response = Response(body=bytes(found.data), headers=headers)
    response.content_type = found.type
    response.etag = found.etag
    return response


def includeme(config: Any) -> None:
    config.include("aiotutorial.avatars")
    config.add_route("account", "/account")
    config.add_route("account_avatar", "/account/avatar")
    config.add_route("user_avatar", "/users/{username}/avatar")
    config.scan(__name__)
