"""Accounts: registering, logging in and out, sessions, who is signed in and what they may do.

- ``users``: usernames and passwords as rules, creating users, authenticating;
- ``passwords``: argon2id hashes in a thread pool of their own;
- ``sessions``: the signed session cookie, its secret, revoking every session at log-out;
- ``policy``: ``request.user`` confirmed by the database, the security policy;
- ``live``: log-out closes the user's sockets everywhere (a realtime feature);
- ``views``: the register, log-in and log-out pages.

The resources and their ACLs (who may view, chat, play) are ``aiotutorial.resources``.
"""

from __future__ import annotations

from typing import Any

from pyramid.csrf import SessionCSRFStoragePolicy, get_csrf_token

from ..aio.requests import request_factory_provides
from ..realtime import add_feature
from .live import SIGNED_OUT, SignedOutSockets
from .passwords import hash_password, stop_hash_pool, verify_password
from .policy import SecurityPolicy, User, identity_of
from .sessions import SESSION_COOKIE, revoke_sessions, session_factory, session_secret
from .users import (
    PASSWORD_MAX_BYTES,
    PASSWORD_MIN,
    USERNAME_MAX,
    USERNAME_MIN,
    UsernameTaken,
    authenticate,
    create_user,
    find_user,
    password_error,
    username_error,
)

__all__ = [
    "SIGNED_OUT",
    "SESSION_COOKIE",
    "USERNAME_MIN",
    "USERNAME_MAX",
    "PASSWORD_MIN",
    "PASSWORD_MAX_BYTES",
    "User",
    "UsernameTaken",
    "SecurityPolicy",
    "authenticate",
    "create_user",
    "find_user",
    "hash_password",
    "identity_of",
    "password_error",
    "revoke_sessions",
    "session_factory",
    "session_secret",
    "username_error",
    "verify_password",
    "includeme",
]


def includeme(config: Any) -> None:
    """Sessions, CSRF on every unsafe request, the security policy, ``request.user``, the
    account pages, and log-out closing sockets."""
    config.set_session_factory(session_factory(config.get_settings()))
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True, token="csrf_token", header="X-CSRF-Token")
    config.set_security_policy(SecurityPolicy())
    if not request_factory_provides(config, "user"):
        config.add_request_method(identity_of, "user", reify=True)
    if not request_factory_provides(config, "csrf_token"):
        config.add_request_method(get_csrf_token, "csrf_token", reify=True)
    config.add_shutdown_hook(stop_hash_pool)
    add_feature(config, SignedOutSockets)
    config.include(".views")
