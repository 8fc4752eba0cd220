"""The game's queries: starting a game, the owner's fenced reads and writes, strokes, snapshots.

Everything the rules decide reaches the database and the bus here, in the caller's
transaction: ``save`` turns the rules' effects into rows (scores, turns, chat messages) and
events (NOTIFY), then stores the new state, so that what a player is told and what is stored
commit together. The owner's transaction starts with ``lock_owned``, a ``FOR UPDATE`` of the
game's row that also checks the owner and its epoch: a stale owner (one whose lease another
process has taken over, with a higher epoch) finds no row and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from .. import database as db
from ..chat import insert_message, release_restricted
from ..realtime import NOTIFY_CHANNEL, encode, online_users, publish
from .drawing import compact
from .rules import (
    DRAWING,
    FINISHED,
    GAME_RUNNING,
    Game,
    GameError,
    GameFinished,
    Post,
    ScoreSet,
    Send,
    Timing,
    TurnBegan,
    TurnEnded,
)

__all__ = [
    "INBOX_EVENT",
    "GameRow",
    "db_now",
    "start_game",
    "lock_owned",
    "inbox",
    "save",
    "enqueue",
    "drawing_game",
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


@dataclass
class GameRow:
    """What the owner works with in one step: the state, and the row's bookkeeping."""

    game: int
    channel: str
    state: Game
    turn: int | None
    now: float
    inbox_max: int = 0
    published: list[dict[str, Any]] = field(default_factory=list)


async def db_now(conn: SAConnection) -> float:
    """The database's clock, in seconds since the epoch: every process reads the same one."""
    return float(await conn.scalar(sa.text("SELECT extract(epoch FROM clock_timestamp())::float8")))


def _now_column() -> Any:
    return sa.literal_column("extract(epoch FROM clock_timestamp())::float8").label("now")


# --- starting -------------------------------------------------------------------------------


async def start_game(
    conn: SAConnection,
    channel: str,
    starter: str,
    settings: tuple[int, int, list[str]],
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
    now = await db_now(conn)
    # The partial unique index (one unfinished game per channel) settles a race between two
    # starts: the second one's insert fails and its transaction rolls back.
    game_id = await conn.scalar(db.games.insert().values(channel=channel).returning(db.games.c.id))
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
    """The players' commands waiting for the owner, oldest first."""
    result = await conn.execute(
        sa.select(db.game_inbox).where(db.game_inbox.c.game == game).order_by(db.game_inbox.c.id)
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
            if effect.frame["type"] not in ("error", "ack"):  # answers to one socket
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
                gs.update().where(gs.c.game == row.game).values(turn=row.turn, strokes=0)
            )
        elif isinstance(effect, TurnEnded):
            if row.turn is not None:
                # The gallery shows the turns that have a word; a kicked drawer's has none.
                await conn.execute(
                    db.game_turns.update()
                    .where(db.game_turns.c.id == row.turn)
                    .values(
                        ended=sa.func.clock_timestamp(),
                        word=effect.word if effect.shown else None,
                    )
                )
            await release_restricted(conn, row.channel)
        elif isinstance(effect, GameFinished):
            finished = True
            await conn.execute(
                db.games.update()
                .where(db.games.c.id == row.game)
                .values(finished=sa.func.clock_timestamp())
            )
            await _add_to_leaderboards(conn, row.channel, effect)
    if row.inbox_max:
        await conn.execute(
            db.game_inbox.delete().where(
                (db.game_inbox.c.game == row.game) & (db.game_inbox.c.id <= row.inbox_max)
            )
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


async def drawing_game(conn: SAConnection, channel: str) -> int | None:
    """The channel's game if a turn is being drawn, its row share-locked until the caller's
    transaction ends: the owner cannot end the turn meanwhile."""
    gs = db.game_state
    return await conn.scalar(
        sa.select(gs.c.game)
        .where((gs.c.channel == channel) & (gs.c.phase == DRAWING))
        .with_for_update(read=True)
    )


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
        UPDATE game_state SET strokes = strokes + 1, version = nextval('game_events')
        WHERE channel = :channel AND phase = 'drawing' AND drawer = :user
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
    conn: SAConnection, channel: str, user: str, ops_text: str
) -> tuple[int, int, int] | None:
    """Store a batch of the current turn's drawing and relay it, in one statement (one round
    trip, one commit); ``(turn, seq, version)``, or None if ``user`` is not drawing now."""
    head = encode({"type": "game.draw", "channel": channel})[:-1] + ',"turn":'
    result = await conn.execute(
        _APPEND.bindparams(
            channel=channel, user=user, ops=ops_text, notify=NOTIFY_CHANNEL, head=head
        )
    )
    found = await result.first()
    return (found.turn, found.strokes, found.version) if found is not None else None


async def snapshot(conn: SAConnection, channel: str, user: str | None) -> tuple[dict, int] | None:
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
        rows = await conn.execute(
            sa.select(db.game_strokes.c.ops)
            .where(
                (db.game_strokes.c.turn == found.turn) & (db.game_strokes.c.seq <= found.strokes)
            )
            .order_by(db.game_strokes.c.seq)
        )
        strokes = compact([row.ops for row in await rows.fetchall()])
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
    return {"type": "game.over", "channel": channel, "game": game, "scores": scores}


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
