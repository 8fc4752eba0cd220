"""The game's queries and its owner against the testing database (``aiotutorial.game.store``,
``aiotutorial.game.owner``, ``aiotutorial.game.feature.GameStream``): what the servers show
only now and then, pinned down with real rows in a rolled-back transaction (and, where two
transactions must meet, two committed ones cleaned up after).

- the owner deletes exactly the commands it read (one committed meanwhile with a lower id
  stays for its next step);
- a resend of a message the owner has not judged yet is retargeted, not answered twice;
- two starts at once: one game, the other refused with ``game_running``;
- a turn's drawing is bounded, compacted into its turn when it ends, its strokes deleted;
- the drawing cache reads only the batches after what it holds, and agrees with a full read;
- ``game.over`` reaches a socket that was following the game and missed its end.

The owner's own bookkeeping (a stale object, the release at shutdown, a failed step, the bus's
reconnection), its queries mocked, is tests/unit/test_game_store.py's.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from typing import Any
from unittest import mock

import sqlalchemy as sa

from aiotutorial import chat
from aiotutorial.db import open_engine
from aiotutorial.db import schema as db
from aiotutorial.game import store, strokes
from aiotutorial.game.drawing import compact
from aiotutorial.game.effects import TurnEnded
from aiotutorial.game.errors import GameError
from aiotutorial.game.feature import STREAM, GameStream
from aiotutorial.game.rules import Timing
from aiotutorial.game.settings import Settings
from aiotutorial.realtime import Member

from ..chatfakes import RecordingSocket
from ..dbtest import DatabaseTest

WORKER = "store-test"
LINE = {"op": "line", "c": 1, "w": 1, "p": [10, 10, 20, 20]}


def _name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


class GameStoreTest(DatabaseTest):
    """A channel with three players connected (presence rows), in the test's transaction."""

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.channel = await self.new_channel(self.conn)
        self.players = await self.new_users(self.conn, 3)
        await self.conn.execute(
            db.presence.insert().values(
                [{"worker": WORKER, "channel": self.channel, "username": p} for p in self.players]
            )
        )

    @staticmethod
    async def new_channel(conn: Any) -> str:
        name = _name("gs-")
        await chat.create_channel(conn, name)
        return name

    @staticmethod
    async def new_users(conn: Any, count: int) -> list[str]:
        names = [_name(f"g{i}-") for i in range(count)]
        await conn.execute(db.users.insert().values([{"username": n} for n in names]))
        return names

    async def start(self, conn: Any = None, **settings: Any) -> store.GameRow:
        return await store.start_game(
            conn or self.conn,
            self.channel,
            self.players[0],
            Settings(**settings),
            Timing(),
            WORKER,
            30.0,
            random.Random(1),
        )

    async def drawing(self) -> store.GameRow:
        """A game whose first turn is being drawn (the word chosen), saved."""
        row = await self.start()
        row = await self.step(row)
        await store.save(self.conn, row, row.state.choose(row.state.drawer, 0, row.now))
        return row

    async def step(self, row: store.GameRow) -> store.GameRow:
        """The row locked again, as the owner's next step starts."""
        found = await store.lock_owned(self.conn, row.game, WORKER, 1)
        assert found is not None
        return found


class InboxTests(GameStoreTest):
    async def test_the_owner_deletes_exactly_what_it_read(self) -> None:
        row = await self.drawing()
        member = f"{WORKER}/1"
        for content in ("first", "second"):
            await store.enqueue(
                self.conn,
                row.game,
                self.channel,
                "message",
                self.players[1],
                member,
                {"content": content},
            )
        read = await store.inbox(self.conn, row.game)
        self.assertEqual([c.body["content"] for c in read], ["first", "second"])
        # The step read "second" only: "first" (a lower id) committed after its read, as
        # ids are drawn before commit, in any order (READ COMMITTED).
        step = await self.step(row)
        step.inbox_read = [read[1].id]
        await store.save(self.conn, step, [])
        left = await store.inbox(self.conn, row.game)
        self.assertEqual([c.body["content"] for c in left], ["first"])

    async def test_a_resend_waiting_for_the_owner_is_retargeted(self) -> None:
        row = await self.drawing()
        user = self.players[1]
        body = {"content": "a guess", "ref": "r-1"}
        await store.enqueue(self.conn, row.game, self.channel, "message", user, "old/1", body)
        self.assertTrue(await store.retarget(self.conn, user, "r-1", "new/2"))
        (command,) = await store.inbox(self.conn, row.game)
        self.assertEqual(command.member, "new/2")
        # Another user's ref, or one that is not waiting: nothing to retarget.
        self.assertFalse(await store.retarget(self.conn, self.players[2], "r-1", "new/3"))
        self.assertFalse(await store.retarget(self.conn, user, "r-2", "new/3"))
        await self.conn.execute(db.game_inbox.delete())
        self.assertFalse(await store.retarget(self.conn, user, "r-1", "new/3"))


