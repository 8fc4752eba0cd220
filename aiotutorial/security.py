"""Accounts' security: argon2id hashes, the signed session, CSRF, and the security policy.

Hashing runs in a small thread pool of its own (argon2 is CPU-heavy and releases the GIL), so
a burst of log-ins neither blocks the loop nor starves the pool of synchronous views. The
security policy reads the signed-in user from the database through the greenlet bridge (a
synchronized coroutine, the aiopyramid pattern), once per request.
"""

from __future__ import annotations

import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pyramid.authorization import ACLHelper, Allow, Authenticated, Everyone
from pyramid.csrf import SessionCSRFStoragePolicy, get_csrf_token
from pyramid.exceptions import ConfigurationError
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.session import JSONSerializer, SignedCookieSessionFactory
from pyramid.settings import asbool

from . import database as db
from .aio.helpers import run_awaitable, run_in_executor
from .compiled import Prepared
from .realtime import add_feature, publish
from .request import provided_by_factory

__all__ = [
    "User",
    "Root",
    "SecurityPolicy",
    "hash_password",
    "verify_password",
    "find_user",
    "session_secret",
    "revoke_sessions",
    "session_factory",
]

log = logging.getLogger(__name__)

SESSION_KEY = "user"
ISSUED_KEY = "issued"  # when the user signed in (Pyramid's session.created survives rotation)
SESSION_COOKIE = "aiotutorial_session"
SESSION_MAX_AGE = 14 * 24 * 3600
SESSION_REVOKED = "session.revoked"
SIGNED_OUT = 4001  # the close code of a socket whose session ended

# argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~40 ms a hash here.
# argon2-cffi's default (64 MiB, 3 passes, 4 lanes) took ~300 ms on this 2-core machine, which
# would make 50 concurrent log-ins wait seconds. Hashes made with other parameters verify and
# are re-hashed with these at the next log-in. An encoded hash is ~97 characters.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@dataclass(frozen=True)
class User:
    """The signed-in user, as ``request.identity``."""

    username: str


class Root:
    """The root resource: who may do what (chatting and playing need a signed-in user)."""

    __acl__ = [
        (Allow, Everyone, "view"),
        (Allow, Authenticated, "chat"),
        (Allow, Authenticated, "play"),
    ]

    def __init__(self, request: Request) -> None:
        self.request = request


# --- passwords ------------------------------------------------------------------------------


def _hash_pool(registry: Registry) -> ThreadPoolExecutor:
    pool = registry.get("security.hash_pool")
    if pool is None or registry.get("security.hash_pool_pid") != os.getpid():
        # Leave a core to the event loop: hashing is CPU-bound.
        default = max(1, (os.cpu_count() or 2) - 1)
        threads = int(registry.settings.get("security.hash_threads", default))
        pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="argon2")
        registry["security.hash_pool"] = pool
        registry["security.hash_pool_pid"] = os.getpid()
    return pool


async def _stop_hash_pool(registry: Registry) -> None:
    pool = registry.pop("security.hash_pool", None)
    if pool is not None and registry.get("security.hash_pool_pid") == os.getpid():
        pool.shutdown(wait=False, cancel_futures=True)


async def hash_password(registry: Registry, password: str) -> str:
    """An argon2id hash of ``password``, computed off the loop."""
    return await run_in_executor(_hash_pool(registry), _hasher.hash, password)


def _verify(phash: str, password: str) -> tuple[bool, bool]:
    try:
        _hasher.verify(phash, password)
    except (VerificationError, InvalidHashError):
        return False, False
    return True, _hasher.check_needs_rehash(phash)


async def verify_password(
    registry: Registry, phash: str | None, password: str
) -> tuple[bool, bool]:
    """``(matches, needs_rehash)``, computed off the loop.

    Without a hash (an unknown user) a dummy hash is verified all the same, so that the answer
    takes about as long as for a real user with a wrong password.
    """
    if phash is None:
        dummy = registry.get("security.dummy_hash")
        if dummy is None:
            dummy = await hash_password(registry, secrets.token_urlsafe(16))
            registry["security.dummy_hash"] = dummy
        await run_in_executor(_hash_pool(registry), _verify, dummy, password)
        return False, False
    return await run_in_executor(_hash_pool(registry), _verify, phash, password)


# --- users ----------------------------------------------------------------------------------


async def find_user(request: Request, username: str) -> Any:
    """The ``users`` row whose name equals ``username`` regardless of case, or None."""
    result = await request.db.execute(
        sa.select(db.users).where(sa.func.lower(db.users.c.username) == username.lower())
    )
    return await result.first()


# Read on every signed-in request: built and compiled once.
IDENTITY = Prepared(
    sa.select(db.users.c.username, db.users.c.sessions_valid_after).where(
        db.users.c.username == sa.bindparam("username")
    )
)


