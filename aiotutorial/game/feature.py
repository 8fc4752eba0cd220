"""The game as a client of the realtime layer: its frames on the channel socket, its stream of
events, and the guesses it takes from the chat.

What a player's frame does depends on where it is handled:
- ``game.start`` runs here, on the player's worker, which becomes the game's owner;
- ``game.draw`` is stored and relayed here in one statement that checks, on the game's row,
  that the sender is drawing now (no round trip through the owner on the hot path);
- ``game.choose``, ``game.kick``, ``game.spectate``, ``game.rate`` and chat messages from the
  moment the drawer is offered words until the turn ends go to the owner's inbox (a row and a
  NOTIFY), wherever the owner is; the owner answers through the bus;
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
from ..chat.api import Post, chat_of
from ..db import run_transaction
from ..db.groupcommit import Refused
from ..realtime import (
    BAD_FRAME,
    PRESENCE_CHANGED,
    RATE_LIMITED,
    Hub,
    Member,
    ProtocolError,
    SharedReads,
    Stream,
    encode,
)
from ..throttle import Throttle
from . import store, strokes
from .drawing import validate_ops
from .errors import (
    BAD_CHOICE,
    BAD_KICK,
    BAD_RATING,
    NO_GAME,
    NOT_CHOOSING,
    NOT_DRAWER,
    GameError,
)
from .owner import Owner
from .rules import CHOOSING, Timing
from .settings import validate_settings

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
    "game.rating",
    "game.draw",
)
EDIT_LOCKED = "edit_locked"
UPLOADS_LOCKED = "uploads_locked"


class GameStream(Stream):
    """A channel's game, as snapshots and the events that follow them."""

    name = STREAM

    def __init__(self, hub: Hub) -> None:
        super().__init__(hub)
        self.drawings = strokes.DrawingCache()
        # Sockets of a channel joining together share one read of its game's row; each
        # gets its own view of it (the word hidden from who may not see it).
        self.snapshots: SharedReads[store.Snapshot | None] = SharedReads(lambda: self.hub.engine)

    async def catch_up(self, member: Member, params: dict[str, Any]) -> None:
        await self.replay(member, self._reader({member.id} if member.cursor(STREAM) else set()))

    def _reader(self, following: set[str]) -> Any:
        """A snapshot reader; the members in ``following`` were following a game: if none
        runs now, they hear how the last one ended (once)."""

        async def read(member: Member) -> tuple[list[tuple[int, bytes]], bool]:
            channel = member.channel
            found = await self.snapshots.get(
                channel, lambda conn: store.snapshot_row(conn, channel, self.drawings)
            )
            if found is None:
                if member.id in following:
                    following.discard(member.id)
                    async with self.hub.engine.acquire() as conn:
                        over = await store.last_finished(conn, channel)
                    if over is not None:
                        member.send_frame(encode(over).encode("utf-8"))
                return [], False
            frame, version = store.view_of(found, channel, member.user)
            return [(version, encode(frame).encode("utf-8"))], False

        return read

    async def resync(self, member: Member) -> None:
        """The game as it is now, whatever this socket had (its cursor starts again)."""
        following = {member.id} if member.cursor(STREAM) > 0 else set()
        member.hold(STREAM)
        member.cursors[STREAM] = 0
        await self.replay(member, self._reader(following))

    async def recover(self, channel: str, members: list[Member]) -> None:
        async with self.hub.delivery_engine.acquire() as conn:
            now = await store.current(conn, channel)
        following = {m.id for m in members if m.cursor(STREAM) > 0}
        replaying = []
        for member in members:
            if now is not None or member.id in following:
                member.cursors[STREAM] = 0  # a new snapshot, whatever it had
                replaying.append(member)
            elif not member.release(STREAM):  # no game, nor had one: go on live
                replaying.append(member)
        await self.replay_all(replaying, self._reader(following))

    async def latest_position(self, conn: Any, channel: str) -> int | None:
        return await store.latest_position(conn, channel)

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
        self.strokes_writer = strokes.StrokeWriter(
            hub.engine,
            max_batches=int(settings.get("game.turn_max_batches", strokes.TURN_MAX_BATCHES)),
            max_bytes=int(settings.get("game.turn_max_bytes", strokes.TURN_MAX_BYTES)),
        )
        # A resync re-reads the drawing (from a cache): a page asks after a gap, not in a loop.
        self.syncs = Throttle(1.0, 3)
        self.owner = Owner(hub, self.lease_seconds)
        self.stream = GameStream(hub)
        hub.add_stream(self.stream)
        for event_type in EVENT_TYPES:
            hub.on(event_type, self.stream.on_event)
        hub.on(store.INBOX_EVENT, self.owner.on_inbox)
        hub.on(PRESENCE_CHANGED, self.owner.on_presence)
        hub.on_frame("game.start", self.on_start)
        hub.on_frame("game.choose", self.on_choose)
        hub.on_frame("game.kick", self.on_kick)
        hub.on_frame("game.spectate", self.on_spectate)
        hub.on_frame("game.rate", self.on_rate)
        # Pipelined: a drawer's batches are taken (and counted against the rate) as they
        # arrive, each stored by the StrokeWriter in their order, not one commit after another.
        hub.on_frame("game.draw", self.on_draw, pipelined=True)
        hub.on_frame("game.sync", self.on_sync, visitors=True)
        chat = chat_of(hub)
        chat.intercept(self.take_guesses, self.retarget_guess)
        chat.guard_edits(self.no_edits_while_drawing)
        hub.add_reconnect_hook(self.owner.wake_all)
        hub.add_task(self.owner.leases_forever)
        hub.add_stop_hook(self.owner.release_all)
        hub.add_stop_hook(self.strokes_writer.drain)

    def _throttle(self, throttle: Throttle, key: str) -> None:
        if throttle.consume(key):
            raise ProtocolError(RATE_LIMITED, f"At most {throttle.rate:g} of these a second.")

    # --- frames -----------------------------------------------------------------------------

    async def on_start(self, member: Member, frame: dict[str, Any]) -> None:
        self._throttle(self.commands, member.user)
        settings = validate_settings(frame)

        async def start(conn: Any) -> store.GameRow:
            await self.hub.check_action(conn, member)  # (a muted member starts nothing)
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

    async def on_spectate(self, member: Member, frame: dict[str, Any]) -> None:
        self._throttle(self.commands, member.user)
        on = frame.get("on", True)
        if not isinstance(on, bool):
            raise ProtocolError(BAD_FRAME, '"on" is true (sit out) or false (play).')
        await self._enqueue(member, "spectate", {"on": on}, lambda game: None)

    async def on_rate(self, member: Member, frame: dict[str, Any]) -> None:
        self._throttle(self.commands, member.user)
        like = frame.get("like")
        if not isinstance(like, bool):
            raise GameError(BAD_RATING, '"like" is true or false.')
        await self._enqueue(member, "rate", {"like": like}, lambda game: None)

    async def on_draw(self, member: Member, frame: dict[str, Any]) -> None:
        # Per user, not per socket: more sockets do not draw faster (on this worker; the
        # turn's bounds in store hold whatever the number of workers).
        self._throttle(self.strokes, member.user)
        ops, text = validate_ops(frame.get("ops"))
        refusal = await self.strokes_writer.append(member.channel, member.user, ops, text)
        if refusal is not None:
            raise refusal

    async def on_sync(self, member: Member, frame: dict[str, Any]) -> None:
        # Visitors (user "") share one bucket per worker: theirs are kept apart by socket.
        self._throttle(self.syncs, member.user or member.id)
        await self.stream.resync(member)

    # --- the chat ---------------------------------------------------------------------------

    async def take_guesses(self, conn: Any, posts: list[Post]) -> set[int]:
        """From the moment the drawer is offered words until the turn ends, every chat
        message goes to the owner, which judges it (and answers the message's ``ref``: the
        message posted with it, an ack, or an error): while choosing, the drawer may not
        write the words offered; while drawing, messages are guesses."""
        game = await store.judging_game(conn, posts[0].member.channel)
        if game is None:
            return set()
        # Files are refused during a turn: a guesser's picture could give the word away, and
        # the owner posts text only.
        for index, post in enumerate(posts):
            if post.uploads:
                error = GameError(
                    UPLOADS_LOCKED, "Files cannot be sent while a word is drawn; send them later."
                )
                raise Refused(index, error)
        # (A reply's ``reply_to`` is not kept through the owner: during a turn a message is a
        # guess or talk, posted without it.)
        for member, content, ref, *_ in posts:
            body = {"content": content} if ref is None else {"content": content, "ref": ref}
            await store.enqueue(conn, game, member.channel, "message", member.user, member.id, body)
        return set(range(len(posts)))

    async def retarget_guess(self, conn: Any, member: Member, ref: str) -> bool:
        """A message sent again (``ref``) that the owner has not judged yet: its answer goes
        to this socket now (the one it was sent from is gone). False when it has been
        judged (its answer is stored: the chat answers it)."""
        return await store.retarget(conn, member.user, ref, member.id)

    async def no_edits_while_drawing(self, conn: Any, member: Member, content: str) -> None:
        """An edit could put a word offered or the word in a message everyone reads: none
        from the moment the words are offered until the turn ends (the channel's game row
        share-locked until the edit commits)."""
        if await store.judging_game(conn, member.channel) is not None:
            raise GameError(EDIT_LOCKED, "Messages cannot be edited while a word is drawn.")
