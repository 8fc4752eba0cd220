"""The chat over HTTP and websockets: the lobby, channels, history, and the live socket.

Anyone may open a channel's socket: a visitor's (not signed in) reads only. Creating channels
is limited per user in PostgreSQL (``SharedThrottle``): every channel is a row and a name that
lives for ever, and a limit per worker would let a user spread a flood over the workers.
"""

from __future__ import annotations

import math
from typing import Any

import psycopg2
from pyramid.httpexceptions import (
    HTTPBadRequest,
    HTTPConflict,
    HTTPCreated,
    HTTPNotFound,
    HTTPSeeOther,
    HTTPTooManyRequests,
)
from pyramid.renderers import render_to_response
from pyramid.request import Request
from pyramid.view import view_config

from .. import access, chat
from ..accounts.views import SIGNED_OUT_COOKIE
from ..aio import WebsocketConnection, WebsocketMapper
from ..game import running_games
from ..moderation import store as moderation
from ..realtime import (
    ERROR,
    POLICY_VIOLATION,
    Hub,
    encode,
    get_hub,
    online_anywhere,
    online_counts,
    serve_channel,
)
from ..resources import Channel, ChannelsRoot
from ..throttle import SharedThrottle

# Channels a user may create: a burst, refilled over the window (settings: chat.channel_*).
CHANNEL_ATTEMPTS = 10
CHANNEL_WINDOW = 3600
_CHANNEL_THROTTLE = "throttle.create_channel"


def bad_parameter(detail: str) -> HTTPBadRequest:
    return HTTPBadRequest(json_body={"error": "bad_parameter", "detail": detail})


def int_parameter(request: Request, name: str, low: int, high: int | None = None) -> int | None:
    """An optional integer query parameter within bounds, else a 400 saying so."""
    values = request.GET.getall(name)
    if not values:
        return None
    if len(values) > 1:
        raise bad_parameter(f"{name} is given more than once.")
    raw = values[0]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise bad_parameter(f"{name} must be a whole number.")
    value = int(raw)
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise bad_parameter(f"{name} must be {bounds}.")
    return value


async def channel_summaries(request: Request) -> list[dict[str, Any]]:
    """Every channel the reader may read with who is online, its running game, its last
    message time, its kind (``public``, ``private``, ``dm``; a conversation names its other
    ``members``), and for a signed-in user what is unread there (``unread``; None for
    visitors). In a conversation every message counts as a mention."""
    user = request.identity.username if request.identity is not None else None
    channels = await chat.list_channels(request.db, user)
    online = await online_counts(request.db)
    games = await running_games(request.db)
    unread: dict[str, dict[str, Any]] = {}
    mine: dict[str, dict[str, Any]] = {}
    levels: dict[str, str] = {}
    if user is not None:
        unread = await chat.unread_counts(request.db, user)
        mine = await access.memberships(request.db, user)
        levels = await chat.notify_levels(request.db, user)
    summaries = []
    for channel in channels:
        name = channel["name"]
        membership = mine.get(name)
        counts = unread.get(name) if user is not None else None
        summary = {
            **channel,
            "kind": membership["kind"] if membership is not None else access.PUBLIC,
            "online": online.get(name, 0),
            "game": {"players": games[name]} if name in games else None,
            "unread": counts,
        }
        if membership is not None and membership["kind"] == access.DM:
            summary["members"] = membership["members"]
            if counts is not None and counts["count"] is not None:
                summary["unread"] = {**counts, "mentions": max(counts["mentions"], counts["count"])}
        if user is not None:
            level = levels.get(name, "all")
            summary["notify"] = level
            summary["unread"] = chat.apply_level(summary["unread"], level)
        summaries.append(summary)
    # Who of the people one has conversations with is online (anywhere).
    people = {name for s in summaries for name in s.get("members") or []}
    if people:
        here = await online_anywhere(request.db, sorted(people))
        for summary in summaries:
            if summary["kind"] == access.DM:
                summary["online_members"] = [m for m in summary["members"] if m in here]
    # Channels by name, then conversations, the latest first.
    conversations = [s for s in summaries if s["kind"] == access.DM]
    conversations.sort(key=lambda s: s["last_message_at"] or "", reverse=True)
    return [s for s in summaries if s["kind"] != access.DM] + conversations


# --- the lobby and the channel list -------------------------------------------------------


@view_config(route_name="home", renderer="aiotutorial:templates/lobby.jinja2")
async def lobby(request: Request) -> dict[str, Any]:
    signed_out = SIGNED_OUT_COOKIE in request.cookies
    if signed_out:
        request.response.delete_cookie(SIGNED_OUT_COOKIE)
    return {
        "title": "aiotutorial",
        "channels": await channel_summaries(request),
        "signed_out": signed_out and request.identity is None,
    }


@view_config(route_name="channels", request_method="GET", renderer="json", permission="view")
async def list_channels(request: Request) -> dict[str, Any]:
    return {"channels": await channel_summaries(request)}


