"""Accounts and channels made over HTTP, as a browser makes them, for the websocket scenarios.

``Account`` registers a user through the real /register form (CSRF token and all) and keeps its
session cookie, which signs its websockets in; ``chat_setup`` makes a receiving and a sending
user and a channel for scenarios 4 and 5. Their names carry the run's id, and ``Context``
lists them for the cleanup at the end of the run.
"""

from __future__ import annotations

import secrets

import aiohttp

from ..servers import Server
from .common import CSRF_FIELD, SESSION_COOKIE
from .context import Context

__all__ = ["Account", "chat_setup"]


class Account:
    """A user registered through the real /register form; its session cookie signs sockets in."""

    def __init__(self, base_url: str, username: str) -> None:
        self.base_url = base_url
        self.username = username
        self.password = secrets.token_urlsafe(12)
        self.csrf = ""
        # unsafe=True: keep the cookies of an IP address host (127.0.0.1).
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def _token(self, path: str) -> str:
        async with self.session.get(self.base_url + path) as response:
            text = await response.text()
        found = CSRF_FIELD.search(text)
        if found is None:
            raise RuntimeError(f"no CSRF token in GET {path} ({response.status})")
        return found.group(1)

    async def register(self) -> Account:
        token = await self._token("/register")
        form = {"csrf_token": token, "username": self.username, "password": self.password}
        async with self.session.post(
            self.base_url + "/register", data=form, allow_redirects=False
        ) as response:
            text = await response.text()
        if response.status != 303:
            raise RuntimeError(f"registering gave {response.status}: {text[:300]}")
        self.csrf = await self._token("/login")
        return self

    def cookie(self) -> str:
        """``aiotutorial_session=...`` for a Cookie header."""
        for cookie in self.session.cookie_jar:
            if cookie.key == SESSION_COOKIE:
                return f"{cookie.key}={cookie.value}"
        raise RuntimeError("no session cookie after registering")

    async def create_channel(self, name: str) -> None:
        async with self.session.post(
            self.base_url + "/channels",
            json={"name": name},
            headers={"X-CSRF-Token": self.csrf},
        ) as response:
            text = await response.text()
        if response.status != 201:
            raise RuntimeError(f"creating {name} gave {response.status}: {text[:300]}")

    async def close(self) -> None:
        await self.session.close()


async def chat_setup(ctx: Context, server: Server) -> tuple[str, str, str]:
    """Register a receiving and a sending user and create a channel: (channel, cookies...)."""
    prefix = f"bench_{ctx.run_id}_{len(ctx.channels)}"
    receiver = Account(server.url(""), f"{prefix}r")
    sender = Account(server.url(""), f"{prefix}s")
    try:
        await receiver.register()
        ctx.users.append(receiver.username)
        await sender.register()
        ctx.users.append(sender.username)
        channel = f"bench-{ctx.run_id}-{len(ctx.channels)}"
        await sender.create_channel(channel)
        ctx.channels.append(channel)
        return channel, receiver.cookie(), sender.cookie()
    finally:
        await receiver.close()
        await sender.close()
