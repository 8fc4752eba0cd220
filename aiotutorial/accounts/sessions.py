"""Sessions: signed cookies holding JSON (not pickle), their secret, and log-out everywhere.

A session names its user and when it was issued (on the database's clock). Logging out revokes
every session of that user issued until then (``users.sessions_valid_after``): a copied cookie
dies with the log-out although nothing is stored server-side, and the user's live sockets on
every worker close (an event on the bus, which ``accounts.live`` hears).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pyramid.exceptions import ConfigurationError
from pyramid.request import Request
from pyramid.session import JSONSerializer, SignedCookieSessionFactory
from pyramid.settings import asbool

from ..db import schema as db
from ..realtime import publish

__all__ = [
    "SESSION_KEY",
    "ISSUED_KEY",
    "SESSION_COOKIE",
    "SESSION_REVOKED",
    "session_secret",
    "session_factory",
    "revoke_sessions",
]

log = logging.getLogger(__name__)

SESSION_KEY = "user"
ISSUED_KEY = "issued"  # when the user signed in (Pyramid's session.created survives rotation)
SESSION_COOKIE = "aiotutorial_session"
SESSION_MAX_AGE = 14 * 24 * 3600
SESSION_REVOKED = "session.revoked"


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
    project_root = Path(__file__).resolve().parent.parent.parent
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