async def _load_identity(request: Request) -> User | None:
    username = request.session.get(SESSION_KEY)
    if not isinstance(username, str):
        return None
    found = await request.db.rows(IDENTITY, username=username)
    if not found:  # the account is gone: forget it
        request.session.pop(SESSION_KEY, None)
        return None
    name, revoked = found[0]
    issued = request.session.get(ISSUED_KEY)
    if revoked is not None and (
        not isinstance(issued, int | float) or issued < revoked.timestamp()
    ):
        request.session.invalidate()  # issued before a log-out: revoked
        return None
    return User(name)


async def revoke_sessions(request: Request, username: str) -> None:
    """Refuse from now on every session of ``username`` issued until now (log-out), and close
    that user's live sockets on every worker of every server (through the bus)."""

    async def revoke(conn: Any) -> None:
        await conn.execute(
            sa.update(db.users)
            .where(db.users.c.username == username)
            .values(sessions_valid_after=sa.func.clock_timestamp())
        )
        await publish(conn, {"type": SESSION_REVOKED, "user": username})

    await request.db.run_transaction(revoke)


async def _database_time(request: Request) -> float:
    """The database's clock: sessions are issued and revoked by the same one, whatever the
    clocks of the app's hosts say."""
    now = await request.db.scalar(sa.text("SELECT extract(epoch FROM clock_timestamp())::float8"))
    return float(now)


class SignedOutSockets:
    """Closes the sockets of a user whose sessions were revoked (4001, "signed out"): a live
    socket must not outlive the log-out that ended its session.

    It runs in the bus's loop, which every live delivery of the worker goes through: it waits
    on none of those clients (``Hub.close_user`` leaves each handshake to its socket's task).
    The socket then opened with the old cookie is a visitor's, which reads only."""

    name = "sessions"

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        hub.on(SESSION_REVOKED, self.on_revoked)

    async def on_revoked(self, event: dict[str, Any], text: str) -> None:
        await self.hub.close_user(event["user"], SIGNED_OUT, "signed out")


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
        request.session[ISSUED_KEY] = run_awaitable(_database_time(request))
        request.session.new_csrf_token()
        request.__dict__["user"] = User(userid)
        return []

    def forget(self, request: Request, **kw: Any) -> list:
        request.session.invalidate()
        request.__dict__["user"] = None
        return []


# --- the session's secret -------------------------------------------------------------------


def session_secret(settings: dict[str, Any], project_root: Path) -> str:
    """``AIOTUTORIAL_SECRET``, else ``session.secret``, else (development only) var/secret."""
    secret = os.environ.get("AIOTUTORIAL_SECRET") or settings.get("session.secret")
    if secret:
        if len(secret) < 32:
            raise ConfigurationError("the session secret must be at least 32 characters long")
        return secret
    if not asbool(settings.get("session.generate_secret", False)):
        raise ConfigurationError(
            "no session secret: set AIOTUTORIAL_SECRET in the environment (or session.secret "
            "in the ini file) to a long random string, e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`. Sessions and "
            "CSRF tokens are signed with it, so it must stay the same across restarts."
        )
    path = project_root / "var" / "secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Exclusive create: of several workers starting at once, one writes and the others read.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    log.info("generated a development session secret in %s", path)
    return secret


class _SessionSerializer(JSONSerializer):
    """JSON that must hold what Pyramid's session stores: ``[renewed, created, {state}]``.

    A cookie signed with our secret but holding anything else (an old format, a bug) is
    treated as no session, not as a 500.
    """

    def loads(self, bstruct: bytes) -> Any:
        value = super().loads(bstruct)
        if (
            not isinstance(value, list)
            or len(value) != 3
            or not all(isinstance(t, int | float) and not isinstance(t, bool) for t in value[:2])
            or not isinstance(value[2], dict)
        ):
            raise ValueError("not a session")
        return value


def session_factory(settings: dict[str, Any]) -> Any:
    """The signed-cookie session factory (HttpOnly, SameSite=Lax, JSON, not pickle)."""
    project_root = Path(__file__).resolve().parent.parent
    return SignedCookieSessionFactory(
        session_secret(settings, project_root),
        cookie_name=SESSION_COOKIE,
        httponly=True,
        samesite="Lax",
        secure=asbool(settings.get("session.secure", False)),
        max_age=SESSION_MAX_AGE,
        timeout=SESSION_MAX_AGE,
        reissue_time=3600,
        serializer=_SessionSerializer(),
    )


def includeme(config: Any) -> None:
    """Sessions, CSRF on every unsafe request, the security policy and the root ACL."""
    config.set_session_factory(session_factory(config.get_settings()))
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True, token="csrf_token", header="X-CSRF-Token")
    config.set_security_policy(SecurityPolicy())
    config.set_root_factory(Root)
    if not provided_by_factory(config, "user"):
        config.add_request_method(identity_of, "user", reify=True)
    if not provided_by_factory(config, "csrf_token"):
        config.add_request_method(get_csrf_token, "csrf_token", reify=True)
    config.add_shutdown_hook(_stop_hash_pool)
    add_feature(config, SignedOutSockets)
