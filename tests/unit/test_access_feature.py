"""Access on a worker's hub, in process: a removal event closes that user's sockets of that
channel (4403) and no other; a socket refused by its admission check is closed before any
catch-up, having been among the hub's members while it was asked (so that a removal event
published meanwhile would have found it)."""

from __future__ import annotations

import unittest
from typing import Any
from unittest import mock

from aiotutorial.access import REMOVED, REVOKED, AccessFeature
from aiotutorial.chat import ChatFeature
from aiotutorial.realtime import Hub, Member, serve_channel

from .test_realtime_faults import _Refusing, _Socket


class AccessFeatureTests(unittest.IsolatedAsyncioTestCase):
    async def test_a_removal_closes_that_users_sockets_of_that_channel_only(self) -> None:
        hub = Hub(_Refusing(), "", {})  # type: ignore[arg-type]
        AccessFeature(hub)
        sockets = {key: _Socket() for key in ("bob-here", "bob-here-2", "bob-elsewhere", "carol")}
        for key, channel, user in (
            ("bob-here", "room", "bob"),
            ("bob-here-2", "room", "bob"),
            ("bob-elsewhere", "other", "bob"),
            ("carol", "room", "carol"),
        ):
            hub.members[channel].add(Member(sockets[key], channel, user, 10))
        await hub.dispatch({"type": REVOKED, "channel": "room", "user": "bob"})
        self.assertEqual(
            {key: sock.closed_with for key, sock in sockets.items()},
            {"bob-here": REMOVED, "bob-here-2": REMOVED, "bob-elsewhere": None, "carol": None},
        )

    async def test_a_socket_refused_on_admission_is_closed_before_its_catch_up(self) -> None:
        hub = Hub(_Refusing(), "", {})  # type: ignore[arg-type]
        ChatFeature(hub)
        sock = _Socket()
        asked: list[bool] = []

        async def admit() -> tuple[int, str] | None:
            asked.append(any(m.ws is sock for m in hub.members["room"]))
            return REMOVED, "removed from the channel"

        catch_up = mock.AsyncMock()
        with (
            mock.patch.object(hub.presence, "joined", mock.AsyncMock()),
            mock.patch.object(hub.streams[0], "catch_up", catch_up),
        ):
            await serve_channel(hub, sock, "room", "bob", {"after": 0}, admit)
        self.assertEqual(asked, [True])
        self.assertEqual(sock.closed_with, REMOVED)
        catch_up.assert_not_awaited()
        self.assertFalse(hub.members["room"])

    async def test_a_socket_admitted_goes_on_to_its_catch_up(self) -> None:
        hub = Hub(_Refusing(), "", {})  # type: ignore[arg-type]
        ChatFeature(hub)
        sock = _Socket()

        async def admit() -> Any:
            return None

        with mock.patch.object(hub.presence, "joined", mock.AsyncMock()):
            await serve_channel(hub, sock, "room", "bob", {"after": 0}, admit)
        # Admitted, it went on to the catch-up, which fails on this database (1013).
        self.assertEqual(sock.closed_with, 1013)
