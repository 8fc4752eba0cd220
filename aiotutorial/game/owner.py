"""One owner per game, on any worker of any server: it runs the timers, judges the guesses and
writes the state and the scores.

Ownership is a lease in the game's row (``game_state.owner``, ``epoch``, ``lease_until``, all
times on the database's clock). The owner renews it every ``RENEW_EVERY`` seconds; every worker
looks for games whose lease has run out as often and takes one over by raising its epoch. Each
of the owner's steps starts with a ``FOR UPDATE`` of the row that also checks owner and epoch
(``store.lock_owned``): a stale owner (stopped, then woken after another took over) finds no
row, writes nothing, and forgets the game. Why a lease row rather than an advisory lock: a
session advisory lock lives on one connection, so it needs a connection of its own per worker
(one taken from the pool would leak it to the next borrower), it is never released by a worker
that hangs without dying, and writes would still need an epoch to be fenced; a lease row works
with pooled connections, expires on its own, and carries the fence.

A step: lock the row, read the presence if it changed and the players' commands waiting in
the inbox, apply them and whatever time made due (``Game.tick``), then ``store.save`` (rows,
events, state) and commit; finally arm a timer for ``Game.next_wakeup``. Commands are deleted in
the transaction that applies them, so a takeover applies each exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from ..chat.api import forget_ref
from ..db import CONNECTION_ERRORS, transaction
from ..realtime import ACK, UNAVAILABLE, Hub, online_users
from . import ownership, store
from .effects import Effect, Post, Send
from .errors import GameError
from .rules import FINISHED, Game

__all__ = ["Owner", "OwnedGame"]

log = logging.getLogger(__name__)

RENEW_EVERY = 1.0
RETRY_AFTER = 1.0
MIN_DELAY = 0.02


class OwnedGame:
    """A game this worker owns: its timer and its one running step at a time."""

    def __init__(self, owner: Owner, game: int, epoch: int, channel: str) -> None:
        self.owner = owner
        self.game = game
        self.epoch = epoch
        self.channel = channel
        self.presence_changed = True  # read who is here at the first step
        self._wanted = False
        self._task: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.gone = False
        # Its channel's events reach this worker while it owns the game (its inbox's
        # announcements, who comes and goes), whether or not a socket here serves it.
        owner.hub.watch_channel_soon(channel)

    def poke(self) -> None:
        """Run a step soon (several pokes while one runs make one more step)."""
        if self.gone:
            return
        self._wanted = True
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while self._wanted and not self.gone:
            self._wanted = False
            await self._step()

    def _arm(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(max(MIN_DELAY, delay), self.poke)

    def forget(self) -> None:
        if not self.gone:
            self.owner.hub.unwatch_channel(self.channel)
        self.gone = True
        if self._timer is not None:
            self._timer.cancel()
        # Only this object: a newer one (a higher epoch, adopted since) stays registered.
        if self.owner.games.get(self.game) is self:
            del self.owner.games[self.game]

    async def _step(self) -> None:
        hub = self.owner.hub
        # Taken now and set again by a change heard meanwhile; put back when the step does
        # not commit, so that a departure is not forgotten with the transaction that failed.
        presence_changed, self.presence_changed = self.presence_changed, False
        try:
            async with hub.engine.acquire() as conn:
                async with transaction(conn):
                    row = await store.lock_owned(conn, self.game, hub.worker, self.epoch)
                    if row is None:
                        log.info("game %s is no longer ours (epoch %s)", self.game, self.epoch)
                        self.forget()
                        return
                    effects = await self._apply(conn, row, presence_changed)
                    await store.save(conn, row, effects)
        except CONNECTION_ERRORS as exc:
            self.presence_changed = self.presence_changed or presence_changed
            log.warning("game %s: step failed (%s); retrying", self.game, exc)
            self._arm(RETRY_AFTER)
            return
        except Exception:
            self.presence_changed = self.presence_changed or presence_changed
            log.exception("game %s: step failed", self.game)
            self._arm(RETRY_AFTER)
            return
        state = row.state
        if state.phase == FINISHED:
            log.info("game %s in %s finished", self.game, self.channel)
            self.forget()
            return
        wakeup = state.next_wakeup()
        if wakeup is not None:
            self._arm(wakeup - row.now)

    async def _apply(self, conn: Any, row: store.GameRow, presence_changed: bool) -> list[Effect]:
        state: Game = row.state
        rng = self.owner.rng
        effects: list[Effect] = []
        if presence_changed:
            effects += state.presence(await online_users(conn, row.channel), row.now)
        for command in await store.inbox(conn, self.game):
            row.inbox_read.append(command.id)
            ref = command.body.get("ref") if command.kind == "message" else None
            try:
                if state.phase == FINISHED:
                    if ref is None:
                        continue
                    raise GameError(UNAVAILABLE, "The game has just ended: send it again.")
                effects += _answered(_command(state, command, row.now), command, ref)
            except GameError as refused:
                refused.ref = ref
                effects.append(Send(refused.frame(), member=command.member))
                if ref is not None:
                    await forget_ref(conn, command.username, ref)  # judged again if resent
        if state.phase != FINISHED:
            effects += state.tick(row.now, rng)
        return effects


def _answered(effects: list[Effect], command: Any, ref: str | None) -> list[Effect]:
    """A chat message's ``ref`` answered: by the message posted from it, else (a correct
    guess, taken) by an ``ack`` to its socket."""
    if ref is None:
        return effects
    posted = [e for e in effects if isinstance(e, Post) and e.user == command.username]
    for post in posted:
        post.ref = ref
    if not posted:
        effects.append(Send({"type": ACK, "ref": ref}, member=command.member))
    return effects


def _command(state: Game, command: Any, now: float) -> list[Effect]:
    body = command.body
    if command.kind == "message":
        return state.message(command.username, command.member, body["content"], now)
    if command.kind == "choose":
        return state.choose(command.username, body.get("index"), now)
    if command.kind == "kick":
        return state.kick(command.username, body.get("user"), now)
    if command.kind == "spectate":
        return state.spectate(command.username, bool(body.get("on")), now)
    if command.kind == "rate":
        return state.rate(command.username, body.get("like"), now)
    log.warning("game %s: unknown command %r", state.game, command.kind)
    return []


class Owner:
    """The games this worker owns, their leases, and the takeover of orphans."""

    def __init__(self, hub: Hub, lease_seconds: float) -> None:
        self.hub = hub
        self.lease_seconds = lease_seconds
        self.games: dict[int, OwnedGame] = {}
        self.rng = random.SystemRandom()
        # Set when the worker shuts down: nothing is claimed or adopted any more.
        self.stopping = False
        self._claiming = asyncio.Lock()  # renewals and claims, apart from the release

    def adopt(self, game: int, epoch: int, channel: str) -> OwnedGame | None:
        if self.stopping:
            return None
        owned = self.games.get(game)
        if owned is None or owned.epoch != epoch:
            if owned is not None:
                owned.forget()
            owned = OwnedGame(self, game, epoch, channel)
            self.games[game] = owned
        owned.poke()
        return owned

    # --- events from the bus --------------------------------------------------------------

    def on_inbox(self, event: dict[str, Any], text: str) -> None:
        owned = self.games.get(event.get("game"))  # type: ignore[arg-type]
        if owned is not None:
            owned.poke()

    def wake_all(self) -> None:
        """After the bus reconnected: what reached the inbox meanwhile was not announced."""
        for owned in list(self.games.values()):
            owned.presence_changed = True
            owned.poke()

    def on_presence(self, event: dict[str, Any], text: str) -> None:
        channel = event.get("channel")
        for owned in list(self.games.values()):
            if channel in ("*", owned.channel):
                owned.presence_changed = True
                owned.poke()

    # --- leases ---------------------------------------------------------------------------

    async def leases_forever(self) -> None:
        while not self.stopping:
            await asyncio.sleep(RENEW_EVERY)
            try:
                await self.renew_and_claim()
            except CONNECTION_ERRORS as exc:
                log.warning("could not renew or claim game leases: %s", exc)

    async def renew_and_claim(self) -> None:
        async with self._claiming:
            if not self.stopping:
                await self._renew_and_claim()

    async def _renew_and_claim(self) -> None:
        lease = self.lease_seconds
        async with self.hub.engine.acquire() as conn:
            kept = await ownership.renew_leases(conn, self.hub.worker, list(self.games), lease)
            for game, owned in list(self.games.items()):
                epoch, waiting = kept.get(game, (None, False))
                if epoch != owned.epoch:
                    log.info("lost the lease of game %s", game)
                    owned.forget()
                elif waiting:
                    # Commands a second old at least: their announcement was lost (a bus
                    # away, a subscription not yet made), or is on its way. A step reads
                    # the inbox either way.
                    owned.poke()
            while not self.stopping:
                claimed = await ownership.claim_orphan(conn, self.hub.worker, lease)
                if claimed is None:
                    return
                log.info(
                    "took over game %s in %s (epoch %s)",
                    claimed.game,
                    claimed.channel,
                    claimed.epoch,
                )
                self.adopt(claimed.game, claimed.epoch, claimed.channel)

    async def release_all(self) -> None:
        """On shutdown: let another process take this worker's games over at once (and
        claim none again: a claim running now finds ``stopping`` set, and the leases it may
        have taken are released below, after it)."""
        self.stopping = True
        async with self._claiming:
            for owned in list(self.games.values()):
                owned.forget()
            try:
                async with self.hub.engine.acquire() as conn:
                    await ownership.release_leases(conn, self.hub.worker)
            except CONNECTION_ERRORS as exc:
                log.warning("could not release game leases: %s", exc)
