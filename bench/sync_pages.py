"""Scenario 12's pages on synchronous Pyramid: the app's own views, run on the worker's thread.

Each view here calls the app's view coroutine (``aiotutorial.views.channels``, ``.game``,
``.search``) and runs it to its end with ``bench.sync_store.run_sync``: ``request.db`` is a
blocking ``SyncConnection``, so the same view and store code asks the same statements and
renders the same template or JSON, and only the serving model (gunicorn's threads) and the
driver (psycopg2 through SQLAlchemy's synchronous engine) differ. Channels are found as the
app's traversal finds them (``access.channel_of``: the access rule and the channel's facts in
one statement), into the app's own ``Channel`` resource.

Served: ``GET /`` (the lobby), ``GET /channels`` (JSON), ``GET /channels/{name}`` (the channel
page), ``GET /channels/{name}/gallery`` (JSON), ``GET /leaderboard`` (HTML or JSON), ``GET
/search`` (HTML or JSON) and ``GET /channels/{name}/uploads/{id}`` (a file, from PostgreSQL).
bench/sync_app.py adds the routes and includes this module.
"""

from __future__ import annotations

from typing import Any, cast

from pyramid.request import Request
from pyramid.view import view_config

from aiotutorial import access, chat
from aiotutorial.resources import Channel, ChannelsRoot, Root
from aiotutorial.views import channels, game, search, uploads

from .sync_store import run_sync

__all__ = ["SyncChannels"]


class SyncChannels:
    """The root of ``/channels/*traverse``: its items are the channels the reader may read
    (``ChannelsRoot``'s rule, with the statement run on the thread)."""

    __acl__ = Root.__acl__
    __name__ = ""
    __parent__ = None

    def __init__(self, request: Request) -> None:
        self.request = request

    def __getitem__(self, name: str) -> Channel:
        if chat.channel_name_error(name) is not None:
            raise KeyError(name)
        identity = self.request.identity
        user = identity.username if identity is not None else None
        found = run_sync(access.channel_of(self.request.db, name, user))
        if found is None:
            raise KeyError(name)
        return Channel(cast(ChannelsRoot, self), name, found)


@view_config(route_name="home", renderer="aiotutorial:templates/lobby.jinja2")
def lobby(request: Request) -> dict[str, Any]:
    return run_sync(channels.lobby(request))


@view_config(route_name="channels", request_method="GET", renderer="json", permission="view")
def list_channels(request: Request) -> dict[str, Any]:
    return run_sync(channels.list_channels(request))


@view_config(
    route_name="channel",
    context=Channel,
    request_method="GET",
    renderer="aiotutorial:templates/channel.jinja2",
    permission="view",
)
def channel_page(context: Channel, request: Request) -> dict[str, Any]:
    return run_sync(channels.channel_page(context, request))


@view_config(
    route_name="channel",
    context=Channel,
    name="gallery",
    request_method="GET",
    renderer="json",
    permission="view",
)
def gallery(context: Channel, request: Request) -> dict[str, Any]:
    return run_sync(game.gallery(context, request))


@view_config(route_name="leaderboard", request_method="GET", permission="view")
def leaderboard(request: Request) -> Any:
    return run_sync(game.leaderboard(request))


@view_config(route_name="search", request_method="GET", permission="view")
def search_view(request: Request) -> Any:
    return run_sync(search.search_view(request))


@view_config(
    route_name="channel",
    context=Channel,
    name="uploads",
    request_method=("GET", "HEAD"),
    permission="view",
)
def serve_upload(context: Channel, request: Request) -> Any:
    return run_sync(uploads.serve_upload(context, request))