@view_config(route_name="channels", request_method="POST", permission="chat")
async def create_channel(request: Request) -> Any:
    """Create a channel from a form (303 to it) or JSON ``{"name": ...}`` (201); with
    ``"private": true`` (a form's ``private=1``) a private channel, owned by its creator.

    A refused form shows the lobby again with the message; JSON gets a JSON error.
    """
    wants_json = request.content_type == "application/json"
    private: Any
    if wants_json:
        try:
            body = request.json_body
        except (ValueError, RecursionError):  # RecursionError: nested too deep to read
            raise bad_parameter("The body is not valid JSON.") from None
        raw = body.get("name") if isinstance(body, dict) else None
        private = body.get("private", False) if isinstance(body, dict) else False
    else:
        names = request.POST.getall("name")
        raw = names[0] if len(names) == 1 else None
        flags = request.POST.getall("private")
        private = len(flags) == 1 and flags[0] in ("1", "on", "true")
        if len(flags) > 1 or (flags and flags[0] not in ("", "0", "1", "on", "true", "false")):
            private = None
    name = raw.strip().lower() if isinstance(raw, str) else ""
    problem: str | None
    if not isinstance(raw, str):
        problem = 'Give the channel a "name".'
    elif not isinstance(private, bool):
        problem = '"private" is true or false.'
    else:
        problem = chat.channel_name_error(name)
        if problem is None and name.startswith(access.DM_PREFIX):
            problem = f"Names beginning with {access.DM_PREFIX!r} are for conversations."
    if problem is None:
        # Counted once the name is valid (a typo costs nothing), before the insert: attempts
        # on taken names are inserts too.
        throttle: SharedThrottle = request.registry[_CHANNEL_THROTTLE]
        wait = await throttle.consume(request.db, request.identity.username)
        if wait:
            return await _too_many_channels(request, name, wait, wants_json)
        try:
            async with request.db.transaction() as conn:
                if private:
                    if not await access.create_private(conn, name, request.identity.username):
                        raise chat.ChannelExists(name)
                else:
                    await chat.create_channel(conn, name)
                    await access.claim_public(conn, name, request.identity.username)
        except (chat.ChannelExists, psycopg2.IntegrityError):
            if wants_json:
                raise HTTPConflict(
                    json_body={"error": "exists", "detail": f"The channel {name!r} exists."}
                ) from None
            return await _lobby_again(request, name, f"The channel {name!r} already exists.", 409)
    elif wants_json:
        raise bad_parameter(problem)
    else:
        return await _lobby_again(request, raw if isinstance(raw, str) else "", problem, 400)
    location = request.route_url("channel", traverse=(name,))
    if wants_json:
        return HTTPCreated(
            json_body={
                "channel": {
                    "name": name,
                    "kind": access.PRIVATE if private else access.PUBLIC,
                    "online": 0,
                    "last_message_at": None,
                    "game": None,
                    "unread": None,
                }
            },
            location=location,
        )
    return HTTPSeeOther(location=location)


async def _too_many_channels(request: Request, name: str, wait: float, wants_json: bool) -> Any:
    seconds = max(1, math.ceil(wait))
    detail = f"You have created too many channels lately; try again in {seconds} seconds."
    if wants_json:
        raise HTTPTooManyRequests(
            json_body={"error": "rate_limited", "detail": detail},
            headers={"Retry-After": str(seconds)},
        )
    response = await _lobby_again(request, name, detail, 429)
    response.headers["Retry-After"] = str(seconds)
    return response


async def _lobby_again(request: Request, name: str, error: str, status: int) -> Any:
    values = {
        "title": "aiotutorial",
        "channels": await channel_summaries(request),
        "name": name[: chat.CHANNEL_NAME_MAX],
        "error": error,
    }
    response = render_to_response("aiotutorial:templates/lobby.jinja2", values, request=request)
    response.status = status
    return response


# --- one channel --------------------------------------------------------------------------


@view_config(
    route_name="channel",
    context=Channel,
    request_method="GET",
    renderer="aiotutorial:templates/channel.jinja2",
    permission="view",
)
async def channel_page(context: Channel, request: Request) -> dict[str, Any]:
    found = context.access
    members: list[dict[str, Any]] = []
    if found.kind != access.PUBLIC:
        members = await access.members(request.db, context.name)
    title = f"#{context.name}"
    if found.kind == access.DM:
        me = request.identity.username
        title = ", ".join(m["username"] for m in members if m["username"] != me) or me
    user = request.identity.username if request.identity else None
    return {
        "title": f"{title} · aiotutorial",
        "channel": context.name,
        "heading": title,
        "kind": found.kind,
        "role": found.role,
        "members": members,
        # (both read by traversal's statement: see access.channel_of)
        "moderator": moderation.moderates_with(found, user),
        "notify": found.notify or chat.NOTIFY_ALL,
        "notify_levels": chat.NOTIFY_LEVELS,
    }