class StartTests(GameStoreTest):
    async def test_two_starts_at_once_make_one_game(self) -> None:
        # Two transactions that both see no game running: the second's insert waits on the
        # partial unique index, then fails: game_running, not an internal error.
        await self.transaction.commit()  # the channel, users and presence, for real
        engine = await open_engine({"db.pool_min": "0", "db.pool_max": "3"}, url=self.url)
        try:
            async with engine.acquire() as first, engine.acquire() as second:
                one = await first.begin()
                two = await second.begin()
                await self.start(first)
                racing = asyncio.ensure_future(self.start(second))
                await asyncio.sleep(0.3)
                self.assertFalse(racing.done())  # waiting for the first to commit
                await one.commit()
                with self.assertRaises(GameError) as caught:
                    await racing
                self.assertEqual(caught.exception.code, "game_running")
                await two.rollback()
        finally:
            async with engine.acquire() as conn:
                await self.forget_channel(conn)
            engine.close()
            await engine.wait_closed()

    async def forget_channel(self, conn: Any) -> None:
        channel = self.channel
        games = sa.select(db.games.c.id).where(db.games.c.channel == channel)
        turns = sa.select(db.game_turns.c.id).where(db.game_turns.c.channel == channel)
        for table in (db.game_inbox, db.game_state, db.scores, db.game_results):
            await conn.execute(table.delete().where(table.c.game.in_(games)))
        await conn.execute(db.game_strokes.delete().where(db.game_strokes.c.turn.in_(turns)))
        await conn.execute(db.game_turns.delete().where(db.game_turns.c.channel == channel))
        await conn.execute(db.games.delete().where(db.games.c.channel == channel))
        await conn.execute(db.presence.delete().where(db.presence.c.worker == WORKER))
        await conn.execute(db.chats.delete().where(db.chats.c.channel == channel))
        await conn.execute(db.users.delete().where(db.users.c.username.in_(self.players)))


def batch(channel: str, user: str, ops: list[Any]) -> strokes.StrokeBatch:
    return strokes.StrokeBatch(channel, user, ops, json.dumps(ops, separators=(",", ":")))


