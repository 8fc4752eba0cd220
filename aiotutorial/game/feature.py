"""The game as a client of the realtime layer: its frames on the channel socket, its stream of
events, and the guesses it takes from the chat.

What a player's frame does depends on where it is handled:
- ``game.start`` runs here, on the player's worker, which becomes the game's owner;
- ``game.draw`` is stored and relayed here in one statement that checks, on the game's row,
  that the sender is drawing now (no round trip through the owner on the hot path);
- ``game.choose``, ``game.kick`` and chat messages during a drawing phase go to the owner's
  inbox (a row and a NOTIFY), wherever the owner is; the owner answers through the bus;
- ``game.sync`` sends the socket the game as it is (after a gap in the stroke numbers).

The game stream's position is ``v``: drawn from one sequence while the game's row is locked,
so the events of a game are numbered in commit order; a socket that joins gets a snapshot
(``game.state`` with the current drawing) at position ``game_state.version`` and the events
after it.
"""

from __future__ import annotations

import logging
from typing import Any

from ..accounts import username_error
from ..chat.live import ChatFeature, Post
from ..db import run_transaction
from ..realtime import PRESENCE_CHANGED, Hub, Member, ProtocolError, Stream, encode
from ..throttle import Throttle
from . import store
from .drawing import validate_ops
from .owner import Owner
from .rules import (
    BAD_CHOICE,
    BAD_KICK,
    CHOOSING,
    NO_GAME,
    NOT_CHOOSING,
    NOT_DRAWER,
    GameError,
    Timing,
    validate_settings,
)

__all__ = ["GameFeature", "GameStream", "EVENT_TYPES"]

log = logging.getLogger(__name__)

STREAM = "game"
# Events of the game stream the owner publishes (and ``game.draw``, from the drawer's worker).
EVENT_TYPES = (
    "game.state",
    "game.words",
    "game.word",
    "game.hint",
    "game.guessed",
    "game.close",
    "game.turn_end",
    "game.over",
    "game.players",
    "game.kick_vote",
    "game.kicked",
    "game.draw",
)
RATE_LIMITED = "rate_limited"
EDIT_LOCKED = "edit_locked"


class GameStream(Stream):
    """A channel's game, as snapshots and the events that follow them."""

    name = STREAM

    async def catch_up(self, member: Member, params: dict[str, Any]) -> None:
        await self.replay(member, self._snapshot)

    async def _snapshot(self, member: Member) -> tuple[list[tuple[int, bytes]], bool]:
        async with self.hub.engine.acquire() as conn:
            found = await store.snapshot(conn, member.channel, member.user)
            if found is None:
                if member.cursor(STREAM) > 0:
                    # It was following a game that has ended since: it hears how.
                    over = await store.last_finished(conn, member.channel)
                    if over is not None:
                        member.send_frame(encode(over).encode("utf-8"))
                return [], False
        frame, version = found
        return [(version, encode(frame).encode("utf-8"))], False

    async def resync(self, member: Member) -> None:
        """The game as it is now, whatever this socket had (its cursor starts again)."""
        member.hold(STREAM)
        member.cursors[STREAM] = 0
        await self.replay(member, self._snapshot)

    async def recover(self, channel: str, members: list[Member]) -> None:
        async with self.hub.delivery_engine.acquire() as conn:
            now = await store.current(conn, channel)
        following = []
        for member in members:
            if now is not None or member.cursor(STREAM) > 0:
                member.cursors[STREAM] = 0  # a new snapshot, whatever it had
                following.append(member)
            elif not member.release(STREAM):  # no game, nor had one: go on live
                following.append(member)
        await self.replay_all(following, self._snapshot)

    def on_event(self, event: dict[str, Any], text: str) -> None:
        self.deliver(event, event["v"], text)