@view_config(
    route_name="channel",
    context=Channel,
    name="notifications",
    request_method="GET",
    renderer="json",
    permission="chat",
)
async def get_notifications(context: Channel, request: Request) -> dict[str, Any]:
    if request.subpath:
        raise HTTPNotFound(json_body={"error": "not_found", "detail": "No such page."})
    level = context.access.notify or chat.NOTIFY_ALL
    return {"notifications": {"channel": context.name, "level": level}}


@view_config(
    route_name="channel",
    context=Channel,
    name="notifications",
    request_method="PUT",
    renderer="json",
    permission="chat",
)
async def put_notifications(context: Channel, request: Request) -> dict[str, Any]:
    """``{"level": "all" | "mentions" | "nothing"}``: how much of the channel counts and
    notifies for the reader (kept per user, on every device)."""
    if request.subpath:
        raise HTTPNotFound(json_body={"error": "not_found", "detail": "No such page."})
    try:
        body = request.json_body
    except (ValueError, RecursionError):
        raise bad_parameter('The body is JSON: {"level": "mentions"}.') from None
    level = body.get("level") if isinstance(body, dict) else None
    if level not in chat.NOTIFY_LEVELS:
        raise bad_parameter('"level" is one of all, mentions, nothing.')
    async with request.db.transaction() as conn:
        await chat.set_level(conn, request.identity.username, context.name, level)
    return {"notifications": {"channel": context.name, "level": level}}


@view_config(
    route_name="channel",
    context=Channel,
    name="messages",
    request_method="GET",
    renderer="json",
    permission="view",
)
async def channel_messages(context: Channel, request: Request) -> dict[str, Any]:
    before = int_parameter(request, "before", 0)
    after = int_parameter(request, "after", 0)
    limit = int_parameter(request, "limit", 1, chat.HISTORY_MAX_LIMIT)
    user = request.identity.username if request.identity else None
    # Read before the page (by traversal's statement, access.channel_of): a change made in
    # between is in both, and applying it twice is harmless (it carries the whole message);
    # one read after could be missed.
    changes = context.access.changes
    messages = await chat.messages_page(
        request.db,
        context.name,
        before=before,
        after=after,
        limit=limit or chat.HISTORY_DEFAULT_LIMIT,
        visible_to=user,
    )
    answer: dict[str, Any] = {"messages": messages, "changes": changes}
    if user is not None and before is None and after is None:
        # The newest page (what a page opens with) says where the reader left off.
        answer["last_read"] = context.access.last_read
    return answer


@view_config(
    route_name="channel",
    context=Channel,
    name="ws",
    mapper=WebsocketMapper,
    permission="view",
)
async def channel_socket(ws: WebsocketConnection) -> None:
    """The live channel: catch-up, then every message, presence change and game event
    (docs/protocol.md); the features registered with the realtime hub handle its frames.
    A visitor's socket gets what everyone may read and may send nothing."""
    try:
        hub, channel, user, params = _socket_arguments(ws.request)
    except HTTPBadRequest as exc:
        await ws.send(encode({"type": ERROR, **exc.json_body}))
        await ws.close(POLICY_VIOLATION, "bad parameter")
        return
    admit = None
    if ws.request.context.access.kind != access.PUBLIC:

        async def admit() -> tuple[int, str] | None:
            # Removed between the request's check and the join: no removal event found it.
            if await access.still_readable(hub.delivery_engine, channel, user):
                return None
            return access.REMOVED, "removed from the channel"

    # The socket may stay open for hours: the request ends now (its pooled connection goes
    # back) and the socket keeps nothing of it but the names above.
    await ws.finish_request()
    await serve_channel(hub, ws, channel, user, params, admit)


def _socket_arguments(request: Request) -> tuple[Hub, str, str | None, dict[str, Any]]:
    """What a channel socket needs from its request: the hub, the channel, the user (None:
    a visitor) and the catch-up parameters (a bad one raises ``bad_parameter``'s 400)."""
    hub = get_hub(request.registry)
    # Each stream says which query parameter it catches up from (the chat: after, changes).
    params = {name: int_parameter(request, name, 0) for name in hub.stream_params}
    user = request.identity.username if request.identity is not None else None
    return hub, request.context.name, user, params


def includeme(config) -> None:
    settings = config.get_settings()
    config.registry[_CHANNEL_THROTTLE] = SharedThrottle.per_window(
        "create_channel",
        int(settings.get("chat.channel_attempts", CHANNEL_ATTEMPTS)),
        float(settings.get("chat.channel_window", CHANNEL_WINDOW)),
    )
    config.add_route("home", "/")
    config.add_route("channels", "/channels", factory=ChannelsRoot)
    config.add_route("channel", "/channels/*traverse", factory=ChannelsRoot)
    config.scan(__name__)