class DrawingTests(GameStoreTest):
    async def append(self, user: str, ops: list[Any], **bounds: int) -> Any:
        """The refusal of ``user``'s batch (None: stored)."""
        writer = strokes.StrokeWriter(self.engine, **bounds)
        (refusal,) = await writer.write(self.conn, [batch(self.channel, user, ops)])
        return refusal

    async def test_a_turns_drawing_is_bounded(self) -> None:
        row = await self.drawing()
        drawer = row.state.drawer
        self.assertIsNone(await self.append(drawer, [LINE], max_batches=2))
        self.assertIsNone(await self.append(drawer, [LINE], max_batches=2))
        self.assertEqual((await self.append(drawer, [LINE], max_batches=2)).code, "drawing_full")
        size = len(json.dumps([LINE], separators=(",", ":")))
        full = await self.append(drawer, [LINE], max_bytes=3 * size - 1)
        self.assertEqual(full.code, "drawing_full")
        self.assertIsNone(await self.append(drawer, [LINE], max_bytes=3 * size))
        # Not the drawer:
        self.assertEqual((await self.append(self.players[2], [LINE])).code, "not_drawer")
        state = await self.conn.execute(
            sa.select(db.game_state.c.strokes, db.game_state.c.stroke_bytes).where(
                db.game_state.c.game == row.game
            )
        )
        found = await state.first()
        self.assertEqual((found[0], found[1]), (3, 3 * size))

    async def test_many_games_batches_go_in_one_write_in_order(self) -> None:
        row = await self.drawing()
        other = await self.new_channel(self.conn)
        players = await self.new_users(self.conn, 2)
        await self.conn.execute(
            db.presence.insert().values(
                [{"worker": WORKER, "channel": other, "username": p} for p in players]
            )
        )
        second = await store.start_game(
            self.conn, other, players[0], Settings(), Timing(), WORKER, 30.0, random.Random(2)
        )
        second = await store.lock_owned(self.conn, second.game, WORKER, 1) or second
        await store.save(self.conn, second, second.state.choose(players[0], 0, second.now))
        before = {
            channel: await store.latest_position(self.conn, channel)
            for channel in (self.channel, other)
        }
        sent: list[dict[str, Any]] = []

        async def publish_many(conn: Any, events: list[Any]) -> None:
            sent.extend(event for event, _ in events)

        writer = strokes.StrokeWriter(self.engine)
        batches = [
            batch(self.channel, row.state.drawer, [LINE]),
            batch(other, players[0], [LINE]),
            batch(other, players[1], [LINE]),  # not the drawer there
            batch(self.channel, row.state.drawer, [{"op": "undo"}]),
            batch(other, players[0], [{"op": "clear"}]),
        ]
        with mock.patch.object(strokes, "publish_many", publish_many):
            refusals = await writer.write(self.conn, batches)
        self.assertEqual(
            [r.code if r else None for r in refusals], [None, None, "not_drawer", None, None]
        )
        by_channel: dict[str, list[dict[str, Any]]] = {}
        for event in sent:
            by_channel.setdefault(event["channel"], []).append(event)
        for channel, events in by_channel.items():
            self.assertEqual([e["seq"] for e in events], [1, 2])
            # Each names the position before it in its game's stream: a chain from where the
            # stream stood.
            chain = [before[channel]] + [e["v"] for e in events[:-1]]
            self.assertEqual([e["prev_in_stream"] for e in events], chain)
            self.assertEqual(await store.latest_position(self.conn, channel), events[-1]["v"])
        self.assertEqual(by_channel[other][1]["ops"], [{"op": "clear"}])

    async def test_an_ended_turn_keeps_its_drawing_compacted_and_drops_its_strokes(self) -> None:
        row = await self.drawing()
        drawer = row.state.drawer
        batches = [
            [LINE, {"op": "more", "p": [30, 30]}],
            [{"op": "fill", "c": 4, "x": 5, "y": 5}, {"op": "undo"}],
            [{"op": "line", "c": 2, "w": 0, "p": [1, 1]}],
        ]
        for ops in batches:
            await self.append(drawer, ops)
        step = await self.step(row)
        await store.save(self.conn, step, [TurnEnded(step.state.word)])
        turn = await self.conn.execute(
            sa.select(db.game_turns.c.word, db.game_turns.c.drawing).where(
                db.game_turns.c.id == step.turn
            )
        )
        found = await turn.first()
        word, drawing = found[0], found[1]
        self.assertEqual(word, row.state.word)
        self.assertEqual(drawing, [batches[0], batches[2]])
        self.assertEqual(compact(drawing), compact(batches))
        strokes = await self.conn.scalar(
            sa.select(sa.func.count()).where(db.game_strokes.c.turn == step.turn)
        )
        self.assertEqual(strokes, 0)

    async def test_a_kicked_drawers_turn_keeps_nothing(self) -> None:
        row = await self.drawing()
        await self.append(row.state.drawer, [LINE])
        step = await self.step(row)
        await store.save(self.conn, step, [TurnEnded(step.state.word, shown=False)])
        turn = await self.conn.execute(
            sa.select(db.game_turns.c.word, db.game_turns.c.drawing).where(
                db.game_turns.c.id == step.turn
            )
        )
        found = await turn.first()
        self.assertEqual((found[0], found[1]), (None, None))

    async def test_the_cache_reads_only_what_it_lacks_and_agrees(self) -> None:
        row = await self.drawing()
        drawer = row.state.drawer
        cache = strokes.DrawingCache()
        rng = random.Random(5)
        drawn: list[list[Any]] = []
        kinds = ["line", "more", "fill", "undo", "clear"]
        for _ in range(40):
            ops = []
            for _ in range(rng.randint(1, 4)):
                kind = rng.choices(kinds, [5, 5, 1, 2, 1])[0]
                if kind == "line":
                    ops.append({"op": "line", "c": rng.randint(0, 15), "w": 1, "p": [1, 2]})
                elif kind == "more":
                    ops.append({"op": "more", "p": [rng.randint(0, 799), 3]})
                elif kind == "fill":
                    ops.append({"op": "fill", "c": 3, "x": 1, "y": 1})
                else:
                    ops.append({"op": kind})
            drawn.append(ops)
            await self.append(drawer, ops)
            if rng.random() < 0.3:
                found = await store.snapshot(self.conn, self.channel, None, cache)
                assert found is not None
                self.assertEqual(found[0]["strokes"], compact(drawn))
                self.assertEqual(found[0]["seq"], len(drawn))
        await store.snapshot(self.conn, self.channel, None, cache)
        with mock.patch.object(self.conn, "execute", wraps=self.conn.execute) as spy:
            drawing = await cache.drawing(self.conn, row.turn or 0, len(drawn))
        self.assertEqual(drawing, compact(drawn))
        self.assertEqual(spy.call_count, 0)  # all cached: no read


