"""The drawing of the turn being played: batches stored and relayed in one statement each,
bounded per turn, read back compacted for a snapshot, and compacted into the turn when it ends.

A batch takes the short path: validated on the drawer's worker (``drawing.validate_ops``),
then one SQL statement updates the game's row where the sender is the current drawer, the
phase is drawing and the turn's drawing is within its bounds, inserts the batch and announces
it on the bus (``realtime.bus.notify_sql``): one round trip and one commit per batch, checked
against the database, with no hop through the game's owner.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from ..realtime.bus import PREV_IN_STREAM, event_head, notify_sql
from .drawing import compact, gallery_batches
from .effects import TurnEnded

__all__ = [
    "TURN_MAX_BATCHES",
    "TURN_MAX_BYTES",
    "APPEND",
    "stroke_head",
    "append_strokes",
    "DrawingCache",
    "keep_drawing",
]

# A turn's drawing is bounded, whatever the drawer's sockets, workers and servers: 25 batches a
# second for the longest turn (240 s), and a megabyte of operations (a drawing that fills the
# board with fine strokes for four minutes is about a third of it).
TURN_MAX_BATCHES = 6000
TURN_MAX_BYTES = 1_000_000

# The relayed frame, written in SQL from the row's new numbers: ``:head`` is the event's
# opening (``stroke_head``), closed here by the seq, the stream position and the batch.
_FRAME = (
    """:head || turn || ',"seq":' || strokes || ',"v":' || version"""
    f""" || ',"{PREV_IN_STREAM}":' || before || ',"ops":' || :ops || '}}'"""
)

APPEND = sa.text(
    f"""
    WITH current AS (
        SELECT game, version FROM game_state WHERE channel = :channel FOR UPDATE
    ), batch AS (
        UPDATE game_state SET strokes = strokes + 1, stroke_bytes = stroke_bytes + :size,
            version = nextval('game_events')
        FROM current
        WHERE game_state.game = current.game AND phase = 'drawing' AND drawer = :user
            AND strokes < :max_batches AND stroke_bytes + :size <= :max_bytes
        RETURNING turn, strokes, game_state.version, current.version AS before
    ), stored AS (
        INSERT INTO game_strokes (turn, seq, ops)
        SELECT turn, strokes, CAST(:ops AS jsonb) FROM batch
    )
    SELECT turn, strokes, version, {notify_sql(_FRAME)} FROM batch
    """
)


def stroke_head(channel: str) -> str:
    """The opening of a ``game.draw`` event of ``channel``, up to its ``turn``'s value."""
    return event_head({"type": "game.draw", "channel": channel}, "turn")


async def append_strokes(
    conn: SAConnection,
    channel: str,
    user: str,
    ops_text: str,
    *,
    max_batches: int = TURN_MAX_BATCHES,
    max_bytes: int = TURN_MAX_BYTES,
) -> tuple[int, int, int] | None:
    """Store a batch of the current turn's drawing and relay it, in one statement (one round
    trip, one commit); ``(turn, seq, version)``, or None if ``user`` is not drawing now or
    the turn's drawing is full (``max_batches`` batches, ``max_bytes`` bytes of them)."""
    result = await conn.execute(
        APPEND.bindparams(
            channel=channel,
            user=user,
            ops=ops_text,
            size=len(ops_text),
            max_batches=max_batches,
            max_bytes=max_bytes,
            head=stroke_head(channel),
        )
    )
    found = await result.first()
    return (found.turn, found.strokes, found.version) if found is not None else None


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
