"""Members of private channels, and conversations (direct messages).

- ``GET /channels/{name}/members``: the members and their roles (members only: traversal
  answers 404 to anyone else);
- ``POST /channels/{name}/members`` ``{"username": "bob"}``: the owner or a moderator adds a
  member (201; 200 when already one);
- ``DELETE /channels/{name}/members/{username}``: leave (oneself), or the owner or a moderator
  removes a member (204); the removed member's sockets of the channel close (4403);
- ``PUT /channels/{name}/members/{username}`` ``{"role": "moderator"}``: the owner names
  moderators (or hands the channel over with ``"owner"``);
- ``GET /users?q=al``: accounts whose names begin so (whom to write to);
- ``POST /dm`` ``{"username": "bob"}`` or ``{"usernames": [...]}`` (JSON: 200 with the
  conversation), or a form with ``username`` (one name, or several separated by commas: 303
  to it): the conversation of those people,
  the same one whoever opens it.

Refusals are JSON ``{"error", "detail"}`` with their status (400, 403, 404, 409).
"""

from __future__ import annotations

import re
from typing import Any

from pyramid.httpexceptions import (
    HTTPCreated,
    HTTPNoContent,
    HTTPOk,
    HTTPSeeOther,
    exception_response,
)
from pyramid.request import Request
from pyramid.view import view_config

from .. import access
from ..realtime import online_anywhere
from ..resources import Channel
from .channels import bad_parameter


def access_refusal(error: access.AccessError) -> Exception:
    return exception_response(
        error.status, json_body={"error": error.error, "detail": error.detail}
    )


def json_object(request: Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise bad_parameter("Send JSON (Content-Type: application/json).")
    try:
        body = request.json_body
    except (ValueError, RecursionError):
        raise bad_parameter("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_parameter("The body is a JSON object.")
    return body


def no_subpath(request: Request) -> None:
    if request.subpath:
        raise exception_response(404, json_body={"error": "not_found", "detail": "No such page."})


def member_named(request: Request) -> str:
    if len(request.subpath) != 1:
        raise exception_response(
            404, json_body={"error": "not_found", "detail": "Name one member."}
        )
    return request.subpath[0]


@view_config(
    route_name="channel",
    context=Channel,
    name="members",
    request_method="GET",
    renderer="json",
    permission="view",
)
async def list_members(context: Channel, request: Request) -> dict[str, Any]:
    no_subpath(request)
    found = context.access
    if found.kind == access.PUBLIC:  # everyone reads it: only its owner and moderators
        return {"kind": found.kind, "role": found.role, "members": None}
    return {
        "kind": found.kind,
        "role": found.role,
        "members": await access.members(request.db, context.name),
    }


@view_config(
    route_name="channel",
    context=Channel,
    name="members",
    request_method="POST",
    permission="chat",
)
async def add_member(context: Channel, request: Request) -> Any:
    no_subpath(request)
    body = json_object(request)
    try:
        async with request.db.transaction() as conn:
            username = await access.canonical_username(conn, body.get("username"))
            added = await access.add_member(conn, context.name, context.access, username)
    except access.AccessError as error:
        raise access_refusal(error) from None
    member = {"username": username, "role": access.MEMBER}
    if added:
        return HTTPCreated(json_body={"member": member})
    return HTTPOk(json_body={"member": member})


@view_config(
    route_name="channel",
    context=Channel,
    name="members",
    request_method="DELETE",
    permission="chat",
)
async def remove_member(context: Channel, request: Request) -> Any:
    named = member_named(request)
    me = request.identity.username
    try:
        async with request.db.transaction() as conn:
            username = await access.canonical_username(conn, named)
            await access.remove_member(conn, context.name, me, context.access, username)
    except access.AccessError as error:
        raise access_refusal(error) from None
    return HTTPNoContent()


@view_config(
    route_name="channel",
    context=Channel,
    name="members",
    request_method="PUT",
    renderer="json",
    permission="chat",
)
async def change_role(context: Channel, request: Request) -> dict[str, Any]:
    named = member_named(request)
    body = json_object(request)
    try:
        async with request.db.transaction() as conn:
            username = await access.canonical_username(conn, named)
            role = await access.set_role(
                conn, context.name, context.access, username, body.get("role")
            )
    except access.AccessError as error:
        raise access_refusal(error) from None
    return {"member": {"username": username, "role": role}}


@view_config(route_name="dm", request_method="POST", permission="chat")
async def open_conversation(request: Request) -> Any:
    wants_json = request.content_type == "application/json"
    if wants_json:
        body = json_object(request)
        if "usernames" in body:
            names = body["usernames"]
            if not isinstance(names, list) or not 1 <= len(names) < access.DM_MAX_PEOPLE:
                raise bad_parameter(
                    f'"usernames" lists 1 to {access.DM_MAX_PEOPLE - 1} other people.'
                )
        else:
            names = [body.get("username")]
    else:
        # A form's one field: a name, or several (a group) separated by commas or spaces.
        fields = request.POST.getall("username")
        if len(fields) != 1:
            raise bad_parameter('Give a "username".')
        names = [name for name in re.split(r"[\s,]+", fields[0]) if name]
        if not 1 <= len(names) < access.DM_MAX_PEOPLE:
            raise bad_parameter(f"Name 1 to {access.DM_MAX_PEOPLE - 1} other people.")
    me = request.identity.username
    try:
        async with request.db.transaction() as conn:
            people = {await access.canonical_username(conn, name) for name in names}
            people.discard(me)
            if not people:
                raise access.AccessError(
                    400, "bad_parameter", "A conversation is with someone else."
                )
            channel, _ = await access.open_conversation(conn, me, sorted(people))
    except access.AccessError as error:
        raise access_refusal(error) from None
    location = request.route_url("channel", traverse=(channel,))
    if not wants_json:
        return HTTPSeeOther(location=location)
    answer = {"channel": {"name": channel, "kind": access.DM, "members": sorted(people)}}
    return HTTPOk(json_body=answer)


USERS_LIMIT = 10


@view_config(route_name="users", request_method="GET", renderer="json", permission="chat")
async def find_users(request: Request) -> dict[str, Any]:
    """``GET /users?q=al``: up to 10 accounts whose names begin with ``q`` (any letter case),
    by name, each with whether they are online: whom to write to (Ctrl+K, "Message someone").
    Signed-in users only; deactivated accounts are left out."""
    values = request.GET.getall("q")
    if len(values) != 1 or not 1 <= len(values[0]) <= access.USERNAME_MAX:
        raise bad_parameter(f'Give "q": the first 1 to {access.USERNAME_MAX} letters of a name.')
    prefix = values[0].lower()
    if "\0" in prefix:
        raise bad_parameter('"q" may not hold NUL characters.')
    names = await access.users_named_like(request.db, prefix, USERS_LIMIT)
    here = await online_anywhere(request.db, names)
    return {"users": [{"username": name, "online": name in here} for name in names]}


def includeme(config: Any) -> None:
    config.add_route("users", "/users")
    config.add_route("dm", "/dm")
    config.scan(__name__)
