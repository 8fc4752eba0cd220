"""Accounts: who may register under which name, creating users, and checking passwords."""

from __future__ import annotations

import re
from typing import Any

import psycopg2
import sqlalchemy as sa
from pyramid.request import Request

from ..db import schema as db
from .passwords import hash_password, verify_password

__all__ = [
    "USERNAME_MIN",
    "USERNAME_MAX",
    "PASSWORD_MIN",
    "PASSWORD_MAX_BYTES",
    "UsernameTaken",
    "username_error",
    "password_error",
    "find_user",
    "create_user",
    "authenticate",
    "is_deactivated",
]

USERNAME_MIN = 3
USERNAME_MAX = 40
PASSWORD_MIN = 8
PASSWORD_MAX_BYTES = 1024
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")


class UsernameTaken(Exception):
    """Someone already has this name (in any letter case)."""


def username_error(username: str) -> str | None:
    """Why ``username`` cannot be registered, or None if it can (ignoring whether it is taken)."""
    if not USERNAME_MIN <= len(username) <= USERNAME_MAX:
        return f"A username has {USERNAME_MIN} to {USERNAME_MAX} characters."
    if not USERNAME_PATTERN.fullmatch(username):
        return "A username uses only letters A-Z and a-z, digits, and the signs _ . -"
    return None


def password_error(password: str) -> str | None:
    if len(password) < PASSWORD_MIN:
        return f"A password has at least {PASSWORD_MIN} characters."
    if len(password.encode("utf-8", "surrogatepass")) > PASSWORD_MAX_BYTES:
        return f"A password has at most {PASSWORD_MAX_BYTES} bytes."
    return None


async def find_user(request: Request, username: str) -> Any:
    """The ``users`` row whose name equals ``username`` regardless of case, or None."""
    result = await request.db.execute(
        sa.select(db.users).where(sa.func.lower(db.users.c.username) == username.lower())
    )
    return await result.first()


async def create_user(request: Request, username: str, password: str) -> str:
    """Insert a user with an argon2id hash of ``password``; ``UsernameTaken`` if the name is."""
    if await find_user(request, username) is not None:
        raise UsernameTaken(username)
    phash = await hash_password(request.registry, password)
    try:
        async with request.db.transaction() as conn:
            await conn.execute(db.users.insert().values(username=username, phash=phash))
    except psycopg2.errors.UniqueViolation:
        raise UsernameTaken(username) from None  # registered meanwhile by someone else
    return username


async def authenticate(request: Request, username: str, password: str) -> str | None:
    """The user's canonical name if ``password`` is theirs, else None.

    An unknown name and a wrong password take about as long (a dummy hash is verified) and
    look the same to the caller. A hash made with weaker parameters is replaced on success.
    """
    row: Any = await find_user(request, username)
    matches, needs_rehash = await verify_password(
        request.registry, row.phash if row is not None else None, password
    )
    if not matches:
        return None
    if needs_rehash:
        phash = await hash_password(request.registry, password)
        await request.db.execute(
            sa.update(db.users).where(db.users.c.username == row.username).values(phash=phash)
        )
    return row.username


async def is_deactivated(request: Request, username: str) -> bool:
    """Whether an administrator deactivated ``username``'s account (it may not sign in)."""
    found = await request.db.scalar(
        sa.select(sa.literal(True)).where(db.deactivated_accounts.c.user == username).limit(1)
    )
    return bool(found)
