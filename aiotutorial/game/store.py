"""The game's queries: starting a game, the owner's fenced reads and writes, strokes, snapshots.

Everything the rules decide reaches the database and the bus here, in the caller's
transaction: ``save`` turns the rules' effects into rows (scores, turns, chat messages) and
events (NOTIFY), then stores the new state, so that what a player is told and what is stored
commit together. The owner's transaction starts with ``lock_owned``, a ``FOR UPDATE`` of the
game's row that also checks the owner and its epoch: a stale owner (one whose lease another
process has taken over, with a higher epoch) finds no row and writes nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..chat.api import insert_message, release_restricted
from ..db import database_time
from ..db import schema as db
from ..db.clock import NOW
from ..realtime import ACK, ERROR, NOTIFY_CHANNEL, encode, online_users, publish
from .drawing import compact, gallery_batches
from .errors import GAME_RUNNING, GameError
from .rules import (
    CHOOSING,
    DRAWING,
    FINISHED,
    Game,
    GameFinished,
    Post,
    ScoreSet,
    Send,
    Timing,
    TurnBegan,
    TurnEnded,
    TurnRated,
)
from .settings import Settings

__all__ = [
    "INBOX_EVENT",
    "TURN_MAX_BATCHES",
    "TURN_MAX_BYTES",
    "GameRow",
    "start_game",
    "lock_owned",
    "inbox",
    "save",
    "enqueue",
    "judging_game",
    "retarget",
    "DrawingCache",
    "append_strokes",
    "current",
    "snapshot",
    "last_finished",
    "claim_orphan",
    "renew_leases",
    "release_leases",
    "running_games",
]

INBOX_EVENT = "game.inbox"
# A turn's drawing is bounded, whatever the drawer's sockets, workers and servers: 25 batches a
# second for the longest turn (240 s), and a megabyte of operations (a drawing that fills the
# board with fine strokes for four minutes is about a third of it).
TURN_MAX_BATCHES = 6000
TURN_MAX_BYTES = 1_000_000


@dataclass
class GameRow:
    """What the owner works with in one step: the state, and the row's bookkeeping."""

    game: int
    channel: str
    state: Game
    turn: int | None
    now: float
    inbox_read: list[int] = field(default_factory=list)  # the commands applied in this step
    published: list[dict[str, Any]] = field(default_factory=list)


def _now_column() -> Any:
    return NOW.label("now")


# --- starting -------------------------------------------------------------------------------


async def start_game(
    conn: SAConnection,
    channel: str,
    starter: str,
    settings: Settings,
    timing: Timing,
    worker: str,
    lease_seconds: float,
    rng: Any,
) -> GameRow:
    """A new game in ``channel`` owned by ``worker``, its first turn begun (in the caller's
    transaction). ``GameError`` when one runs already or too few are connected."""
    running = await conn.scalar(
        sa.select(db.game_state.c.game).where(db.game_state.c.channel == channel)
    )
    if running is not None:
        raise GameError(GAME_RUNNING, "A game is already running in this channel.")
    online = await online_users(conn, channel)
    now = await database_time(conn)
    # The partial unique index (one unfinished game per channel) settles a race between two
    # starts: the second one's insert fails and its transaction rolls back.
    try:
        game_id = await conn.scalar(
            db.games.insert().values(channel=channel).returning(db.games.c.id)
        )
    except psycopg2.errors.UniqueViolation:
        raise GameError(GAME_RUNNING, "A game is already running in this channel.") from None
    state, effects = Game.start(game_id, channel, starter, online, settings, timing, now, rng)
    await conn.execute(
        db.game_state.insert().values(
            game=game_id,
            channel=channel,
            owner=worker,
            epoch=1,
            lease_until=sa.func.clock_timestamp() + sa.text(f"interval '{lease_seconds} seconds'"),
            phase=state.phase,
            version=0,
            players=len(state.order),
            state=state.to_dict(),
        )
    )
    row = GameRow(game_id, channel, state, None, now)
    await save(conn, row, effects)
    return row


# --- the owner's step -----------------------------------------------------------------------


async def lock_owned(conn: SAConnection, game: int, owner: str, epoch: int) -> GameRow | None:
    """The game's row, locked, if ``owner`` still owns it at ``epoch``; else None."""
    gs = db.game_state
    result = await conn.execute(
        sa.select(gs.c.game, gs.c.channel, gs.c.state, gs.c.turn, _now_column())
        .where((gs.c.game == game) & (gs.c.owner == owner) & (gs.c.epoch == epoch))
        .with_for_update()
    )
    found = await result.first()
    if found is None:
        return None
    return GameRow(found.game, found.channel, Game.from_dict(found.state), found.turn, found.now)


