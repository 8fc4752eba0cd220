"""The chat as a client of the realtime layer: its streams, its frames, its background work.

Frames (docs/protocol.md): ``message`` (posted, or taken by another feature), ``message.edit``
and ``message.delete`` (one's own messages), ``typing`` (relayed, never stored) and ``read``
(the read marker). A frame with a ``ref`` is answered with it: the message or the change
itself reaches the sender's sockets with the ``ref`` (see ``realtime.hub``), a refused one
comes back as an error frame with it, and a message sent again with a ref already stored is
answered with the stored message instead of being stored twice (``refs``).

Other features may look at a message before the chat posts it (``intercept``): inside the
message's transaction, a hook can take the message over (the game takes a guess during a turn).
They may also refuse an edit (``guard_edits``): the game refuses them while a word is drawn.

Messages go through a group commit (``db.groupcommit``): the messages of a channel that
arrive while its last transaction runs (from one socket's burst, or from many sockets) are
stored together in the next, in the order they came, with one lock of the channel, one insert
and one notification. A message refused inside it (by a hook) is answered alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from aiopg.sa import SAConnection
from pyramid.settings import asbool

from ..db import CONNECTION_ERRORS, run_transaction, transaction
from ..db.groupcommit import MAX_BATCH, GroupCommit, Refused
from ..realtime import (
    ACK,
    RATE_LIMITED,
    Hub,
    Member,
    ProtocolError,
    encode,
    publish_many,
)
from ..throttle import Throttle
from .attachments import check_uploads, upload_ids
from .edits import change_message, message_to_change
from .messages import MESSAGE_REF, NewMessage, insert_messages, message_by_id
from .protocol import (
    CHANGED,
    DELETE,
    EDIT,
    EDIT_BURST,
    EDIT_RATE_PER_SECOND,
    MESSAGE,
    NOT_YOURS,
    RATE_BURST,
    RATE_PER_SECOND,
    REACT,
    READ,
    TYPING,
    TYPING_EVERY,
    TYPING_SHOWN_MS,
    message_content,
    message_id,
)
from .reactions import check_reply, emoji_of, toggle_reaction
from .refs import Claimed, claim_refs, forget_old_refs, ref_message
from .streams import ChangeStream, ChatStream
from .unread import ReadMarkers

__all__ = [
    "ChatFeature",
    "Post",
    "Interceptor",
    "Retarget",
    "EditGuard",
    "RemovalCheck",
]

log = logging.getLogger(__name__)

HOUSEKEEPING_EVERY = 600.0
# The most typing events one publish carries (NOTIFY splits them into payloads that fit).
TYPING_BATCH = 200


class Post(NamedTuple):
    """A message sent on a socket, waiting for its channel's next transaction."""

    member: Member
    content: str
    ref: str | None
    reply_to: int | None = None  # the message it answers (checked: ``check_reply``)
    uploads: tuple[int, ...] = ()  # the uploads it carries (checked in ``_store``)


# ``await hook(conn, posts)`` inside the transaction of ``posts`` (messages of one channel, in
# the order sent): the indices of those it took over (the chat posts nothing for them; the hook
# answers their ``ref`` when it is done). It may raise ``Refused(index, error)`` for one.
Interceptor = Callable[[SAConnection, list[Post]], Awaitable[set[int]]]
# ``await retarget(conn, member, ref)``: a message sent again that the hook took and has not
# answered yet will be answered on ``member`` (True); False when it has answered already.
Retarget = Callable[[SAConnection, Member, str], Awaitable[bool]]
# ``await guard(conn, member, content)`` inside an edit's transaction: raises ProtocolError to
# refuse the new text.
EditGuard = Callable[[SAConnection, Member, str], Awaitable[None]]
# ``await may_remove(conn, member, row)`` inside a delete's transaction, when ``row`` (the
# message) is not ``member``'s: True lets them remove it (a channel's moderator).
RemovalCheck = Callable[[SAConnection, Member, Any], Awaitable[bool]]


Outcome = dict[str, Any] | Claimed | None  # stored, sent before, or taken by a hook


