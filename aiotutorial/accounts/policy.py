"""Who is signed in, and what they may do: the session's user confirmed by the database
(once per request, ``request.user``), and a Pyramid 2 security policy over the resources' ACLs.

The identity is read through the greenlet bridge (a synchronized coroutine, the aiopyramid
pattern): ``request.identity`` works in coroutine views, in synchronous views in the executor,
and in websocket views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pyramid.authorization import ACLHelper, Authenticated, Everyone
from pyramid.request import Request

from ..aio.helpers import run_awaitable
from ..db import database_time
from ..db import schema as db
from ..db.compiled import Prepared
from .sessions import ISSUED_KEY, SESSION_KEY

__all__ = ["User", "SecurityPolicy", "confirm", "identity_of", "session_username"]


@dataclass(frozen=True)
class User:
    """The signed-in user, as ``request.identity``."""

    username: str


# Read on every signed-in request: built and compiled once.
IDENTITY = Prepared(
    sa.select(db.users.c.username, db.users.c.sessions_valid_after).where(
        db.users.c.username == sa.bindparam("username")
    )
)


def session_username(request: Request) -> str | None:
    """The user the request's session names, not yet confirmed."""
    username = request.session.get(SESSION_KEY)
    return username if isinstance(username, str) else None


def confirm(request: Request, account: tuple[Any, Any] | None) -> User | None:
    """The session's user from the row of its account, ``(username, sessions_valid_after)``
    (None, or a None username: there is no such account); a session of an account that is
    gone, or issued before its sessions were revoked (a log-out everywhere), is forgotten."""
    if account is None or account[0] is None:  # the account is gone: forget it
        request.session.pop(SESSION_KEY, None)
        return None
    name, revoked = account
    issued = request.session.get(ISSUED_KEY)
    if revoked is not None and (
        not isinstance(issued, int | float) or issued < revoked.timestamp()
    ):
        request.session.invalidate()  # issued before a log-out: revoked
        return None
    return User(name)


async def _load_identity(request: Request) -> User | None:
    username = session_username(request)
    if username is None:
        return None
    found = await request.db.rows(IDENTITY, username=username)
    return confirm(request, found[0] if found else None)


def identity_of(request: Request) -> User | None:
    # A synchronized call: works from synchronous Pyramid code in the request's greenlet
    # (inside coroutine views too) and from views running in the executor.
    return run_awaitable(_load_identity(request))


class SecurityPolicy:
    """Pyramid 2 security policy: the session names the user, the database confirms it."""

    def __init__(self) -> None:
        self.acl = ACLHelper()

    def identity(self, request: Request) -> User | None:
        return request.user

    def authenticated_userid(self, request: Request) -> str | None:
        user = request.user
        return user.username if user is not None else None

    def effective_principals(self, request: Request) -> list[str]:
        principals = [Everyone]
        user = request.user
        if user is not None:
            principals += [Authenticated, f"user:{user.username}"]
        return principals

    def permits(self, request: Request, context: Any, permission: str) -> Any:
        return self.acl.permits(context, self.effective_principals(request), permission)

    def remember(self, request: Request, userid: str, **kw: Any) -> list:
        """Sign ``userid`` in with a fresh session (new cookie and CSRF token)."""
        request.session.invalidate()
        request.session[SESSION_KEY] = userid
        request.session[ISSUED_KEY] = run_awaitable(_issued_now(request))
        request.session.new_csrf_token()
        request.__dict__["user"] = User(userid)
        return []

    def forget(self, request: Request, **kw: Any) -> list:
        request.session.invalidate()
        request.__dict__["user"] = None
        return []


async def _issued_now(request: Request) -> float:
    """Sessions are issued and revoked by the database's clock, whatever the hosts' say."""
    return await database_time(request.db)