async def inbox(conn: SAConnection, game: int) -> list[Any]:
    """The players' commands waiting for the owner, oldest first, locked until the step
    commits: a resend that retargets one (``retarget``) waits, then finds it gone."""
    result = await conn.execute(
        sa.select(db.game_inbox)
        .where(db.game_inbox.c.game == game)
        .order_by(db.game_inbox.c.id)
        .with_for_update()
    )
    return await result.fetchall()


async def save(conn: SAConnection, row: GameRow, effects: list[Any]) -> None:
    """Apply ``effects`` (rows and events) and store the state, in the caller's transaction."""
    gs = db.game_state
    state = row.state
    sends = [effect for effect in effects if isinstance(effect, Send)]
    positions = iter(await _positions(conn, len(sends)))
    finished = False
    for effect in effects:
        if isinstance(effect, Send):
            event = {**effect.frame, "channel": row.channel}
            if effect.frame["type"] not in (ERROR, ACK):  # answers to one socket
                event["v"] = next(positions)
            if effect.member is not None:
                event["audience"] = {"member": effect.member}
            elif effect.users is not None:
                event["audience"] = {"users": list(effect.users)}
            await publish(conn, event)
            row.published.append(event)
        elif isinstance(effect, Post):
            await insert_message(
                conn,
                row.channel,
                effect.user,
                effect.content,
                readers=effect.readers,
                ref=effect.ref,
            )
        elif isinstance(effect, ScoreSet):
            await conn.execute(
                sa.text(
                    'INSERT INTO scores (game, "user", points) VALUES (:game, :user, :points) '
                    'ON CONFLICT (game, "user") DO UPDATE SET points = EXCLUDED.points'
                ).bindparams(game=row.game, user=effect.user, points=effect.total)
            )
        elif isinstance(effect, TurnBegan):
            row.turn = await conn.scalar(
                db.game_turns.insert()
                .values(
                    game=row.game,
                    channel=row.channel,
                    number=effect.number,
                    round=effect.round,
                    drawer=effect.drawer,
                    started=sa.func.clock_timestamp(),
                )
                .returning(db.game_turns.c.id)
            )
            await conn.execute(
                gs.update()
                .where(gs.c.game == row.game)
                .values(turn=row.turn, strokes=0, stroke_bytes=0)
            )
        elif isinstance(effect, TurnEnded):
            if row.turn is not None:
                await _keep_drawing(conn, row.turn, effect)
            await release_restricted(conn, row.channel)
        elif isinstance(effect, TurnRated):
            if row.turn is not None:
                await conn.execute(
                    db.game_turns.update()
                    .where(db.game_turns.c.id == row.turn)
                    .values(likes=effect.likes, dislikes=effect.dislikes)
                )
        elif isinstance(effect, GameFinished):
            finished = True
            await conn.execute(
                db.games.update()
                .where(db.games.c.id == row.game)
                .values(finished=sa.func.clock_timestamp())
            )
            await conn.execute(
                db.game_results.insert().values(
                    game=row.game, winners=list(effect.winners), kicked=list(state.kicked)
                )
            )
            await _add_to_leaderboards(conn, row.channel, effect)
    if row.inbox_read:
        # Exactly what was read: a command committed after the read (READ COMMITTED) stays
        # for the next step, even with an id below one that was read.
        await conn.execute(
            db.game_inbox.delete().where(db.game_inbox.c.id == sa.any_(sa.literal(row.inbox_read)))
        )
    if finished or state.phase == FINISHED:
        await conn.execute(db.game_inbox.delete().where(db.game_inbox.c.game == row.game))
        await conn.execute(gs.delete().where(gs.c.game == row.game))
        return
    values: dict[str, Any] = {
        "state": state.to_dict(),
        "phase": state.phase,
        "drawer": state.drawer,
        "players": len(state.order),
    }
    if row.published:
        values["version"] = max(e.get("v", 0) for e in row.published)
    await conn.execute(gs.update().where(gs.c.game == row.game).values(**values))


async def _keep_drawing(conn: SAConnection, turn: int, ended: TurnEnded) -> None:
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


async def _positions(conn: SAConnection, count: int) -> list[int]:
    """``count`` positions in the game stream, increasing (the row is locked meanwhile)."""
    if count == 0:
        return []
    result = await conn.execute(
        sa.text("SELECT nextval('game_events') FROM generate_series(1, :n) ORDER BY 1").bindparams(
            n=count
        )
    )
    return [row[0] for row in await result.fetchall()]


