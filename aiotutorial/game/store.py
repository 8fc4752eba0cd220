"""The game's queries: starting a game, the owner's fenced reads and writes, strokes, snapshots.

Everything the rules decide reaches the database and the bus here, in the caller's
transaction: ``save`` turns the rules' effects into rows (scores, turns, chat messages) and
events (NOTIFY), then stores the new state, so that what a player is told and what is stored
commit together. The owner's transaction starts with ``lock_owned``, a ``FOR UPDATE`` of the
game's row that also checks the owner and its epoch: a stale owner (one whose lease another
process has taken over, with a higher epoch) finds no row and writes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import psycopg2
import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..chat.api import insert_message, release_restricted
from ..db import database_time
from ..db import schema as db
from ..db.clock import NOW
from ..db.compiled import Prepared
from ..db.types import RowsConnection
from ..realtime import ACK, ERROR, online_users, publish
from ..realtime.bus import PREV_IN_STREAM
from .effects import Effect, GameFinished, Post, ScoreSet, Send, TurnBegan, TurnEnded, TurnRated
from .errors import GAME_RUNNING, GameError
from .ownership import lease_until
from .rules import CHOOSING, DRAWING, FINISHED, Game, Timing
from .settings import Settings
from .strokes import DrawingCache, keep_drawing

__all__ = [
    "INBOX_EVENT",
    "GameRow",
    "start_game",
    "lock_owned",
    "inbox",
    "save",
    "enqueue",
    "judging_game",
    "retarget",
    "current",
    "snapshot",
    "latest_position",
    "last_finished",
    "running_games",
]

INBOX_EVENT = "game.inbox"


@dataclass
class GameRow:
    """What the owner works with in one step: the state, and the row's bookkeeping."""

    game: int
    channel: str
    state: Game
    turn: int | None
    now: float
    # The game stream's position when the step began: its events follow it (each names the
    # one before it, ``prev_in_stream``, for a bus that may reorder them).
    version: int = 0
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
            lease_until=lease_until(lease_seconds),
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
        sa.select(gs.c.game, gs.c.channel, gs.c.state, gs.c.turn, gs.c.version, _now_column())
        .where((gs.c.game == game) & (gs.c.owner == owner) & (gs.c.epoch == epoch))
        .with_for_update()
    )
    found = await result.first()
    if found is None:
        return None
    state = Game.from_dict(found.state)
    return GameRow(found.game, found.channel, state, found.turn, found.now, found.version)


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


async def save(conn: SAConnection, row: GameRow, effects: list[Effect]) -> None:
    """Apply ``effects`` (rows and events) and store the state, in the caller's transaction."""
    gs = db.game_state
    state = row.state
    sends = sum(1 for effect in effects if isinstance(effect, Send))
    positions = iter(await _positions(conn, sends))
    for effect in effects:
        await _APPLY[type(effect)](conn, row, effect, positions)
    if row.inbox_read:
        # Exactly what was read: a command committed after the read (READ COMMITTED) stays
        # for the next step, even with an id below one that was read.
        await conn.execute(
            db.game_inbox.delete().where(db.game_inbox.c.id == sa.any_(sa.literal(row.inbox_read)))
        )
    if state.phase == FINISHED:
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


# How each effect of the rules reaches the database and the bus: ``(conn, row, effect,
# positions)``, ``positions`` handing out the game stream's positions for the step's frames.
Positions = Iterator[int]


async def _send(conn: SAConnection, row: GameRow, effect: Send, positions: Positions) -> None:
    event = {**effect.frame, "channel": row.channel}
    if effect.frame["type"] not in (ERROR, ACK):  # answers to one socket
        event["v"] = next(positions)
        event[PREV_IN_STREAM] = row.version
        row.version = event["v"]
    if effect.member is not None:
        event["audience"] = {"member": effect.member}
    elif effect.users is not None:
        event["audience"] = {"users": list(effect.users)}
    await publish(conn, event)
    row.published.append(event)


async def _post(conn: SAConnection, row: GameRow, effect: Post, positions: Positions) -> None:
    await insert_message(
        conn, row.channel, effect.user, effect.content, readers=effect.readers, ref=effect.ref
    )


_SET_SCORE = sa.text(
    'INSERT INTO scores (game, "user", points) VALUES (:game, :user, :points) '
    'ON CONFLICT (game, "user") DO UPDATE SET points = EXCLUDED.points'
)


async def _score(conn: SAConnection, row: GameRow, effect: ScoreSet, positions: Positions) -> None:
    await conn.execute(_SET_SCORE.bindparams(game=row.game, user=effect.user, points=effect.total))


