"""``GET /search``: the messages a reader may read that hold some words.

``?q=`` the words (1 to 200 characters: words, "a phrase", -not, or), ``&channel=`` one
channel, ``&from=`` one author, ``&before=ID`` the next page (the last id of this one),
``&limit=`` 1 to 50 (20). JSON when asked with ``Accept: application/json``
(``{"results": [message with its channel, ...], "next": ID or null}``, newest first), else a
page in the layout with the words marked and a link to each message in its channel. A private
channel one is not in is never searched: naming it is a 404, as everywhere.
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNotFound
from pyramid.renderers import render_to_response
from pyramid.request import Request
from pyramid.view import view_config

from .. import access, chat
from ..chat import search
from .channels import bad_parameter, int_parameter


def _text_parameter(request: Request, name: str, most: int) -> str | None:
    values = request.GET.getall(name)
    if not values:
        return None
    if len(values) > 1:
        raise bad_parameter(f"{name} is given more than once.")
    value = values[0].strip()
    if len(value) > most:
        raise bad_parameter(f"{name} has at most {most} characters.")
    if "\x00" in value:
        raise bad_parameter(f"{name} holds a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_parameter(f"{name} is not text.") from None
    return value or None


def _wants_json(request: Request) -> bool:
    return request.accept.best_match(["text/html", "application/json"]) == "application/json"


@view_config(route_name="search", request_method="GET", permission="view")
async def search_view(request: Request) -> Any:
    query = _text_parameter(request, "q", search.QUERY_MAX_CHARS)
    channel = _text_parameter(request, "channel", chat.CHANNEL_NAME_MAX)
    author = _text_parameter(request, "from", 40)
    before = int_parameter(request, "before", 1)
    limit = (
        int_parameter(request, "limit", 1, search.SEARCH_MAX_LIMIT) or search.SEARCH_DEFAULT_LIMIT
    )
    reader = request.identity.username if request.identity is not None else None
    if channel is not None:
        channel = channel.lower()
        if chat.channel_name_error(channel) is not None or (
            await access.access_of(request.db, channel, reader) is None
        ):
            detail = f"There is no channel {channel!r}."
            raise HTTPNotFound(json_body={"error": "not_found", "detail": detail})
    results: list[dict[str, Any]] = []
    if query is not None:
        options: dict[str, Any] = {
            "channel": channel,
            "author": author,
            "before": before,
            "limit": limit,
        }
        if request.db.serial:  # no parallel workers for any statement: one round trip
            results = await search.search_messages(request.db, query, reader, **options)
        else:  # set for the search's own transaction
            async with request.db.transaction() as conn:
                results = await search.search_messages(conn, query, reader, **options)
    following = results[-1]["id"] if len(results) == limit else None
    if _wants_json(request):
        if query is None:
            raise bad_parameter("q: give the words to search for.")
        return render_to_response("json", {"results": results, "next": following}, request=request)
    shown = [
        {**message, "pieces": search.highlights(message["content"], query or "")}
        for message in results
    ]
    values = {
        "title": f"Search: {query} · aiotutorial" if query else "Search · aiotutorial",
        "query": query or "",
        "channel": channel or "",
        "author": author or "",
        "results": shown,
        "next": following,
        "limit": limit,
    }
    return render_to_response("aiotutorial:templates/search.jinja2", values, request=request)


def includeme(config: Any) -> None:
    config.add_route("search", "/search")
    config.scan(__name__)
