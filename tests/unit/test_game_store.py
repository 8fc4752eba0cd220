"""The game's owner in process (``aiotutorial.game.owner``), the queries of
``aiotutorial.game.store`` mocked: a stale object does not unregister a newer one, nothing is
claimed after the release at shutdown (nor while a claim is under way), a failed step does not
forget a presence change, and a reconnection of the bus wakes every game it owns.

tests/functional/test_game_store.py runs the game's queries against the testing database.
"""

from __future__ import annotations

import asyncio
import contextlib
import unittest
from typing import Any
from unittest import mock

import psycopg2

from aiotutorial.game import ownership, store
from aiotutorial.game.owner import OwnedGame, Owner
from aiotutorial.game.rules import DRAWING
from aiotutorial.realtime import Hub

WORKER = "store-test"


class _Transaction:
    is_active = True

    async def commit(self) -> None:
        self.is_active = False

    async def rollback(self) -> None:
        self.is_active = False


class _Connection:
    """A connection for the owner's code under test, whose queries are all mocked."""

    in_transaction = False

    async def begin(self) -> _Transaction:
        return _Transaction()


class _Engine:
    @contextlib.asynccontextmanager
    async def acquire(self) -> Any:
        yield _Connection()


class OwnerTests(unittest.IsolatedAsyncioTestCase):
    """The owner's bookkeeping, with the queries of ``store`` mocked."""

    def owner(self) -> Owner:
        hub = mock.Mock(engine=_Engine(), worker=WORKER)
        return Owner(hub, 3.0)

    async def test_a_stale_object_does_not_unregister_a_newer_one(self) -> None:
        owner = self.owner()
        with mock.patch.object(OwnedGame, "poke"):
            stale = owner.adopt(7, 1, "c")
            fresh = owner.adopt(7, 2, "c")  # taken over again, at a higher epoch
            assert stale is not None and fresh is not None
            stale.forget()  # e.g. its step, woken late, found the row no longer its own
        self.assertIs(owner.games.get(7), fresh)
        fresh.forget()
        self.assertNotIn(7, owner.games)

    async def test_nothing_is_claimed_once_released(self) -> None:
        owner = self.owner()
        with (
            mock.patch.object(ownership, "release_leases", mock.AsyncMock()),
            mock.patch.object(ownership, "claim_orphan", mock.AsyncMock()) as claim,
            mock.patch.object(ownership, "renew_leases", mock.AsyncMock(return_value={})),
        ):
            await owner.release_all()
            await owner.renew_and_claim()
        claim.assert_not_called()
        self.assertIsNone(owner.adopt(8, 1, "c"))

    async def test_a_release_waits_for_a_claim_under_way(self) -> None:
        owner = self.owner()
        claimed = asyncio.Event()
        order: list[str] = []

        async def slow_claim(*args: Any) -> Any:
            order.append("claim")
            await claimed.wait()
            return None

        async def release(*args: Any) -> None:
            order.append("release")

        with (
            mock.patch.object(ownership, "claim_orphan", slow_claim),
            mock.patch.object(ownership, "release_leases", release),
            mock.patch.object(ownership, "renew_leases", mock.AsyncMock(return_value={})),
        ):
            claiming = asyncio.ensure_future(owner.renew_and_claim())
            await asyncio.sleep(0.05)
            releasing = asyncio.ensure_future(owner.release_all())
            await asyncio.sleep(0.05)
            self.assertEqual(order, ["claim"])  # the release waits
            claimed.set()
            await claiming
            await releasing
        self.assertEqual(order, ["claim", "release"])

    async def test_a_failed_step_keeps_the_presence_change(self) -> None:
        owner = self.owner()
        with mock.patch.object(OwnedGame, "poke"):
            owned = owner.adopt(9, 1, "c")
        assert owned is not None
        owned.presence_changed = True
        failing = mock.AsyncMock(side_effect=psycopg2.OperationalError("connection lost"))
        with mock.patch.object(store, "lock_owned", failing), mock.patch.object(owned, "_arm"):
            await owned._step()
        self.assertTrue(owned.presence_changed)
        seen: list[bool] = []

        async def lock_owned(*args: Any) -> Any:
            return None  # no longer ours: nothing applied, nothing to remember

        async def apply(conn: Any, row: Any, presence_changed: bool) -> list[Any]:
            seen.append(presence_changed)
            return []

        with mock.patch.object(store, "lock_owned", lock_owned):
            owned.gone = False
            await owned._step()
        owned.presence_changed = True
        found = mock.Mock(state=mock.Mock(phase=DRAWING, next_wakeup=lambda: None), now=0.0)

        async def locked(*args: Any) -> Any:
            return found

        with (
            mock.patch.object(store, "lock_owned", locked),
            mock.patch.object(store, "save", mock.AsyncMock()),
            mock.patch.object(owned, "_apply", apply),
        ):
            await owned._step()
        self.assertEqual(seen, [True])  # the change reached the step that succeeded
        self.assertFalse(owned.presence_changed)

    async def test_a_bus_reconnection_wakes_every_game_owned(self) -> None:
        # What reached the inbox while the bus was away was not announced: the hub's recovery
        # calls its reconnect hooks, the game's wakes each game it owns.
        owner = self.owner()
        hub = Hub(_Engine(), "", {})
        hub.add_reconnect_hook(owner.wake_all)
        with mock.patch.object(OwnedGame, "poke") as poke:
            owner.adopt(10, 1, "a")
            owner.adopt(11, 1, "b")
            poke.reset_mock()
            await hub._recover()
        self.assertEqual(poke.call_count, 2)
        self.assertTrue(all(g.presence_changed for g in owner.games.values()))