class GameFeature:
    """Registers the game with a worker's hub."""

    name = "game"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        settings = hub.settings
        self.timing = Timing(
            choose=float(settings.get("game.choose_seconds", Timing.choose)),
            reveal=float(settings.get("game.reveal_seconds", Timing.reveal)),
            drawer_gone=float(settings.get("game.drawer_gone_seconds", Timing.drawer_gone)),
            player_gone=float(settings.get("game.player_gone_seconds", Timing.player_gone)),
            alone=float(settings.get("game.alone_seconds", Timing.alone)),
        )
        self.lease_seconds = float(settings.get("game.lease_seconds", 3.0))
        self.commands = Throttle(
            float(settings.get("game.rate_per_second", 5)), int(settings.get("game.rate_burst", 10))
        )
        self.strokes = Throttle(
            float(settings.get("game.draw_per_second", 40)),
            int(settings.get("game.draw_burst", 80)),
        )
        self.owner = Owner(hub, self)
        self.stream = GameStream(hub)
        hub.add_stream(self.stream)
        for event_type in EVENT_TYPES:
            hub.on(event_type, self.stream.on_event)
        hub.on(store.INBOX_EVENT, self.owner.on_inbox)
        hub.on(PRESENCE_CHANGED, self.owner.on_presence)
        hub.on_frame("game.start", self.on_start)
        hub.on_frame("game.choose", self.on_choose)
        hub.on_frame("game.kick", self.on_kick)
        hub.on_frame("game.draw", self.on_draw)
        hub.on_frame("game.sync", self.on_sync)
        chat = hub.features.get("chat")
        if not isinstance(chat, ChatFeature):
            raise RuntimeError("the game needs the chat: include aiotutorial.chat.live first")
        chat.intercept(self.take_guesses)
        chat.guard_edits(self.no_edits_while_drawing)
        hub.add_task(self.owner.leases_forever)
        hub.add_stop_hook(self.owner.release_all)

    def _throttle(self, throttle: Throttle, key: str) -> None:
        if throttle.consume(key):
            raise ProtocolError(RATE_LIMITED, f"At most {throttle.rate:g} of these a second.")

    # --- frames -----------------------------------------------------------------------------

    async def on_start(self, member: Member, frame: dict[str, Any]) -> None:
        self._throttle(self.commands, member.user)
        settings = validate_settings(frame)

        async def start(conn: Any) -> store.GameRow:
            return await store.start_game(
                conn,
                member.channel,
                member.user,
                settings,
                self.timing,
                self.hub.worker,
                self.lease_seconds,
                self.owner.rng,
            )

        row = await run_transaction(self.hub.engine, start)
        log.info("game %s started in %s by %s", row.game, member.channel, member.user)
        self.owner.adopt(row.game, 1, member.channel)

    async def _enqueue(self, member: Member, kind: str, body: dict[str, Any], check: Any) -> None:

        async def enqueue(conn: Any) -> None:
            game = await store.current(conn, member.channel)
            if game is None:
                raise GameError(NO_GAME, "No game is running in this channel.")
            check(game)
            await store.enqueue(conn, game.game, member.channel, kind, member.user, member.id, body)

        await run_transaction(self.hub.engine, enqueue)

    async def on_choose(self, member: Member, frame: dict[str, Any]) -> None:
        self._throttle(self.commands, member.user)
        index = frame.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise GameError(BAD_CHOICE, '"index" is the number of one of the words offered.')

        def check(game: Any) -> None:
            # Refused at once when plainly wrong; the owner checks again when it applies it.
            if game.phase != CHOOSING:
                raise GameError(NOT_CHOOSING, "There is no word to choose right now.")
            if game.drawer != member.user:
                raise GameError(NOT_DRAWER, "Only the drawer chooses the word.")

        await self._enqueue(member, "choose", {"index": index}, check)

    async def on_kick(self, member: Member, frame: dict[str, Any]) -> None:
        self._throttle(self.commands, member.user)
        target = frame.get("user")
        if not isinstance(target, str) or username_error(target) is not None:
            raise GameError(BAD_KICK, '"user" is the name of a player.')
        await self._enqueue(member, "kick", {"user": target}, lambda game: None)

    async def on_draw(self, member: Member, frame: dict[str, Any]) -> None:
        self._throttle(self.strokes, member.id)
        _, text = validate_ops(frame.get("ops"))
        async with self.hub.engine.acquire() as conn:
            stored = await store.append_strokes(conn, member.channel, member.user, text)
            if stored is not None:
                return
            game = await store.current(conn, member.channel)
        if game is None:
            raise GameError(NO_GAME, "No game is running in this channel.")
        if game.drawer != member.user:
            raise GameError(NOT_DRAWER, "Only the drawer draws.")
        raise GameError(NOT_DRAWER, "Choose a word first: the drawing starts then.")

    async def on_sync(self, member: Member, frame: dict[str, Any]) -> None:
        self._throttle(self.commands, member.user)
        await self.stream.resync(member)

    # --- the chat ---------------------------------------------------------------------------

    async def take_guesses(self, conn: Any, posts: list[Post]) -> set[int]:
        """During a drawing phase every chat message goes to the owner, which judges it (and
        answers the message's ``ref``: the message posted with it, an ack, or an error)."""
        game = await store.drawing_game(conn, posts[0].member.channel)
        if game is None:
            return set()
        for member, content, ref in posts:
            body = {"content": content} if ref is None else {"content": content, "ref": ref}
            await store.enqueue(conn, game, member.channel, "message", member.user, member.id, body)
        return set(range(len(posts)))

    async def no_edits_while_drawing(self, conn: Any, member: Member, content: str) -> None:
        """An edit could put the word in a message everyone reads: none while a word is
        drawn (the channel's game row share-locked until the edit commits)."""
        if await store.drawing_game(conn, member.channel) is not None:
            raise GameError(EDIT_LOCKED, "Messages cannot be edited while a word is drawn.")
