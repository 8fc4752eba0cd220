"""Moderation over HTTP (the socket's ``message.delete`` is how a moderator removes a message).

A channel's moderators (its owner, the moderators it named, the site's administrators):

- ``POST /channels/{name}/mutes`` ``{"username", "minutes"}``: mute a member (201), who may
  read but not post, edit or react until then; ``DELETE /channels/{name}/mutes/{username}``;
- ``POST /channels/{name}/bans`` ``{"username"}``: ban a user from a public channel (201):
  their sockets of it close (4403) and it answers them 404 from then on;
  ``DELETE /channels/{name}/bans/{username}``;
- ``GET /channels/{name}/moderation``: the channel's moderation log (newest first,
  ``?before=ID`` pages), its mutes and bans, and its open reports.

Anyone who reads a channel: ``POST /channels/{name}/messages/{id}/report`` ``{"reason"}``
(201; 200 when they had reported it already).

The site's administrators (``python -m aiotutorial.admin promote NAME``): ``GET /reports``
(a page, or JSON), ``POST /reports/{id}/settle``, ``POST /users/{name}/deactivate`` and
``/reactivate``.

Refusals are JSON ``{"error", "detail"}`` with their status (400, 403, 404, 409, 413).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pyramid.httpexceptions import (
    HTTPCreated,
    HTTPNoContent,
    HTTPOk,
    HTTPSeeOther,
    exception_response,
)
from pyramid.renderers import render_to_response
from pyramid.request import Request
from pyramid.view import view_config

from .. import access
from ..moderation import store
from ..resources import Channel
from .access import access_refusal, json_object, member_named, no_subpath
from .channels import bad_parameter, int_parameter


def _id_in_path(request: Request, what: str) -> int:
    value = request.matchdict.get("id") if request.matchdict else None
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise exception_response(
            404, json_body={"error": "not_found", "detail": f"There is no such {what}."}
        )
    return int(value)


async def _as_moderator(request: Request, context: Channel) -> None:
    await store.require_moderator(
        request.db, context.name, context.access, request.identity.username
    )


async def _on_user(
    request: Request,
    context: Channel,
    named: Any,
    act: Callable[[Any, str, str], Awaitable[Any]],
) -> tuple[str, str, Any]:
    """A moderator of ``context`` acts on the user ``named``: in one transaction, the
    moderator's rights checked, the name made the account's own, then ``act(conn, me,
    username)``; ``(me, username, what act returned)``, a refusal answered as JSON."""
    me = request.identity.username
    try:
        async with request.db.transaction() as conn:
            await store.require_moderator(conn, context.name, context.access, me)
            username = await access.canonical_username(conn, named)
            return me, username, await act(conn, me, username)
    except access.AccessError as error:
        raise access_refusal(error) from None


def _lifting(
    lift: Callable[[Any, str, str, str], Awaitable[bool]], channel: str, code: str, what: str
) -> Callable[[Any, str, str], Awaitable[None]]:
    """An ``act`` lifting a mute or a ban, refused with 404 ``code`` when there is none."""

    async def act(conn: Any, me: str, username: str) -> None:
        if not await lift(conn, channel, me, username):
            raise access.AccessError(404, code, f"{username} is not {what} here.")

    return act


@view_config(
    route_name="channel", context=Channel, name="mutes", request_method="POST", permission="chat"
)
async def mute(context: Channel, request: Request) -> Any:
    no_subpath(request)
    body = json_object(request)

    async def act(conn: Any, me: str, username: str) -> Any:
        return await store.mute(conn, context.name, me, username, body.get("minutes"))

    me, username, until = await _on_user(request, context, body.get("username"), act)
    return HTTPCreated(
        json_body={"mute": {"username": username, "until": until.isoformat(), "by": me}}
    )


@view_config(
    route_name="channel", context=Channel, name="mutes", request_method="DELETE", permission="chat"
)
async def unmute(context: Channel, request: Request) -> Any:
    act = _lifting(store.unmute, context.name, "not_muted", "muted")
    await _on_user(request, context, member_named(request), act)
    return HTTPNoContent()


@view_config(
    route_name="channel", context=Channel, name="bans", request_method="POST", permission="chat"
)
async def ban(context: Channel, request: Request) -> Any:
    no_subpath(request)
    body = json_object(request)

    async def act(conn: Any, me: str, username: str) -> bool:
        return await store.ban(conn, context.name, context.access, me, username)

    me, username, banned = await _on_user(request, context, body.get("username"), act)
    answer = {"ban": {"username": username, "by": me}}
    return HTTPCreated(json_body=answer) if banned else HTTPOk(json_body=answer)


@view_config(
    route_name="channel", context=Channel, name="bans", request_method="DELETE", permission="chat"
)
async def unban(context: Channel, request: Request) -> Any:
    act = _lifting(store.unban, context.name, "not_banned", "banned")
    await _on_user(request, context, member_named(request), act)
    return HTTPNoContent()


@view_config(
    route_name="channel",
    context=Channel,
    name="moderation",
    request_method="GET",
    renderer="json",
    permission="chat",
)
async def moderation_view(context: Channel, request: Request) -> dict[str, Any]:
    no_subpath(request)
    before = int_parameter(request, "before", 1)
    try:
        await _as_moderator(request, context)
    except access.AccessError as error:
        raise access_refusal(error) from None
    conn = request.db
    found = {
        "channel": context.name,
        "log": await store.channel_log(conn, context.name, before),
        **await store.channel_restrictions(conn, context.name),
        "reports": await store.open_reports(conn, channel=context.name),
    }
    if request.accept.best_match(["application/json", "text/html"]) == "text/html":
        page = {
            **found,
            "title": f"Moderation of #{context.name} · aiotutorial",
            "channel_path": request.route_path("channel", traverse=(context.name,)),
        }
        return render_to_response("aiotutorial:templates/moderation.jinja2", page, request=request)
    return found


@view_config(
    route_name="channel",
    context=Channel,
    name="messages",
    request_method="POST",
    permission="chat",
)
async def report(context: Channel, request: Request) -> Any:
    """``POST /channels/{name}/messages/{id}/report`` (traversal found the channel readable)."""
    path = request.subpath
    if (
        len(path) != 2
        or path[1] != "report"
        or not (path[0].isascii() and path[0].isdigit())
        or len(path[0]) > 12
    ):
        raise exception_response(404, json_body={"error": "not_found", "detail": "No such page."})
    message_id = int(path[0])
    name = context.name
    me = request.identity.username
    body = json_object(request)
    try:
        async with request.db.transaction() as conn:
            reported = await store.report(conn, name, message_id, me, body.get("reason"))
    except access.AccessError as error:
        raise access_refusal(error) from None
    answer = {"report": {"message": message_id, "channel": name}}
    return HTTPCreated(json_body=answer) if reported else HTTPOk(json_body=answer)


async def _as_admin(request: Request) -> None:
    if not await store.is_admin(request.db, request.identity.username):
        raise exception_response(
            403,
            json_body={"error": "forbidden", "detail": "Only the site's administrators do that."},
        )


@view_config(route_name="reports", request_method="GET", permission="chat", renderer="json")
async def reports(request: Request) -> Any:
    await _as_admin(request)
    found = await store.open_reports(request.db, limit=200)
    if request.accept.best_match(["application/json", "text/html"]) == "text/html":
        return render_to_response(
            "aiotutorial:templates/reports.jinja2", {"reports": found}, request=request
        )
    return {"reports": found}


@view_config(route_name="report_settle", request_method="POST", permission="chat")
async def settle(request: Request) -> Any:
    report_id = _id_in_path(request, "report")
    await _as_admin(request)
    try:
        async with request.db.transaction() as conn:
            channel = await store.settle_report(conn, report_id, request.identity.username)
    except access.AccessError as error:
        raise access_refusal(error) from None
    if request.content_type != "application/json":  # the reports page's form
        return HTTPSeeOther(location=request.route_url("reports"))
    return HTTPOk(json_body={"report": {"id": report_id, "channel": channel, "settled": True}})


async def _account_change(request: Request, deactivating: bool) -> Any:
    await _as_admin(request)
    me = request.identity.username
    try:
        async with request.db.transaction() as conn:
            username = await access.canonical_username(conn, request.matchdict["username"])
            if deactivating:
                changed = await store.deactivate(conn, me, username)
            else:
                changed = await store.reactivate(conn, me, username)
    except access.AccessError as error:
        raise access_refusal(error) from None
    if request.content_type != "application/json":  # the reports page's form
        return HTTPSeeOther(location=request.route_url("reports"))
    return HTTPOk(
        json_body={"user": {"username": username, "active": not deactivating, "changed": changed}}
    )


@view_config(route_name="user_deactivate", request_method="POST", permission="chat")
async def deactivate(request: Request) -> Any:
    return await _account_change(request, True)


@view_config(route_name="user_reactivate", request_method="POST", permission="chat")
async def reactivate(request: Request) -> Any:
    return await _account_change(request, False)


def includeme(config: Any) -> None:
    config.add_route("reports", "/reports")
    config.add_route("report_settle", "/reports/{id}/settle")
    config.add_route("user_deactivate", "/users/{username}/deactivate")
    config.add_route("user_reactivate", "/users/{username}/reactivate")
    config.scan(__name__)


__all__ = ["includeme", "bad_parameter"]
