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
from .bus import Bus, encode, forget_old_payloads
from .member import SEND_QUEUE_FRAMES, Member
from .presence import Presence
from .protocol import ACK, ERROR
from .stream import Stream

__all__ = ["Hub", "Stream", "add_feature", "get_hub", "audience_of"]

log = logging.getLogger(__name__)

HOUSEKEEPING_EVERY = 60.0
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
        self.bus = Bus(dsn, self.delivery_engine, self.dispatch, self._recover)
        self._task_factories: list[Callable[[], Awaitable[None]]] = [
            self.presence.refresh_forever,
            self._housekeeping_forever,
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._recoveries: set[asyncio.Task[None]] = set()
        self._stop_hooks: list[Callable[[], Awaitable[None]]] = []
        self._reconnect_hooks: list[Callable[[], None]] = []
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

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
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
        """Queue ``event`` for the local members of its channel in its audience, encoded once."""
        members = self.members.get(event.get("channel"))  # type: ignore[arg-type]
        if not members:
            return
        targets = audience_of(event, members)
        if not targets:
            return
        reply = event.get("reply")
        if "audience" in event or reply is not None:
            shared = {k: v for k, v in event.items() if k not in ("audience", "reply")}
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
        task = asyncio.ensure_future(self._recover_channels(channels))
        self._recoveries.add(task)
        task.add_done_callback(self._recoveries.discard)

    async def _recover_channels(self, channels: dict[str, list[Member]]) -> None:
        for channel, members in channels.items():
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
        await self.presence.joined(member)

    async def leave(self, member: Member) -> None:
        members = self.members.get(member.channel)
        if members is not None:
            members.discard(member)
            if not members:
                del self.members[member.channel]
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
