"""The drawing of the turn being played: batches stored and relayed together, bounded per
turn, read back compacted for a snapshot, and compacted into the turn when it ends.

A batch takes the short path: validated on the drawer's worker (``drawing.validate_ops``), then
stored by the worker's ``StrokeWriter`` with every other batch that arrived meanwhile, in one
transaction that checks, on each game's row, that the sender is the current drawer, the phase
is drawing and the turn's drawing is within its bounds; then announced on the bus (one
notification or message a game): no hop through the game's owner.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Any, NamedTuple

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from ..db.groupcommit import MAX_BATCH, GroupCommit
from ..realtime.bus import PREV_IN_STREAM, publish_many
from .drawing import compact, gallery_batches
from .effects import TurnEnded
from .errors import DRAWING_FULL, NO_GAME, NOT_DRAWER, GameError
from .rules import DRAWING

__all__ = [
    "TURN_MAX_BATCHES",
    "TURN_MAX_BYTES",
    "StrokeBatch",
    "StrokeWriter",
    "DrawingCache",
    "keep_drawing",
]

# A turn's drawing is bounded, whatever the drawer's sockets, workers and servers: 25 batches a
# second for the longest turn (240 s), and a megabyte of operations (a drawing that fills the
# board with fine strokes for four minutes is about a third of it).
TURN_MAX_BATCHES = 6000
TURN_MAX_BYTES = 1_000_000


# The writer's statements. The games' rows are locked in the channels' order, so that two
# workers' writers never wait on each other in a circle (the game's owner locks one row at a
# time).
_GAME_FIELDS = ("game", "channel", "turn", "phase", "drawer", "strokes", "stroke_bytes", "version")
_LOCK_GAMES = (
    f"SELECT {', '.join(_GAME_FIELDS)} FROM game_state "
    "WHERE channel = ANY(CAST(%(channels)s AS text[])) ORDER BY channel FOR UPDATE"
)
# The positions, in order; and the commit will not wait for its flush to disk (for this
# transaction only: set_config's third argument), as the class says.
_POSITIONS = (
    "SELECT nextval('game_events'), set_config('synchronous_commit', 'off', true) "
    "FROM generate_series(1, %(n)s) ORDER BY 1"
)
# The batches inserted and the games' counters moved, in one statement.
_STORE = """
WITH stored AS (
    INSERT INTO game_strokes (turn, seq, ops)
    SELECT t, s, CAST(o AS jsonb)
    FROM unnest(CAST(%(turns)s AS int[]), CAST(%(seqs)s AS int[]), CAST(%(ops)s AS text[]))
        AS batch (t, s, o)
)
UPDATE game_state SET strokes = given.strokes, stroke_bytes = given.bytes, version = given.version
FROM unnest(CAST(%(games)s AS int[]), CAST(%(strokes)s AS int[]), CAST(%(bytes)s AS int[]),
            CAST(%(versions)s AS bigint[])) AS given (game, strokes, bytes, version)
WHERE game_state.game = given.game
"""
# A worker's batches wait for the next tick when one was written less than a tick ago:
# 25 batches a second from each drawer, one transaction a tick for them all.
TICK_SECONDS = 0.025


class StrokeBatch(NamedTuple):
    """A drawer's batch of operations, as sent."""

    channel: str
    user: str
    ops: list[dict[str, Any]]
    text: str  # the ops as JSON, as stored