class ChatFeature:
    """Registers the chat with a worker's hub."""

    name = "chat"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        settings = hub.settings
        self.throttle = Throttle(
            float(settings.get("chat.rate_per_second", RATE_PER_SECOND)),
            int(settings.get("chat.rate_burst", RATE_BURST)),
        )
        self.edits = Throttle(
            float(settings.get("chat.edit_rate_per_second", EDIT_RATE_PER_SECOND)),
            int(settings.get("chat.edit_burst", EDIT_BURST)),
        )
        self.typing = Throttle(1 / TYPING_EVERY, 1)
        # Many people typing are not one NOTIFY commit each.
        self.typing_out = self.typing_publisher(hub.engine)
        self.interceptors: list[Interceptor] = []
        self.retargets: list[Retarget] = []
        self.edit_guards: list[EditGuard] = []
        self.removal_checks: list[RemovalCheck] = []
        self.markers = ReadMarkers(hub.engine)
        self.stream = ChatStream(hub)
        self.changes = ChangeStream(hub)
        hub.add_stream(self.stream)
        hub.add_stream(self.changes)
        hub.on(MESSAGE, self.stream.on_message)
        hub.on(MESSAGE_REF, self.stream.on_message_ref)
        hub.on(CHANGED, self.changes.on_changed)
        hub.on(TYPING, self._deliver)
        # Off: one transaction per message, each socket's next frame read after it (as
        # before group commit; the write-path benchmark compares the two).
        grouped = asbool(settings.get("chat.group_commit", True))
        self.posts: GroupCommit[Post, Outcome] = GroupCommit(
            hub.engine, self._store, max_batch=MAX_BATCH if grouped else 1
        )
        hub.on_frame(MESSAGE, self.on_message, pipelined=grouped)
        hub.on_frame(EDIT, self.on_edit)
        hub.on_frame(DELETE, self.on_delete)
        hub.on_frame(TYPING, self.on_typing)
        hub.on_frame(READ, self.on_read)
        hub.on_frame(REACT, self.on_react)
        hub.add_task(self.markers.flush_forever)
        hub.add_task(self._housekeeping_forever)
        hub.add_stop_hook(self.markers.flush)
        hub.add_stop_hook(self.posts.drain)

    def intercept(
        self, hook: Interceptor, retarget: Retarget | None = None, *, first: bool = False
    ) -> None:
        """Show a channel's messages to ``hook`` before they are stored (``first``: before the
        hooks added so far, for a hook that refuses rather than takes)."""
        if first:
            self.interceptors.insert(0, hook)
        else:
            self.interceptors.append(hook)
        if retarget is not None:
            self.retargets.append(retarget)

    def guard_edits(self, guard: EditGuard) -> None:
        self.edit_guards.append(guard)

    def allow_removals(self, check: RemovalCheck) -> None:
        self.removal_checks.append(check)

    def _deliver(self, event: dict[str, Any], text: str) -> None:
        self.hub.deliver(event, text)

    # --- messages -------------------------------------------------------------------------

    async def on_message(self, member: Member, frame: dict[str, Any]) -> None:
        uploads = upload_ids(frame)
        content = message_content(frame, may_be_empty=bool(uploads))
        ref = frame.get("ref")  # valid: the socket read it (realtime.frame_ref)
        if self.throttle.consume(member.user):
            raise ProtocolError(
                RATE_LIMITED, f"At most {self.throttle.rate:g} messages a second; slow down."
            )

        reply_to = None
        if frame.get("reply_to") is not None:
            async with self.hub.engine.acquire() as conn:
                reply_to = await check_reply(conn, member.channel, member.user, frame["reply_to"])
        post = Post(member, content, ref, reply_to, uploads)
        outcome = await self.posts.submit(member.channel, post)
        if isinstance(outcome, dict):
            self.markers.note(member.user, member.channel, outcome["id"])
        elif isinstance(outcome, Claimed):
            await self._answer_again(member, ref, outcome)

    async def _store(self, conn: SAConnection, posts: list[Post]) -> list[Outcome]:
        """One transaction's messages, all of one channel (``GroupCommit``'s work): their refs
        claimed, the rest shown to the hooks, what is left inserted in order. A statement or
        two each, whatever the number of messages."""
        outcomes: list[Outcome] = [None] * len(posts)
        first_of: dict[tuple[str, str], int] = {}
        again: dict[int, int] = {}  # a ref sent twice within the batch: index -> first one
        for index, post in enumerate(posts):
            member, ref = post.member, post.ref
            if ref is not None:
                earlier = first_of.setdefault((member.user, ref), index)
                if earlier != index:
                    again[index] = earlier
        claimed = await claim_refs(conn, list(first_of))
        left = []
        for index, post in enumerate(posts):
            if index in again:
                continue
            if post.ref is not None:
                seen = claimed.get((post.member.user, post.ref))
                if seen is not None:
                    outcomes[index] = seen
                    continue
            left.append(index)
        for hook in self.interceptors:
            if not left:
                break
            try:
                taken = await hook(conn, [posts[i] for i in left])
            except Refused as refused:
                raise Refused(left[refused.index], refused.error) from refused.error
            left = [i for n, i in enumerate(left) if n not in taken]
        carried: set[int] = set()  # uploads of this transaction's messages so far
        for index in left:
            post = posts[index]
            if post.uploads:
                try:
                    await check_uploads(
                        conn, post.member.channel, post.member.user, post.uploads, carried
                    )
                except ProtocolError as error:
                    raise Refused(index, error) from error
        if left:
            rows = [
                NewMessage(
                    posts[i].member.user,
                    posts[i].content,
                    posts[i].ref,
                    None,
                    posts[i].reply_to,
                    posts[i].uploads,
                )
                for i in left
            ]
            events = await insert_messages(conn, posts[0].member.channel, rows)
            for index, event in zip(left, events, strict=True):
                outcomes[index] = event
        for index, earlier in again.items():
            outcomes[index] = _as_claimed(outcomes[earlier])
        return outcomes

    async def _answer_again(self, member: Member, ref: str | None, claimed: Claimed) -> None:
        """A message sent again: the stored one answers it (a client keys messages by id, so
        it may have it already), or an ``ack`` when another feature took it and is done with
        it; while that feature still holds it, its answer will come to this socket."""
        answer: dict[str, Any] | None = None
        message = claimed.message
        async with self.hub.engine.acquire() as conn:
            if message is None and ref is not None and self.retargets:
                async with transaction(conn):
                    for retarget in self.retargets:
                        if await retarget(conn, member, ref):
                            return
                    # Judged meanwhile: a message posted from it is attached to the ref now.
                    message = await ref_message(conn, member.user, ref)
            if message is not None:
                answer = await message_by_id(conn, message)
        if answer is None:
            answer = {"type": ACK, "channel": member.channel}
        answer.pop("audience", None)
        answer["ref"] = ref
        data = encode(answer).encode("utf-8")
        if ref is None:
            member.send_frame(data)
        else:
            member.send_answer(ref, data)

    # --- edits and deletes ----------------------------------------------------------------

    async def on_edit(self, member: Member, frame: dict[str, Any]) -> None:
        target = message_id(frame)
        content = message_content(frame)
        await self._change(member, target, content, frame.get("ref"))

    async def on_delete(self, member: Member, frame: dict[str, Any]) -> None:
        await self._change(member, message_id(frame), None, frame.get("ref"))

    async def _change(
        self, member: Member, target: int, content: str | None, ref: str | None
    ) -> None:
        if self.edits.consume(member.user):
            raise ProtocolError(
                RATE_LIMITED, f"At most {self.edits.rate:g} edits a second; slow down."
            )

        async def change(conn: SAConnection) -> bool:
            # The guards first: the game's takes its row's lock before the channel's, as a
            # message's transaction and the game's owner do (the same order: no deadlock).
            if content is not None:
                await self.hub.check_action(conn, member)  # (a muted member edits nothing)
                for guard in self.edit_guards:
                    await guard(conn, member, content)
            row = await message_to_change(
                conn, member.channel, target, member.user, others=content is None
            )
            removed_by = None
            if row.user != member.user:  # a delete, by someone else: a moderator's?
                for may_remove in self.removal_checks:
                    if await may_remove(conn, member, row):
                        removed_by = member.user
                        break
                else:
                    raise ProtocolError(NOT_YOURS, "You can only change your own messages.")
            if content == row.content:
                return False
            await change_message(conn, row, content, ref=ref, removed_by=removed_by)
            return True

        if not await run_transaction(self.hub.engine, change) and ref is not None:
            # The same text again: nothing changed, nothing to announce; the ref is answered.
            ack = {"type": ACK, "channel": member.channel, "ref": ref}
            member.send_answer(ref, encode(ack).encode("utf-8"))

    # --- reactions -------------------------------------------------------------------------

    async def on_react(self, member: Member, frame: dict[str, Any]) -> None:
        """Toggle the sender's emoji on a message (counted with edits: a change each)."""
        target = message_id(frame)
        emoji = emoji_of(frame)
        if self.edits.consume(member.user):
            raise ProtocolError(
                RATE_LIMITED, f"At most {self.edits.rate:g} changes a second; slow down."
            )
        ref = frame.get("ref")

        async def react(conn: SAConnection) -> None:
            await self.hub.check_action(conn, member)
            await toggle_reaction(conn, member.channel, target, member.user, emoji, ref)

        await run_transaction(self.hub.engine, react)

    # --- typing and reading ---------------------------------------------------------------

    async def on_typing(self, member: Member, frame: dict[str, Any]) -> None:
        """Relayed to the channel at most every ``TYPING_EVERY`` seconds per user; the rest
        are dropped quietly (a client that types sends them all the time)."""
        if self.typing.consume(f"{member.user}\n{member.channel}"):
            return
        event = {
            "type": TYPING,
            "channel": member.channel,
            "user": member.user,
            "ms": TYPING_SHOWN_MS,
        }
        await self.typing_out.submit(TYPING, event)

    @staticmethod
    def typing_publisher(engine: Any) -> GroupCommit[dict[str, Any], None]:
        """Typing events published in groups: those that arrive while one publish is on its
        way go in the next, in one commit (and, on NOTIFY, as few notifications as fit)."""
        return GroupCommit(engine, _publish_events, max_batch=TYPING_BATCH)

    async def on_read(self, member: Member, frame: dict[str, Any]) -> None:
        self.markers.note(member.user, member.channel, message_id(frame))

    async def _housekeeping_forever(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_EVERY)
            try:
                async with self.hub.engine.acquire() as conn:
                    forgotten = await forget_old_refs(conn)
                log.debug("forgot %d old message refs", forgotten)
            except CONNECTION_ERRORS as exc:
                log.warning("could not forget old message refs: %s", exc)


async def _publish_events(conn: SAConnection, events: list[dict[str, Any]]) -> list[None]:
    await publish_many(conn, [(event, None) for event in events])
    return [None] * len(events)


def _as_claimed(outcome: Outcome) -> Claimed:
    """A ref's second send in the batch that stored it: answered as a resend."""
    if isinstance(outcome, Claimed):
        return outcome
    return Claimed(outcome["id"] if outcome is not None else None)
