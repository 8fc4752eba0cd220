"""The game's pages: the leaderboards (HTML or JSON) and the gallery of finished turns (JSON).

The queries live in ``aiotutorial.game.records``; here only the HTTP: parameters, the format
the client asked for, status codes (docs/protocol.md, "Leaderboards and the gallery").
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPBadRequest, HTTPNotFound
from pyramid.renderers import render_to_response
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from ..game import records
from ..resources import Channel
from .channels import bad_parameter, int_parameter

LEADERBOARD_TEMPLATE = "aiotutorial:templates/leaderboard.jinja2"
FORMATS = ("html", "json")
# game_turns.id is an INTEGER: a larger id names no turn. Sent as it is, a longer number would
# reach the database as a NUMERIC, and comparing the id as one cannot use the primary key.
TURN_ID_MAX = 2**31 - 1


def _wants_json(request: Request) -> bool:
    """``?format=json``/``html`` if given, else what ``Accept`` prefers (HTML on a tie)."""
    formats = request.GET.getall("format")
    if len(formats) == 1 and formats[0] in FORMATS:
        return formats[0] == "json"
    offers = request.accept.acceptable_offers(["text/html", "application/json"])
    return bool(offers) and offers[0][0] == "application/json"


def _format_parameter(request: Request) -> None:
    formats = request.GET.getall("format")
    if len(formats) > 1:
        raise bad_parameter("format is given more than once.")
    if formats and formats[0] not in FORMATS:
        raise bad_parameter("format must be html or json.")


async def _leaderboard(request: Request, channel: str | None, page_path: str) -> Response:
    if request.subpath:
        raise HTTPNotFound()
    wants_json = _wants_json(request)
    scope = f"#{channel} leaderboard" if channel else "Leaderboard"
    values: dict[str, Any] = {
        "title": f"{scope} · aiotutorial",
        "channel": channel,
        "page_path": page_path,
        "me": request.identity.username if request.identity else None,
    }
    try:
        _format_parameter(request)
        page = int_parameter(request, "page", 1) or 1
    except HTTPBadRequest as exc:
        if wants_json:
            raise
        values.update(error=exc.json_body["detail"], board=None)
        response = render_to_response(LEADERBOARD_TEMPLATE, values, request=request)
        response.status = exc.status
    else:
        board = await records.leaderboard_page(request.db, page, channel=channel)
        if wants_json:
            response = render_to_response("json", {**board, "channel": channel}, request=request)
        else:
            values.update(board=board, error=None)
            response = render_to_response(LEADERBOARD_TEMPLATE, values, request=request)
    # One URL, two representations: caches must keep them apart.
    response.vary = ("Accept",)
    return response


@view_config(route_name="leaderboard", request_method="GET", permission="view")
async def leaderboard(request: Request) -> Response:
    """Everyone's totals over every finished game."""
    return await _leaderboard(request, None, request.route_path("leaderboard"))


@view_config(
    route_name="channel",
    context=Channel,
    name="leaderboard",
    request_method="GET",
    permission="view",
)
async def channel_leaderboard(context: Channel, request: Request) -> Response:
    """The totals over the channel's finished games."""
    path = request.route_path("channel", traverse=(context.name, "leaderboard"))
    return await _leaderboard(request, context.name, path)


@view_config(
    route_name="channel",
    context=Channel,
    name="gallery",
    request_method="GET",
    renderer="json",
    permission="view",
)
async def gallery(context: Channel, request: Request) -> dict[str, Any]:
    """``gallery``: the channel's last finished turns; ``gallery/{id}``: one, with its
    drawing (the channel has no resources below it, so the id arrives as the subpath)."""
    if len(request.subpath) == 1:
        return await _finished_turn(context, request, request.subpath[0])
    if request.subpath:
        raise _turn_not_found(context, "/".join(request.subpath))
    before = int_parameter(request, "before", 0)
    limit = int_parameter(request, "limit", 1, records.GALLERY_MAX_LIMIT)
    turns = await records.gallery_page(
        request.db, context.name, before=before, limit=limit or records.GALLERY_DEFAULT_LIMIT
    )
    return {"turns": turns}


async def _finished_turn(context: Channel, request: Request, segment: str) -> dict[str, Any]:
    if not (segment.isascii() and segment.isdigit() and 0 < int(segment) <= TURN_ID_MAX):
        raise _turn_not_found(context, segment)
    turn = await records.finished_turn(request.db, context.name, int(segment))
    if turn is None:
        raise _turn_not_found(context, segment)
    # A finished drawing does not change (its ratings, for a few seconds after its turn); a
    # private channel's is its members' only (no shared cache may keep it).
    scope = "public" if context.access.kind == "public" else "private"
    request.response.cache_control = f"{scope}, max-age=60"
    return turn


def _turn_not_found(context: Channel, segment: str) -> HTTPNotFound:
    # The same answer for a turn that does not exist, is another channel's, is still being
    # played or has no word: which one it is must not be learnt from here.
    detail = f"#{context.name} has no finished turn {segment[:20]}."
    return HTTPNotFound(json_body={"error": "not_found", "detail": detail})


def includeme(config) -> None:
    config.add_route("leaderboard", "/leaderboard")
    config.scan(__name__)