async def _turn_began(
    conn: SAConnection, row: GameRow, effect: TurnBegan, positions: Positions
) -> None:
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
    gs = db.game_state
    await conn.execute(
        gs.update().where(gs.c.game == row.game).values(turn=row.turn, strokes=0, stroke_bytes=0)
    )


async def _turn_ended(
    conn: SAConnection, row: GameRow, effect: TurnEnded, positions: Positions
) -> None:
    if row.turn is not None:
        await keep_drawing(conn, row.turn, effect)
    await release_restricted(conn, row.channel)


async def _turn_rated(
    conn: SAConnection, row: GameRow, effect: TurnRated, positions: Positions
) -> None:
    if row.turn is not None:
        await conn.execute(
            db.game_turns.update()
            .where(db.game_turns.c.id == row.turn)
            .values(likes=effect.likes, dislikes=effect.dislikes)
        )


async def _game_finished(
    conn: SAConnection, row: GameRow, effect: GameFinished, positions: Positions
) -> None:
    await conn.execute(
        db.games.update()
        .where(db.games.c.id == row.game)
        .values(finished=sa.func.clock_timestamp())
    )
    await conn.execute(
        db.game_results.insert().values(
            game=row.game, winners=list(effect.winners), kicked=list(row.state.kicked)
        )
    )
    await _add_to_leaderboards(conn, row.channel, effect)


_APPLY: dict[type, Callable[[SAConnection, GameRow, Any, Positions], Awaitable[None]]] = {
    Send: _send,
    Post: _post,
    ScoreSet: _score,
    TurnBegan: _turn_began,
    TurnEnded: _turn_ended,
    TurnRated: _turn_rated,
    GameFinished: _game_finished,
}


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


# Asked by every socket that joins a channel (built and compiled once).
SNAPSHOT = Prepared(
    sa.select(
        db.game_state.c.state,
        db.game_state.c.turn,
        db.game_state.c.strokes,
        db.game_state.c.version,
        _now_column(),
    ).where(db.game_state.c.channel == sa.bindparam("channel"))
)
LATEST_VERSION = Prepared(
    sa.select(db.game_state.c.version).where(db.game_state.c.channel == sa.bindparam("channel"))
)


@dataclass(frozen=True)
class Snapshot:
    """A running game's row as every socket of its channel reads it at join (``state`` as
    stored: each member's view is made from its own copy, ``view_of``)."""

    state: dict[str, Any]
    strokes: list[Any]
    seq: int
    version: int
    now: float


async def snapshot_row(
    conn: SAConnection, channel: str, drawings: DrawingCache | None = None
) -> Snapshot | None:
    """The channel's running game with its current drawing; None when no game runs."""
    found = await conn.execute(SNAPSHOT, channel=channel)
    row = await found.first()
    if row is None:
        return None
    strokes: list[Any] = []
    if row.turn is not None and row.strokes:
        strokes = await (drawings or DrawingCache(1)).drawing(conn, row.turn, row.strokes)
    return Snapshot(row.state, strokes, row.strokes, row.version, row.now)


def view_of(found: Snapshot, channel: str, user: str | None) -> tuple[dict, int]:
    """``game.state`` of ``found`` as ``user`` may see it (the word only to who may know it),
    and its position in the game stream. The row is shared: its state is copied first."""
    state = Game.from_dict(copy.deepcopy(found.state))
    frame = state.view(user, found.now, strokes=found.strokes, seq=found.seq)
    frame["channel"] = channel
    frame["v"] = found.version
    return frame, found.version


async def snapshot(
    conn: SAConnection, channel: str, user: str | None, drawings: DrawingCache | None = None
) -> tuple[dict, int] | None:
    """The channel's game as ``user`` may see it (``game.state`` with the current drawing) and
    its position in the game stream; None when no game runs."""
    found = await snapshot_row(conn, channel, drawings)
    return view_of(found, channel, user) if found is not None else None


async def latest_position(conn: SAConnection, channel: str) -> int:
    """The position of the channel's game stream now: its running game's last event (0)."""
    version = await conn.scalar(LATEST_VERSION, channel=channel)
    return int(version or 0)


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


# Read by every lobby and channel list: built and compiled once, prepared on the server.
RUNNING_GAMES = Prepared(sa.select(db.game_state.c.channel, db.game_state.c.players))


async def running_games(conn: SAConnection) -> dict[str, int]:
    """Channel -> how many play, for every channel with a game running."""
    return dict(await cast(RowsConnection, conn).rows(RUNNING_GAMES))
