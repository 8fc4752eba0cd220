"""aiotutorial's pages as a plain synchronous Pyramid app (the baseline of scenarios 2, 3, 12).

Served by gunicorn's ``sync`` or ``gthread`` worker (``bench/servers.py`` writes its ini:
``[app:main] use = call:bench.sync_app:main`` plus development.ini's ``pyramid.*``,
``session.*`` and ``db.*`` settings). What it shares with the real app, so that only the
serving model differs:

* ``GET /demo?sleep=N``: the same template (``aiotutorial:templates/demo.jinja2`` and its
  layout, with the same routes, static view, signed session and CSRF token), the same
  ``parse_sleep``; the wait is ``time.sleep`` in the worker's thread.
* ``GET /channels/{name}/messages?before=&after=&limit=``: the same parameter checks and the
  very SQL of traversal (``access.channel_of``; ``access.channel_with_account`` when the session
  names an account) and ``chat.messages_page`` as aiopg.sa compiles them, run with psycopg2
  from a small thread-safe pool; the identity confirmed by the app's rule (``accounts.policy.
  confirm``); rows become frames with ``chat.event_from_row``; the app's ``json`` renderer.
* Scenario 12's pages: the app's own views, run on the thread (bench/sync_pages.py).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import psycopg2
import psycopg2.pool
from aiopg.sa.engine import get_dialect
from pyramid.authorization import ACLHelper, Allow, Authenticated, Everyone
from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy, get_csrf_token
from pyramid.decorator import reify
from pyramid.httpexceptions import HTTPNotFound
from pyramid.request import Request
from pyramid.router import Router
from pyramid.view import view_config

from aiotutorial import chat
from aiotutorial.access import IDENTIFIED_CHANNEL_STATEMENT
from aiotutorial.accounts.policy import IDENTITY, User, confirm, session_username
from aiotutorial.accounts.sessions import session_factory
from aiotutorial.aio.requests import use_request_class
from aiotutorial.db import database_url, dsn_from_url
from aiotutorial.jsontext import JSONRenderer
from aiotutorial.resources import CHANNEL_NAMED
from aiotutorial.views.channels import int_parameter
from aiotutorial.views.demo import parse_sleep
from aiotutorial.views.protocol import request_protocol, request_protocol_json

from . import sync_pages
from .sync_store import SyncConnection, sync_engine

__all__ = ["main", "messages_sql"]


_sql_cache: dict[Any, str] = {}


def _sql(statement: Any) -> str:
    """A Prepared statement's SQL (pyformat, named by its bindparams) as aiopg.sa's dialect
    compiles it, the very text the app sends."""
    cached = _sql_cache.get(statement)
    if cached is None:
        cached = _sql_cache[statement] = str(statement.statement.compile(dialect=get_dialect()))
    return cached


def messages_sql(with_before: bool, with_after: bool, *, reader: bool = False) -> str:
    """The SQL of ``chat.messages_page`` for someone signed out, or signed in with ``reader``
    (parameters ``channel``, ``limit``, ``reader``, and ``before``/``after`` when given)."""
    return _sql(chat.page_statement("reader" if reader else "anyone", with_before, with_after))


# --- the connection pool, one per worker process ------------------------------------------

_pool_lock = threading.Lock()
_pool: psycopg2.pool.ThreadedConnectionPool | None = None
_pool_pid: int | None = None


def _get_pool(settings: dict[str, Any]) -> psycopg2.pool.ThreadedConnectionPool:
    global _pool, _pool_pid
    if _pool is not None and _pool_pid == os.getpid():
        return _pool
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            statement_ms = int(float(settings.get("db.statement_timeout", 10)) * 1000)
            size = int(settings.get("bench.pool_max", 10))
            # minconn = maxconn: psycopg2's pool closes every connection put back above
            # minconn, which would reconnect on most requests; aiopg's keeps them (up to max).
            _pool = psycopg2.pool.ThreadedConnectionPool(
                size,
                size,
                dsn_from_url(settings["sqlalchemy.url"]),
                options=f"-c statement_timeout={statement_ms} -c TimeZone=UTC",
            )
            _pool_pid = os.getpid()
    return _pool


class _Connection:
    """``with _Connection(request) as cursor``: a pooled autocommit connection (as aiopg's)."""

    def __init__(self, request: Request) -> None:
        self.pool = _get_pool(request.registry.settings)
        self.connection: Any = None

    def __enter__(self) -> Any:
        self.connection = self.pool.getconn()
        self.connection.autocommit = True
        return self.connection.cursor()  # rows are read by position, as the app reads them

    def __exit__(self, *exc_info: Any) -> None:
        broken = exc_info[0] is not None and isinstance(
            exc_info[1], psycopg2.OperationalError | psycopg2.InterfaceError
        )
        self.pool.putconn(self.connection, close=broken)


# --- security: the session's user, checked in the database ----------------------------------


def _request_user(request: Request) -> str | None:
    """The session's user confirmed by the database, by the app's own statement and rule
    (``aiotutorial.accounts.policy``: the account exists, the session is not revoked)."""
    username = session_username(request)
    if username is None:
        return None
    with _Connection(request) as cursor:
        cursor.execute(_sql(IDENTITY), {"username": username})
        user = confirm(request, cursor.fetchone())
    return user.username if user is not None else None


class _SyncRequest(Request):
    """The per-request properties on the class, as the app's ``AppRequest`` has them (Pyramid's
    ``add_request_method`` would make a new class for each request)."""

    @reify
    def user(self) -> str | None:
        return _request_user(self)

    @reify
    def db(self) -> SyncConnection:
        """The app's ``request.db`` for its own views (bench/sync_pages.py), blocking."""
        connection = SyncConnection(sync_engine(self.registry.settings))
        self.add_finished_callback(lambda request: connection.close())
        return connection

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


class _Root:
    __acl__ = [(Allow, Everyone, "view"), (Allow, Authenticated, "chat")]

    def __init__(self, request: Request) -> None:
        self.request = request


class _SecurityPolicy:
    def __init__(self) -> None:
        self.acl = ACLHelper()

    def identity(self, request: Request) -> Any:
        # The app's identity object: its views read ``request.identity.username``.
        return User(request.user) if request.user is not None else None

    def authenticated_userid(self, request: Request) -> str | None:
        return request.user

    def permits(self, request: Request, context: Any, permission: str) -> Any:
        principals = [Everyone]
        if request.user is not None:
            principals += [Authenticated, f"user:{request.user}"]
        return self.acl.permits(context, principals, permission)

    def remember(self, request: Request, userid: str, **kw: Any) -> list:
        return []

    def forget(self, request: Request, **kw: Any) -> list:
        return []


# --- the views ------------------------------------------------------------------------------


@view_config(route_name="demo", renderer="aiotutorial:templates/demo.jinja2")
def demo(request: Request) -> dict[str, Any]:
    seconds = parse_sleep(request.GET.get("sleep"))
    if seconds:
        time.sleep(seconds)
    return {"title": "aiotutorial websocket test", "slept": seconds}


@view_config(route_name="messages", renderer="json", permission="view")
def channel_messages(request: Request) -> dict[str, Any]:
    name = request.matchdict["name"]
    if chat.channel_name_error(name) is not None:
        raise HTTPNotFound()
    before = int_parameter(request, "before", 0)
    after = int_parameter(request, "after", 0)
    limit = int_parameter(request, "limit", 1, chat.HISTORY_MAX_LIMIT)
    params: dict[str, Any] = {"channel": name, "limit": limit or chat.HISTORY_DEFAULT_LIMIT}
    if before is not None:
        params["before"] = before
    if after is not None:
        params["after"] = after
    with _Connection(request) as cursor:
        user, found = _traverse(request, cursor, name)
        if user is not None:
            params["reader"] = user
        cursor.execute(
            messages_sql(before is not None, after is not None, reader=bool(user)), params
        )
        rows = cursor.fetchall()
    answer = {"messages": [chat.event_from_row(row) for row in rows], "changes": found[3] or 0}
    if user is not None and before is None and after is None:
        answer["last_read"] = found[4]
    return answer


def _traverse(request: Request, cursor: Any, name: str) -> tuple[str | None, Any]:
    """What the app's traversal asks before the view runs (resources.ChannelsRoot): the
    access rule and the channel's facts in one statement (access.channel_of), with the
    session's account when it is not confirmed yet; the reader and the row, else a 404."""
    claimed = None if "user" in request.__dict__ else session_username(request)
    user = request.user if claimed is None else None
    cursor.execute(
        _sql(IDENTIFIED_CHANNEL_STATEMENT if claimed else CHANNEL_NAMED),
        {"name": name, "user": claimed or user},
    )
    found = cursor.fetchone()
    if found is not None and claimed is not None:
        confirmed = confirm(request, found[-2:])
        user = request.__dict__["user"] = confirmed.username if confirmed else None
        if user is None:  # gone or revoked: read as a visitor
            cursor.execute(_sql(CHANNEL_NAMED), {"name": name, "user": None})
            found = cursor.fetchone()
    if found is None or not _readable(found):
        raise HTTPNotFound()
    return user, found


def _readable(found: tuple[Any, ...]) -> bool:
    """``access.channel_of``'s rule on its row: (kind, role, banned, ...)."""
    kind, role, banned = found[0], found[1], found[2]
    if kind is not None:
        return role is not None
    return not banned


LINKED_ROUTES = (
    *[("home", "/"), ("login", "/login"), ("logout", "/logout"), ("register", "/register")],
    *[("echo", "/echo"), ("account", "/account"), ("users", "/users"), ("dm", "/dm")],
)


def main(global_config: dict[str, Any], **settings: Any) -> Router:
    """The paste app factory."""
    settings["sqlalchemy.url"] = database_url(settings)
    with Configurator(settings=settings) as config:
        use_request_class(config, _SyncRequest)
        config.include("pyramid_jinja2")
        config.include("aiotutorial.jinja")  # the app's template lookups and JSON renderer
        config.add_renderer("json", JSONRenderer)  # (orjson), so that both sides render alike
        config.set_session_factory(session_factory(settings))
        config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
        config.set_default_csrf_options(
            require_csrf=True, token="csrf_token", header="X-CSRF-Token"
        )
        config.set_security_policy(_SecurityPolicy())
        config.set_root_factory(_Root)
        # The layout's protocol island (the same page as the app's, byte for byte); uploads'.
        config.include("aiotutorial.views.protocol")
        config.include("aiotutorial.uploads")
        config.add_static_view("static", "aiotutorial:static", cache_max_age=3600)
        # The routes the templates link to; served: /demo, the history and scenario 12's
        # pages (bench/sync_pages.py).
        for name, pattern in LINKED_ROUTES:
            config.add_route(name, pattern)
        config.add_route("demo", "/demo")
        config.add_route("messages", "/channels/{name}/messages")
        config.add_route("channels", "/channels")
        config.add_route("channel", "/channels/*traverse", factory=sync_pages.SyncChannels)
        config.add_route("leaderboard", "/leaderboard")
        config.add_route("search", "/search")
        config.scan(__name__)
        config.scan(sync_pages)
    return config.make_wsgi_app()