_ADD_TOTALS = """
    INSERT INTO {table} ({key}"user", points, games, wins)
    SELECT {key_value}u, p, 1, w
    FROM unnest(CAST(:users AS varchar[]), CAST(:points AS int[]), CAST(:wins AS int[]))
        AS t(u, p, w)
    ORDER BY u
    ON CONFLICT ({key}"user") DO UPDATE SET points = {table}.points + EXCLUDED.points,
        games = {table}.games + 1, wins = {table}.wins + EXCLUDED.wins
"""
# Rows are locked in username order: two games finishing at once with players in common
# lock them in the same order instead of deadlocking.
_ADD_PLAYER_TOTALS = sa.text(_ADD_TOTALS.format(table="player_totals", key="", key_value=""))
_ADD_CHANNEL_TOTALS = sa.text(
    _ADD_TOTALS.format(table="channel_player_totals", key="channel, ", key_value=":channel, ")
)


async def _add_to_leaderboards(conn: SAConnection, channel: str, finished: GameFinished) -> None:
    """A finished game into the totals (both tables, one statement each)."""
    if not finished.standings:
        return
    winners = set(finished.winners)
    users = [user for user, _ in finished.standings]
    values = {
        "users": users,
        "points": [points for _, points in finished.standings],
        "wins": [1 if user in winners else 0 for user in users],
    }
    await conn.execute(_ADD_PLAYER_TOTALS.bindparams(**values))
    await conn.execute(_ADD_CHANNEL_TOTALS.bindparams(channel=channel, **values))


# --- what workers do for their sockets ------------------------------------------------------


async def enqueue(
    conn: SAConnection, game: int, channel: str, kind: str, user: str, member: str, body: dict
) -> None:
    """A command for the game's owner, announced to it (in the caller's transaction)."""
    await conn.execute(
        db.game_inbox.insert().values(game=game, kind=kind, username=user, member=member, body=body)
    )
    await publish(conn, {"type": INBOX_EVENT, "channel": channel, "game": game})


async def judging_game(conn: SAConnection, channel: str) -> int | None:
    """The channel's game while its owner judges the chat (a drawer choosing, or a word
    drawn), its row share-locked until the caller's transaction ends: the owner cannot move
    to another phase meanwhile."""
    gs = db.game_state
    return await conn.scalar(
        sa.select(gs.c.game)
        .where((gs.c.channel == channel) & gs.c.phase.in_((CHOOSING, DRAWING)))
        .with_for_update(read=True)
    )


async def retarget(conn: SAConnection, user: str, ref: str, member: str) -> bool:
    """A chat message of ``user`` with ``ref`` still waiting for the owner now answers to the
    socket ``member``; False when there is none (it was judged: the owner's step that did
    commits first, since it holds the inbox rows it reads)."""
    result = await conn.execute(
        sa.text(
            "UPDATE game_inbox SET member = :member WHERE username = :user "
            "AND kind = 'message' AND body ->> 'ref' = :ref RETURNING id"
        ).bindparams(member=member, user=user, ref=ref)
    )
    return await result.first() is not None


async def current(conn: SAConnection, channel: str) -> Any:
    """The columns other workers test (game, phase, drawer), or None when no game runs."""
    gs = db.game_state
    result = await conn.execute(
        sa.select(gs.c.game, gs.c.phase, gs.c.drawer).where(gs.c.channel == channel)
    )
    return await result.first()