class StrokeWriter:
    """This worker's drawers' batches, every game's together: one transaction (one lock of
    the games' rows, one statement storing the batches and moving the games' counters, one
    announcement per game) at most once a tick (``TICK_SECONDS``) for the batches that arrived
    meanwhile, so that a worker with many games drawing at once commits 40 times a second
    rather than once per batch (``db.groupcommit``: a batch to a worker quiet for a tick goes
    at once, so a lone drawer waits for no tick). The transaction does not wait for its
    commit's flush to disk (``synchronous_commit = off``): a crash of the database may lose the
    last fraction of a second of drawing, never a message, a guess or a score.
    """

    KEY = "strokes"

    def __init__(
        self,
        engine: Any,
        *,
        max_batches: int = TURN_MAX_BATCHES,
        max_bytes: int = TURN_MAX_BYTES,
        tick: float = TICK_SECONDS,
    ) -> None:
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self.commits: GroupCommit[StrokeBatch, GameError | None] = GroupCommit(
            engine, self.write, max_batch=MAX_BATCH, tick=tick
        )

    async def append(
        self, channel: str, user: str, ops: list[dict[str, Any]], text: str
    ) -> GameError | None:
        """Store and relay ``user``'s batch of ``channel``'s drawing; the refusal, if the
        sender is not drawing now or the turn's drawing is full."""
        return await self.commits.submit(self.KEY, StrokeBatch(channel, user, ops, text))

    async def drain(self) -> None:
        await self.commits.drain()

    async def write(self, conn: SAConnection, batches: list[StrokeBatch]) -> list[GameError | None]:
        """Store and announce ``batches`` in ``conn``'s transaction: the refusal of each
        (None for those stored). Three statements, sent as SQL text (nothing to compile: this
        runs every tick of a busy worker)."""
        channels = sorted({batch.channel for batch in batches})
        result = await conn.execute(_LOCK_GAMES, {"channels": channels})
        games = {row["channel"]: dict(row) for row in await result.fetchall()}
        outcomes: list[GameError | None] = []
        accepted: list[tuple[StrokeBatch, dict[str, Any], int]] = []  # (batch, its game, its seq)
        for batch in batches:
            game = games.get(batch.channel)
            refusal = self._refusal(game, batch)
            outcomes.append(refusal)
            if refusal is None and game is not None:
                game["strokes"] += 1
                game["stroke_bytes"] += len(batch.text)
                accepted.append((batch, game, game["strokes"]))
        if not accepted:
            return outcomes
        numbers = await conn.execute(_POSITIONS, {"n": len(accepted)})
        positions = [row[0] for row in await numbers.fetchall()]
        strokes, events = [], []
        for (batch, game, seq), position in zip(accepted, positions, strict=True):
            strokes.append((game["turn"], seq, batch.text))
            events.append(
                {
                    "type": "game.draw",
                    "channel": batch.channel,
                    "turn": game["turn"],
                    "seq": seq,
                    "v": position,
                    PREV_IN_STREAM: game["version"],
                    "ops": batch.ops,
                }
            )
            game["version"] = position
        changed = list({id(game): game for _, game, _ in accepted}.values())
        await conn.execute(
            _STORE,
            {
                "turns": [turn for turn, _, _ in strokes],
                "seqs": [seq for _, seq, _ in strokes],
                "ops": [text for _, _, text in strokes],
                "games": [game["game"] for game in changed],
                "strokes": [game["strokes"] for game in changed],
                "bytes": [game["stroke_bytes"] for game in changed],
                "versions": [game["version"] for game in changed],
            },
        )
        # One notification (NOTIFY), or one message per game (Redis), for all of them.
        await publish_many(conn, [(event, None) for event in events])
        return outcomes

    def _refusal(self, game: dict[str, Any] | None, batch: StrokeBatch) -> GameError | None:
        if game is None:
            return GameError(NO_GAME, "No game is running in this channel.")
        if game["drawer"] != batch.user:
            return GameError(NOT_DRAWER, "Only the drawer draws.")
        if game["phase"] != DRAWING:
            return GameError(NOT_DRAWER, "Choose a word first: the drawing starts then.")
        if (
            game["strokes"] >= self.max_batches
            or game["stroke_bytes"] + len(batch.text) > self.max_bytes
        ):
            return GameError(
                DRAWING_FULL, "This drawing has reached its size: undo does not make room."
            )
        return None


class DrawingCache:
    """The drawings of the turns being played, compacted, as this worker last read them: a
    snapshot (a socket joining, ``game.sync``) reads only the batches after what it holds,
    instead of the whole turn again. ``compact`` of a compacted prefix and the rest is the
    compaction of the whole, since ``undo`` and ``clear`` only ever take shapes away."""

    def __init__(self, turns: int = 64) -> None:
        self.turns = turns
        self._drawings: OrderedDict[int, tuple[int, list[Any]]] = OrderedDict()

    async def drawing(self, conn: SAConnection, turn: int, seq: int) -> list[Any]:
        """Turn ``turn``'s drawing up to batch ``seq``, compacted."""
        held_seq, held = self._drawings.get(turn, (0, []))
        if held_seq > seq:  # another worker's newer read was cached: read from the start
            held_seq, held = 0, []
        if held_seq < seq:
            rows = await conn.execute(
                sa.select(db.game_strokes.c.ops)
                .where(
                    (db.game_strokes.c.turn == turn)
                    & (db.game_strokes.c.seq > held_seq)
                    & (db.game_strokes.c.seq <= seq)
                )
                .order_by(db.game_strokes.c.seq)
            )
            held = compact([held, *(row.ops for row in await rows.fetchall())])
            held_seq = seq
        self._drawings[turn] = (held_seq, held)
        self._drawings.move_to_end(turn)
        while len(self._drawings) > self.turns:
            self._drawings.popitem(last=False)
        return list(held)


async def keep_drawing(conn: SAConnection, turn: int, ended: TurnEnded) -> None:
    """The turn's end: its word (for the gallery, unless it is not shown: a kicked drawer's)
    and its drawing compacted into its row; its strokes go."""
    drawing = None
    if ended.shown and ended.word is not None:
        result = await conn.execute(
            sa.text(
                "SELECT ops::text FROM game_strokes WHERE turn = :turn ORDER BY seq"
            ).bindparams(turn=turn)
        )
        texts = [row[0] for row in await result.fetchall()]
        # Up to a megabyte of JSON: decoded and compacted off the event loop.
        drawing = await asyncio.get_running_loop().run_in_executor(None, _compacted_text, texts)
    await conn.execute(
        sa.text(
            "UPDATE game_turns SET ended = clock_timestamp(), word = :word, "
            "drawing = CAST(:drawing AS jsonb) WHERE id = :turn"
        ).bindparams(word=ended.word if ended.shown else None, drawing=drawing, turn=turn)
    )
    await conn.execute(db.game_strokes.delete().where(db.game_strokes.c.turn == turn))


def _compacted_text(texts: list[str]) -> str:
    batches = [json.loads(text) for text in texts]
    return json.dumps(gallery_batches(batches), separators=(",", ":"))
