"""Register, log in, log out: the account pages and their forms."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from pyramid.httpexceptions import HTTPBadRequest, HTTPSeeOther
from pyramid.request import Request
from pyramid.security import forget, remember
from pyramid.view import view_config

from ..throttle import SharedThrottle
from .sessions import revoke_sessions
from .users import (
    PASSWORD_MAX_BYTES,
    USERNAME_MAX,
    UsernameTaken,
    authenticate,
    create_user,
    is_deactivated,
    password_error,
    username_error,
)

LOGIN_FAILED = "Wrong username or password."
DEACTIVATED = "This account was deactivated by an administrator."
# Set by a log-out for the next page to say "you have been signed out" (views.channels).
SIGNED_OUT_COOKIE = "aiotutorial_signed_out"
# Longest value read from any field: beyond it the form is refused outright.
FIELD_MAX_CHARS = 4 * PASSWORD_MAX_BYTES


def read_form(request: Request, *names: str) -> dict[str, str]:
    """The named fields of a POSTed form, each once, as text ('' when missing).

    A field sent twice or far too long is a 400 (no browser sends that from our forms).
    """
    values = {}
    for name in names:
        sent = request.POST.getall(name)
        if len(sent) > 1:
            raise HTTPBadRequest(f"The field '{name}' was sent more than once.")
        value = sent[0] if sent else ""
        if not isinstance(value, str):
            raise HTTPBadRequest(f"The field '{name}' must be text, not a file.")
        if len(value) > FIELD_MAX_CHARS:
            raise HTTPBadRequest(f"The field '{name}' is too long.")
        # WebOb decodes forms with errors="replace": U+FFFD marks bytes that were not UTF-8.
        if "\ufffd" in value:
            raise HTTPBadRequest(f"The field '{name}' is not valid UTF-8.")
        if "\x00" in value:
            raise HTTPBadRequest(f"The field '{name}' holds a NUL character.")
        values[name] = value
    return values


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ord(char) < 32 or char == "\\" for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _throttle(request: Request, name: str) -> SharedThrottle:
    return request.registry[f"throttle.{name}"]


async def _spend(request: Request, name: str, key: str) -> float:
    """Spend an attempt of the ``name`` limit for ``key``; 0, or the seconds to wait."""
    return await _throttle(request, name).consume(request.db, key)


def _too_many(request: Request, wait: float, template_values: dict[str, Any]) -> dict[str, Any]:
    seconds = max(1, math.ceil(wait))
    request.response.status = 429
    request.response.headers["Retry-After"] = str(seconds)
    return {**template_values, "error": f"Too many attempts; try again in {seconds} seconds."}


def _client(request: Request) -> str:
    return request.remote_addr or "unknown"


def _signed_in_already(request: Request) -> HTTPSeeOther | None:
    """A signed-in person who opens the log-in or register page goes where they were going.

    Only a browser's navigation (``Sec-Fetch-Mode: navigate``): a script, or a tool that
    reads the form for its CSRF token while signed in (to log in as someone else), still
    gets the form.
    """
    if request.identity is None or request.headers.get("Sec-Fetch-Mode") != "navigate":
        return None
    target = safe_next(request.GET.get("next")) or request.route_url("home")
    return HTTPSeeOther(location=target)


@view_config(
    route_name="register", request_method="GET", renderer="aiotutorial:templates/register.jinja2"
)
async def register_form(request: Request) -> Any:
    if (elsewhere := _signed_in_already(request)) is not None:
        return elsewhere
    return {"username": "", "errors": {}, "error": None, "username_max": USERNAME_MAX}


@view_config(
    route_name="register", request_method="POST", renderer="aiotutorial:templates/register.jinja2"
)
async def register(request: Request) -> Any:
    form = read_form(request, "username", "password")
    username = form["username"].strip()
    values: dict[str, Any] = {
        "username": username,
        "errors": {},
        "error": None,
        "username_max": USERNAME_MAX,
    }
    wait = await _spend(request, "register_address", _client(request))
    if wait:
        return _too_many(request, wait, values)
    errors = {}
    if problem := username_error(username):
        errors["username"] = problem
    if problem := password_error(form["password"]):
        errors["password"] = problem
    if errors:
        request.response.status = 400
        return {**values, "errors": errors}
    try:
        username = await create_user(request, username, form["password"])
    except UsernameTaken:
        request.response.status = 409
        return {**values, "errors": {"username": "That username is taken."}}
    headers = remember(request, username)
    return HTTPSeeOther(location=request.route_url("home"), headers=headers)


@view_config(
    route_name="login", request_method="GET", renderer="aiotutorial:templates/login.jinja2"
)
async def login_form(request: Request) -> Any:
    if (elsewhere := _signed_in_already(request)) is not None:
        return elsewhere
    return {"username": "", "next": safe_next(request.GET.get("next")) or "", "error": None}


@view_config(
    route_name="login", request_method="POST", renderer="aiotutorial:templates/login.jinja2"
)
async def login(request: Request) -> Any:
    form = read_form(request, "username", "password", "next")
    username = form["username"].strip()
    next_path = safe_next(form["next"])
    values = {"username": username, "next": next_path or "", "error": None}
    name_key, address_key = username.lower(), _client(request)
    # Spent before the password is checked (atomically, in the database): attempts sent all
    # at once, to any worker of any server, are all counted.
    wait = max(
        await _spend(request, "login_username", name_key),
        await _spend(request, "login_address", address_key),
    )
    if wait:
        return _too_many(request, wait, values)
    canonical = None
    if username and form["password"] and len(username) <= USERNAME_MAX:
        canonical = await authenticate(request, username, form["password"])
    if canonical is None:
        request.response.status = 400
        return {**values, "error": LOGIN_FAILED}
    if await is_deactivated(request, canonical):
        # Told only to who knows the password: nobody else learns the account's state.
        request.response.status = 403
        return {**values, "error": DEACTIVATED}
    await _throttle(request, "login_username").reset(request.db, name_key)
    headers = remember(request, canonical)
    return HTTPSeeOther(location=next_path or request.route_url("home"), headers=headers)


@view_config(
    route_name="logout", request_method="GET", renderer="aiotutorial:templates/logout.jinja2"
)
async def logout_form(request: Request) -> dict[str, Any]:
    """A GET never logs out (links can be followed by anyone); it offers the button."""
    return {}


@view_config(route_name="logout", request_method="POST")
async def logout(request: Request) -> HTTPSeeOther:
    """Log out here and everywhere: every session of the user issued until now is revoked."""
    if request.identity is not None:
        await revoke_sessions(request, request.identity.username)
    response = HTTPSeeOther(location=request.route_url("home"), headers=forget(request))
    # The page it leads to says so, once (the session that could carry a message is gone).
    response.set_cookie(
        SIGNED_OUT_COOKIE,
        "1",
        max_age=60,
        httponly=True,
        samesite="Lax",
        secure=request.scheme == "https",
    )
    return response


@view_config(route_name="session", request_method="GET", renderer="json")
async def session_user(request: Request) -> dict[str, Any]:
    """Who this session belongs to (``{"user": null}`` once it has ended): a page whose socket
    is refused asks, to tell a session that ended from a server that is away."""
    request.response.cache_control = "no-store"
    return {"user": request.identity.username if request.identity is not None else None}


def includeme(config) -> None:
    settings = config.get_settings()

    def limit(name: str, setting: str, attempts: int, seconds: int) -> SharedThrottle:
        return SharedThrottle.per_window(
            name,
            int(settings.get(f"security.{setting}_attempts", attempts)),
            float(settings.get(f"security.{setting}_window", seconds)),
        )

    config.registry["throttle.login_username"] = limit("login_username", "login", 5, 60)
    config.registry["throttle.login_address"] = limit("login_address", "login_address", 20, 60)
    config.registry["throttle.register_address"] = limit("register_address", "register", 10, 600)
    config.add_route("register", "/register")
    config.add_route("login", "/login")
    config.add_route("logout", "/logout")
    config.add_route("session", "/session")
    config.scan(__name__)