_APPEND = sa.text(
    """
    WITH batch AS (
        UPDATE game_state SET strokes = strokes + 1, stroke_bytes = stroke_bytes + :size,
            version = nextval('game_events')
        WHERE channel = :channel AND phase = 'drawing' AND drawer = :user
            AND strokes < :max_batches AND stroke_bytes + :size <= :max_bytes
        RETURNING turn, strokes, version
    ), stored AS (
        INSERT INTO game_strokes (turn, seq, ops)
        SELECT turn, strokes, CAST(:ops AS jsonb) FROM batch
    )
    SELECT turn, strokes, version, pg_notify(:notify,
        :head || turn || ',"seq":' || strokes || ',"v":' || version || ',"ops":' || :ops || '}')
    FROM batch
    """
)


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
    head = encode({"type": "game.draw", "channel": channel})[:-1] + ',"turn":'
    result = await conn.execute(
        _APPEND.bindparams(
            channel=channel,
            user=user,
            ops=ops_text,
            size=len(ops_text),
            max_batches=max_batches,
            max_bytes=max_bytes,
            notify=NOTIFY_CHANNEL,
            head=head,
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


async def snapshot(
    conn: SAConnection, channel: str, user: str | None, drawings: DrawingCache | None = None
) -> tuple[dict, int] | None:
    """The channel's game as ``user`` may see it (``game.state`` with the current drawing) and
    its position in the game stream; None when no game runs."""
    gs = db.game_state
    result = await conn.execute(
        sa.select(gs.c.state, gs.c.turn, gs.c.strokes, gs.c.version, _now_column()).where(
            gs.c.channel == channel
        )
    )
    found = await result.first()
    if found is None:
        return None
    strokes: list[Any] = []
    if found.turn is not None and found.strokes:
        strokes = await (drawings or DrawingCache(1)).drawing(conn, found.turn, found.strokes)
    state = Game.from_dict(found.state)
    frame = state.view(user, found.now, strokes=strokes, seq=found.strokes)
    frame["channel"] = channel
    frame["v"] = found.version
    return frame, found.version


async def last_finished(conn: SAConnection, channel: str) -> dict[str, Any] | None:
    """``game.over`` for the channel's last finished game (for a socket that missed it)."""
    game = await conn.scalar(
        sa.select(db.games.c.id)
        .where((db.games.c.channel == channel) & db.games.c.finished.isnot(None))
        .order_by(db.games.c.id.desc())
        .limit(1)
    )
    if game is None:
        return None
    result = await conn.execute(
        sa.select(db.scores.c.user, db.scores.c.points)
        .where(db.scores.c.game == game)
        .order_by(db.scores.c.points.desc(), db.scores.c.user)
    )
    scores = [{"user": r.user, "points": r.points} for r in await result.fetchall()]
    found = await conn.execute(
        sa.select(db.game_results.c.winners, db.game_results.c.kicked).where(
            db.game_results.c.game == game
        )
    )
    outcome = await found.first()
    if outcome is not None:
        scores = [s for s in scores if s["user"] not in outcome.kicked]
        winners = list(outcome.winners)
    else:  # a game that finished before results were kept
        best = scores[0]["points"] if scores else 0
        winners = [s["user"] for s in scores if s["points"] == best and best > 0]
    return {
        "type": "game.over",
        "channel": channel,
        "game": game,
        "scores": scores,
        "winners": winners,
    }


# --- ownership ------------------------------------------------------------------------------


def _lease(seconds: float) -> Any:
    return sa.func.clock_timestamp() + sa.text(f"interval '{float(seconds)} seconds'")


async def claim_orphan(conn: SAConnection, worker: str, lease_seconds: float) -> Any:
    """Take over one game whose owner's lease has run out (the epoch goes up, fencing the old
    owner out); ``(game, epoch, channel)`` or None."""
    gs = db.game_state
    orphan = (
        sa.select(gs.c.game)
        .where(gs.c.lease_until < sa.func.clock_timestamp())
        .order_by(gs.c.lease_until)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await conn.execute(
        gs.update()
        .where(gs.c.game == orphan)
        .values(owner=worker, epoch=gs.c.epoch + 1, lease_until=_lease(lease_seconds))
        .returning(gs.c.game, gs.c.epoch, gs.c.channel)
    )
    return await result.first()


async def renew_leases(
    conn: SAConnection, worker: str, games: list[int], lease_seconds: float
) -> dict[int, int]:
    """Extend this worker's leases; the games it still owns, with their epochs."""
    if not games:
        return {}
    gs = db.game_state
    result = await conn.execute(
        gs.update()
        .where((gs.c.owner == worker) & gs.c.game.in_(games))
        .values(lease_until=_lease(lease_seconds))
        .returning(gs.c.game, gs.c.epoch)
    )
    return {row.game: row.epoch for row in await result.fetchall()}


async def release_leases(conn: SAConnection, worker: str) -> None:
    """On shutdown: this worker's games may be taken over at once."""
    gs = db.game_state
    await conn.execute(
        gs.update()
        .where(gs.c.owner == worker)
        .values(lease_until=sa.func.clock_timestamp() - sa.text("interval '1 second'"))
    )


async def running_games(conn: SAConnection) -> dict[str, int]:
    """Channel -> how many play, for every channel with a game running."""
    result = await conn.execute(sa.select(db.game_state.c.channel, db.game_state.c.players))
    return {row.channel: row.players for row in await result.fetchall()}