class _StreamTest(GameStoreTest):
    """A channel's ``GameStream`` reading through the test's connection, and its members."""

    async def member(self, cursor: int) -> tuple[Member, RecordingSocket]:
        ws = RecordingSocket()
        member = Member(ws, self.channel, self.players[1], 64, worker=WORKER)
        member.cursors[STREAM] = cursor
        return member, ws

    def stream(self) -> GameStream:
        hub = mock.Mock(engine=self.engine, delivery_engine=self.engine)
        # The stream reads with connections of its own: the test's rows must be committed
        # for it, so it reads through the test's connection instead.
        connection = self.conn

        class _Acquire:
            async def __aenter__(self) -> Any:
                return connection

            async def __aexit__(self, *exc: Any) -> None:
                return None

        hub.engine = hub.delivery_engine = mock.Mock(acquire=lambda: _Acquire())
        return GameStream(hub)


class MissedEndTests(_StreamTest):
    """A socket that followed a game, then re-read it when none runs any more, hears how the
    last one ended (``game.over``) once."""

    async def finished_game(self) -> int:
        game = await self.conn.scalar(
            db.games.insert()
            .values(channel=self.channel, finished=sa.func.now())
            .returning(db.games.c.id)
        )
        await self.conn.execute(
            db.scores.insert().values(
                [
                    {"game": game, "user": self.players[0], "points": 300},
                    {"game": game, "user": self.players[1], "points": 300},
                    {"game": game, "user": self.players[2], "points": 900},
                ]
            )
        )
        await self.conn.execute(
            db.game_results.insert().values(
                game=game, winners=[self.players[0], self.players[1]], kicked=[self.players[2]]
            )
        )
        return game

    def overs(self, ws: RecordingSocket) -> list[dict[str, Any]]:
        frames = [json.loads(data) for data in ws.sent]
        return [f for f in frames if f["type"] == "game.over"]

    async def test_resync_and_recover_tell_a_follower_how_it_ended(self) -> None:
        game = await self.finished_game()
        stream = self.stream()
        for action in ("resync", "recover"):
            member, ws = await self.member(cursor=17)
            if action == "resync":
                await stream.resync(member)
            else:
                await stream.recover(self.channel, [member])
            (over,) = self.overs(ws)
            self.assertEqual(over["game"], game)
            self.assertEqual(over["winners"], [self.players[0], self.players[1]])
            # The kicked player is not ranked, however many points they had.
            self.assertEqual([s["user"] for s in over["scores"]], self.players[:2])

    async def test_a_socket_that_followed_nothing_hears_nothing(self) -> None:
        await self.finished_game()
        stream = self.stream()
        member, ws = await self.member(cursor=0)
        await stream.resync(member)
        await stream.catch_up(member, {})
        self.assertEqual(self.overs(ws), [])


class SharedSnapshotTests(_StreamTest):
    """Sockets of a channel joining together read its game's row once
    (``GameStream.snapshots``), and each is sent its own view of it: the word to the drawer
    alone."""

    async def test_joining_together_one_read_each_its_own_view(self) -> None:
        row = await self.drawing()
        word = row.state.word
        assert word is not None
        stream = self.stream()
        joined = [await self.member(cursor=0) for _ in range(2)]
        drawer_ws = RecordingSocket()
        drawer = Member(drawer_ws, self.channel, row.state.drawer, 64, worker=WORKER)
        guessers = [member for member, _ in joined]
        with mock.patch.object(store, "snapshot_row", wraps=store.snapshot_row) as reads:
            for member in [drawer, *guessers]:
                stream.prepare(member, {})
            await asyncio.gather(*(stream.catch_up(m, {}) for m in [drawer, *guessers]))
            self.assertEqual(reads.call_count, 1)
            # One that joins later reads again (what it is sent is never older than it).
            late, late_ws = await self.member(cursor=0)
            stream.prepare(late, {})
            await stream.catch_up(late, {})
            self.assertEqual(reads.call_count, 2)
        states = [json.loads(drawer_ws.sent[-1])]
        for ws in [*(ws for _, ws in joined), late_ws]:
            (data,) = ws.sent
            self.assertNotIn(word.encode(), data)  # in no field of a guesser's frame
            states.append(json.loads(data))
        self.assertIn(word.encode(), drawer_ws.sent[-1])
        self.assertEqual({state["type"] for state in states}, {"game.state"})
        self.assertEqual({state["v"] for state in states}, {row.version})
