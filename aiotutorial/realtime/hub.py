"""This worker's live side: local members by channel, the registries features fill, the bus.

The hub knows no feature by name. At startup each feature registered with ``add_feature`` is
given the hub and registers what it handles:

- ``hub.on(event_type, handler)``: events arriving from the bus (several handlers may share a
  type; they run in registration order);
- ``hub.on_frame(frame_type, handler)``: frames clients send on a channel socket, one at a
  time (``pipelined=True``: the socket goes on reading while the handler runs, see
  ``realtime.socket``);
- ``hub.add_stream(stream)``: an ordered, persisted sequence members follow with a cursor,
  caught up when a socket joins and after the bus reconnects;
- ``hub.add_task(factory)``: a background loop that lives as long as the hub.

``hub.deliver(event, ...)`` hands an event to the local members of its channel that are in its
audience: everyone, ``{"users": [...]}``, or ``{"member": id}`` (one socket, on any worker).
An event that answers a client's frame carries ``"reply": {"user": name, "ref": ref}``: that
user's sockets get it with ``"ref"`` (the client's id for its frame), everyone else without;
so the answer is the event itself, in its stream's order. Events of type ``ack`` (an answer
with nothing else to say) and ``error`` go to their audience as they are. Either way the
member hears that its frame is answered (``Member.answered``: errors wait for it).

A visitor's member (``user`` is ``VISITOR``, a name no account has) is in no audience of users
and is never replied to.

Nothing here waits on a client: ``dispatch`` runs in the bus's one loop, which every live
delivery of the worker goes through, so closing a socket (``close_user``, ``close_channel``)
only asks its own task to close it (``Member.close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pyramid.registry import Registry

from ..db import CONNECTION_ERRORS, dsn_from_url, get_engine, open_engine
from ..db.types import Engine
from .bus import (
    ALL,
    PREV_IN_STREAM,
    Bus,
    bus_url,
    channel_topic,
    encode,
    forget_old_payloads,
    make_bus,
    transport,
    user_topic,
)
from .member import SEND_QUEUE_FRAMES, Member
from .order import Reorder
from .presence import Presence
from .protocol import ACK, ERROR
from .stream import Stream

__all__ = ["Hub", "Stream", "add_feature", "get_hub", "audience_of"]

log = logging.getLogger(__name__)

HOUSEKEEPING_EVERY = 60.0
# How often a hub on a bus that may lose an event (Redis) compares where its streams stand
# with the database (``Hub.sweep``): the longest a lost publish with nothing after it waits.
BUS_SWEEP = 5.0
# The ``ready`` frame's own fields (``realtime.socket``); streams add theirs.
READY_KEYS = ("type", "channel", "user")
TRY_AGAIN_LATER = 1013
SUPERVISOR_PAUSE = 1.0

EventHandler = Callable[[dict[str, Any], str], Awaitable[None] | None]
FrameHandler = Callable[[Member, dict[str, Any]], Awaitable[None]]
_FEATURES = "realtime.features"
_HUB = "realtime.hub"


def audience_of(event: dict[str, Any], members: Iterable[Member]) -> list[Member]:
    """The members ``event`` is for (its ``audience``, or all)."""
    audience = event.get("audience")
    if audience is None:
        return list(members)
    if "member" in audience:
        return [m for m in members if m.id == audience["member"]]
    users = set(audience.get("users") or ())
    return [m for m in members if m.user in users]


class Hub:
    """This worker's channels: local members, the registries, the bus, presence."""

    def __init__(
        self,
        engine: Engine,
        dsn: str,
        settings: dict[str, Any],
        *,
        delivery_engine: Engine | None = None,
    ) -> None:
        self.engine = engine
        # Reads that live delivery waits on (events by reference, recovery, presence lists)
        # use a small pool of their own: a burst of requests must not stall every socket.
        self.delivery_engine = delivery_engine or engine
        self.dsn = dsn
        self.settings = settings
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"[:80]
        # ``chat.send_queue_frames``: the name it had when only the chat used sockets.
        self.max_frames = int(
            settings.get(
                "realtime.send_queue_frames",
                settings.get("chat.send_queue_frames", SEND_QUEUE_FRAMES),
            )
        )
        self.members: dict[str, set[Member]] = defaultdict(set)
        self.handlers: dict[str, list[EventHandler]] = defaultdict(list)
        self.frame_handlers: dict[str, FrameHandler] = {}
        self.pipelined_frames: set[str] = set()
        self.visitor_frames: set[str] = set()
        self.streams: list[Stream] = []
        self.features: dict[str, Any] = {}
        self.presence = Presence(self)
        self.bus: Bus = make_bus(
            bus_url(settings),
            dsn=dsn,
            engine=self.delivery_engine,
            on_event=self.dispatch,
            on_reconnect=self._recover,
            on_unsent=self._dispatch_here,
        )
        # A bus that may deliver a stream's events out of commit order (Redis): put back in
        # order here, per channel and stream (``realtime.order``).
        self.reorder = None if self.bus.ordered else Reorder(self._gap)
        self._watched: dict[str, int] = {}  # topic -> how many here need it
        self._task_factories: list[Callable[[], Awaitable[None]]] = [
            self.presence.refresh_forever,
            self._housekeeping_forever,
        ]
        if self.reorder is not None:
            self.sweep_every = float(settings.get("realtime.bus_sweep_seconds", BUS_SWEEP))
            self._task_factories.append(self._sweep_forever)
        self._tasks: list[asyncio.Task[None]] = []
        self._recoveries: set[asyncio.Task[None]] = set()
        self._stop_hooks: list[Callable[[], Awaitable[None]]] = []
        self._reconnect_hooks: list[Callable[[], None]] = []
        self._action_guards: list[Callable[[Any, Member], Awaitable[None]]] = []
        self.presence.register()
        # Answers to one socket's frame (refused, or taken with nothing more to say), from
        # whichever process handled what it sent.
        self.on(ERROR, self._deliver_plain)
        self.on(ACK, self._deliver_plain)

    # --- registries ---------------------------------------------------------------------

    def on(self, event_type: str, handler: EventHandler) -> None:
        self.handlers[event_type].append(handler)

    def on_frame(
        self,
        frame_type: str,
        handler: FrameHandler,
        *,
        pipelined: bool = False,
        visitors: bool = False,
    ) -> None:
        """``handler`` for the frames of ``frame_type``. Pipelined: a socket's consecutive
        frames of that type are handed over as they arrive, each handler started in their
        order without waiting for the one before (the handler keeps their order itself, as a
        group commit does); a frame of another type waits until they are all done. With
        ``visitors``, a visitor's socket may send it too (a request to read, that changes
        nothing); every other frame of a visitor's is refused (``sign_in_required``)."""
        if frame_type in self.frame_handlers:
            raise ValueError(f"two handlers for client frames of type {frame_type!r}")
        self.frame_handlers[frame_type] = handler
        if pipelined:
            self.pipelined_frames.add(frame_type)
        if visitors:
            self.visitor_frames.add(frame_type)

    def add_stream(self, stream: Stream) -> None:
        """Follow ``stream`` on every channel socket; its name, its query parameters and its
        fields of the ``ready`` frame must be its own."""
        for other in self.streams:
            if other.name == stream.name:
                raise ValueError(f"two streams named {stream.name!r}")
            for kind, mine, theirs in (
                ("query parameter", stream.params, other.params),
                ("ready field", stream.ready_keys, other.ready_keys),
            ):
                for clash in set(mine) & set(theirs):
                    raise ValueError(
                        f"streams {other.name!r} and {stream.name!r} share the {kind} {clash!r}"
                    )
        for clash in set(stream.ready_keys) & set(READY_KEYS):
            raise ValueError(f"stream {stream.name!r} claims the ready field {clash!r}")
        self.streams.append(stream)

    @property
    def stream_params(self) -> list[str]:
        """The channel socket's query parameters, as the streams declare them."""
        return [name for stream in self.streams for name in stream.params]

    def add_task(self, factory: Callable[[], Awaitable[None]]) -> None:
        self._task_factories.append(factory)

    def add_reconnect_hook(self, hook: Callable[[], None]) -> None:
        """Called after the bus reconnected (events published meanwhile were not heard):
        for what a feature keeps apart from its streams (the game's owner, its inbox)."""
        self._reconnect_hooks.append(hook)

    def add_stop_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Awaited first when the hub stops (in reverse order of registration)."""
        self._stop_hooks.append(hook)

    def add_action_guard(self, guard: Callable[[Any, Member], Awaitable[None]]) -> None:
        """``await guard(conn, member)`` in the transaction of anything a member changes in
        their channel (an edit, a reaction, a pin...: ``check_action``); it raises
        ``ProtocolError`` when they may not act there now (a muted member)."""
        self._action_guards.append(guard)

    async def check_action(self, conn: Any, member: Member) -> None:
        """Every feature's say on whether ``member`` may change anything now (in ``conn``'s
        transaction); a ``ProtocolError`` when one refuses."""
        for guard in self._action_guards:
            await guard(conn, member)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self.watch(ALL)
        await self.bus.start()
        self._tasks = [
            asyncio.ensure_future(self._supervise(factory)) for factory in self._task_factories
        ]

    async def _supervise(self, factory: Callable[[], Awaitable[None]]) -> None:
        """Run a background loop for the hub's life: a failure it did not expect (a bug) is
        logged with its traceback and the loop starts again, rather than dying unnoticed."""
        name = getattr(factory, "__qualname__", repr(factory))
        while True:
            try:
                await factory()
                return
            except Exception:
                log.exception("background task %s failed; starting it again", name)
                await asyncio.sleep(SUPERVISOR_PAUSE)

    async def stop(self) -> None:
        for hook in reversed(self._stop_hooks):
            try:
                await hook()
            except Exception:
                log.exception("a realtime stop hook failed")
        for task in [*self._tasks, *self._recoveries]:
            task.cancel()
        for task in [*self._tasks, *self._recoveries]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # No more events (they could start a presence read), then no presence read left,
        # then this worker's rows go (the others hear of it).
        await self.bus.stop()
        await self.presence.stop()
        await self.presence.forget_worker()
        close = getattr(transport(), "close", None)
        if close is not None:  # (after the last publish: the rows' going)
            await close()

    async def _housekeeping_forever(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_EVERY)
            try:
                async with self.engine.acquire() as conn:
                    await forget_old_payloads(conn)
            except CONNECTION_ERRORS as exc:
                log.warning("housekeeping failed: %s", exc)

    # --- events -------------------------------------------------------------------------

    async def dispatch(self, event: dict[str, Any], text: str | None = None) -> None:
        """An event from the bus, to every handler of its type."""
        handlers = self.handlers.get(event.get("type"))  # type: ignore[arg-type]
        if not handlers:
            log.debug("no handler for event %r", event.get("type"))
            return
        if text is None:
            text = encode(event)
        for handler in handlers:
            outcome = handler(event, text)
            if outcome is not None:
                await outcome

    def deliver(
        self,
        event: dict[str, Any],
        text: str | None = None,
        *,
        stream: str | None = None,
        position: int = 0,
    ) -> None:
        """Queue ``event`` for the local members of its channel in its audience, encoded once;
        an event of ``stream`` in position order (``realtime.order``) when the bus may have
        brought it out of order."""
        channel = event.get("channel")
        if stream is None or self.reorder is None or not isinstance(channel, str):
            self._deliver_now(event, text, stream, position)
            return
        prev = event.get(PREV_IN_STREAM)
        self.reorder.offer(
            channel,
            stream,
            position,
            prev if isinstance(prev, int) else None,
            lambda: self._deliver_now(event, text, stream, position),
        )

    def _deliver_now(
        self, event: dict[str, Any], text: str | None, stream: str | None, position: int
    ) -> None:
        members = self.members.get(event.get("channel"))  # type: ignore[arg-type]
        if not members:
            return
        targets = audience_of(event, members)
        if not targets:
            return
        reply = event.get("reply")
        if "audience" in event or reply is not None or PREV_IN_STREAM in event:
            shared = {
                k: v for k, v in event.items() if k not in ("audience", "reply", PREV_IN_STREAM)
            }
            text = encode(shared)
        elif text is None:
            text = encode(event)
        data = text.encode("utf-8")
        answer, answered, ref = data, None, None
        if isinstance(reply, dict):
            user, ref = reply.get("user"), reply.get("ref")
            if isinstance(user, str) and isinstance(ref, str):
                answered = user
                answer = encode({**shared, "ref": ref}).encode("utf-8")
        else:
            ref = event.get("ref")  # an error or an ack: the answer to one socket's frame
        for member in targets:
            if answered is not None and member.user == answered:
                frame, answers = answer, ref
            else:
                frame, answers = data, (ref if answered is None else None)
            if stream is None:
                member.send_frame(frame)
            else:
                member.offer(stream, position, frame)
            if answers is not None:
                member.answered(answers)

    def _gap(self, channel: str, stream_name: str, waiting: list[Callable[[], None]]) -> None:
        """Events of a stream waited too long for the one before them: the channel's members
        read what they miss from the database (each from its cursor), and get the events that
        waited after it, in order."""
        stream = next((s for s in self.streams if s.name == stream_name), None)
        members = list(self.members.get(channel, ()))
        for member in members:
            member.hold(stream_name)
        for release in waiting:
            release()  # into the members' holds: sent in position order once caught up
        if stream is None or not members:
            return
        log.info("%s in %s: an event did not arrive in time; reading it", stream_name, channel)
        self._background(self._recover_stream(stream, channel, members))

    async def _recover_stream(self, stream: Stream, channel: str, members: list[Member]) -> None:
        try:
            await stream.recover(channel, members)
        except CONNECTION_ERRORS as exc:
            log.warning("could not recover %s in %s: %s", stream.name, channel, exc)
            await self.close_channel(channel, "could not catch up: reconnect")

    def _background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._recoveries.add(task)
        task.add_done_callback(self._recoveries.discard)

    async def _dispatch_here(self, events: list[dict[str, Any]]) -> None:
        """Events committed whose publish failed (the bus is away): this worker's own
        sockets hear of them now (an author's answer among them), the others catch up when
        the bus is back."""
        for event in events:
            await self.dispatch(event)

    # --- what this worker listens to ----------------------------------------------------

    def watch(self, topic: str) -> bool:
        """Listen to ``topic`` (counted: ``unwatch`` as often); True the first time."""
        count = self._watched.get(topic, 0)
        self._watched[topic] = count + 1
        if count == 0:
            self.bus.subscribe([topic])
        return count == 0

    def unwatch(self, topic: str) -> bool:
        """One less reason to listen to ``topic``; True when there is none left."""
        count = self._watched.get(topic, 0) - 1
        if count > 0:
            self._watched[topic] = count
            return False
        self._watched.pop(topic, None)
        self.bus.unsubscribe([topic])
        return True

    async def watch_channel(self, channel: str) -> None:
        """Serve ``channel`` (a socket joins it, or its game is owned here)."""
        if self.watch(channel_topic(channel)) and self.reorder is not None:
            await self._follow_streams(channel)

    def watch_channel_soon(self, channel: str) -> None:
        """``watch_channel`` without waiting (for a game's owner, which delivers nothing)."""
        if self.watch(channel_topic(channel)) and self.reorder is not None:
            self._background(self._follow_streams(channel))

    def unwatch_channel(self, channel: str) -> None:
        if self.unwatch(channel_topic(channel)) and self.reorder is not None:
            self.reorder.forget(channel)

    async def _follow_streams(self, channel: str) -> None:
        """Where each stream of ``channel`` stands now: what comes after arrives in order."""
        reorder = self.reorder
        assert reorder is not None
        async with self.delivery_engine.acquire() as conn:
            for stream in self.streams:
                latest = await stream.latest_position(conn, channel)
                if latest is not None:
                    reorder.start(channel, stream.name, latest)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_every)
            try:
                await self.sweep()
            except CONNECTION_ERRORS as exc:
                log.warning("could not compare the streams with the database: %s", exc)

    async def sweep(self) -> None:
        """For a bus that may lose an event with nothing after it to show the gap (a worker
        killed between its commit and its publish): where each stream of each channel served
        here stands in the database; a stream behind it is read (as a gap is)."""
        reorder = self.reorder
        assert reorder is not None
        channels = [channel for channel, members in self.members.items() if members]
        if not channels:
            return
        async with self.delivery_engine.acquire() as conn:
            for stream in self.streams:
                heads = await stream.latest_positions(conn, channels)
                for channel, latest in heads.items():
                    if reorder.behind(channel, stream.name, latest):
                        log.info("%s in %s: behind the database; reading it", stream.name, channel)
                        self._gap(channel, stream.name, [])

    @property
    def watched(self) -> list[str]:
        return sorted(self._watched)

    def _deliver_plain(self, event: dict[str, Any], text: str) -> None:
        self.deliver(event, text)

    async def _recover(self) -> None:
        """After the bus reconnected: each stream sends what was committed meanwhile.

        Every member holds its live events from this moment (no await before), then the
        catch-up runs in the background, each member at its own pace, while the bus goes on
        delivering. Where what was missed cannot be read, the channel's sockets are closed
        (1013) so that their clients reconnect and catch up, rather than live with a hole.
        """
        for hook in self._reconnect_hooks:
            hook()
        channels = {channel: list(members) for channel, members in self.members.items() if members}
        for members in channels.values():
            for member in members:
                for stream in self.streams:
                    member.hold(stream.name)
        self._background(self._recover_channels(channels))

    async def _recover_channels(self, channels: dict[str, list[Member]]) -> None:
        for channel, members in channels.items():
            if self.reorder is not None:
                # What was published while the bus was away is read below: the streams go
                # on from where they stand now.
                try:
                    await self._follow_streams(channel)
                except CONNECTION_ERRORS as exc:
                    log.warning("could not read where %s stands: %s", channel, exc)
            for stream in self.streams:
                try:
                    await stream.recover(channel, members)
                except CONNECTION_ERRORS as exc:
                    log.warning("could not recover %s in %s: %s", stream.name, channel, exc)
                    await self.close_channel(channel, "could not catch up: reconnect")
                    break
            self.presence.mark(channel)

    async def close_user(self, user: str, code: int, reason: str) -> None:
        """Close every socket of ``user`` on this worker, in every channel. Waits on no
        client (each socket's own task does its closing handshake)."""
        for members in list(self.members.values()):
            for member in list(members):
                if member.user == user:
                    member.close(code, reason)

    async def close_channel(self, channel: str, reason: str) -> None:
        """Close this worker's sockets on ``channel`` with 1013 (try again later): what they
        may have missed, they get by reconnecting with their last id. Waits on no client."""
        for member in list(self.members.get(channel, ())):
            member.close(TRY_AGAIN_LATER, reason)

    # --- members ------------------------------------------------------------------------

    def new_member(self, ws: Any, channel: str, user: str) -> Member:
        return Member(ws, channel, user, self.max_frames, worker=self.worker)

    def members_of(self, channel: str, user: str | None = None) -> list[Member]:
        members = self.members.get(channel, ())
        return [m for m in members if user is None or m.user == user]

    async def join(self, member: Member) -> None:
        """Start delivering ``member``'s channel to it, and count its user present."""
        self.members[member.channel].add(member)
        if not member.is_visitor:
            self.watch(user_topic(member.user))
        await self.watch_channel(member.channel)
        await self.presence.joined(member)

    async def leave(self, member: Member) -> None:
        members = self.members.get(member.channel)
        if members is not None and member in members:
            members.discard(member)
            if not members:
                del self.members[member.channel]
            if not member.is_visitor:
                self.unwatch(user_topic(member.user))
            self.unwatch_channel(member.channel)
        await self.presence.left(member)
        await member.stop()


def add_feature(config: Any, factory: Callable[[Hub], Any]) -> None:
    """``factory(hub)`` is called in each worker when its hub starts; it registers handlers,
    frames, streams and tasks, and returns the feature (kept in ``hub.features``)."""
    config.registry.setdefault(_FEATURES, []).append(factory)


def get_hub(registry: Registry | dict[str, Any]) -> Hub:
    hub: Hub | None = registry.get(_HUB)
    if hub is None:
        raise RuntimeError("the realtime hub is not running: startup hooks have not run")
    return hub


async def _start_hub(registry: Registry) -> None:
    settings = registry.settings
    # The LISTEN connection needs a session of its own: behind a transaction pooler it must
    # reach PostgreSQL directly (DATABASE_LISTEN_URL or realtime.listen_url).
    listen_url = (
        os.environ.get("DATABASE_LISTEN_URL")
        or settings.get("realtime.listen_url")
        or settings["sqlalchemy.url"]
    )
    dsn = dsn_from_url(listen_url)
    delivery = await open_engine({**settings, "db.pool_min": 1, "db.pool_max": 2})
    hub = Hub(get_engine(registry), dsn, registry.settings, delivery_engine=delivery)
    for factory in registry.get(_FEATURES, ()):
        feature = factory(hub)
        hub.features[getattr(feature, "name", factory.__name__)] = feature
    await hub.start()
    registry[_HUB] = hub


async def _stop_hub(registry: Registry) -> None:
    hub = registry.pop(_HUB, None)
    if hub is not None:
        await hub.stop()
        if hub.delivery_engine is not hub.engine:
            hub.delivery_engine.close()
            await hub.delivery_engine.wait_closed()


def includeme(config: Any) -> None:
    config.add_startup_hook(_start_hub)
    config.add_shutdown_hook(_stop_hub)
