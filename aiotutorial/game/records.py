"""What finished games leave behind, as pages: leaderboards and the gallery of drawings.

Every page here is read from an index, however many games were played: a leaderboard page
from the totals tables that ``store`` keeps when a game finishes (``ix_player_totals_rank``,
``ix_channel_player_totals_rank``), the gallery from ``ix_game_turns_channel_id_ended``.
``tests/functional/test_leaderboard_scale.py`` checks the plans at 100,000 games.

Only finished turns are shown. The word of a turn being played lives in ``game_state`` alone
(``game_turns.word`` is written when the turn ends), and nothing here reads ``game_state``;
every query of a turn also requires ``ended`` and ``word`` to be set, so a turn still running
is not found, its drawing included.

``rebuild_leaderboards`` recomputes the totals from ``scores``: the definition of what the
incremental totals must equal, and the repair should they ever drift.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, cast

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db
from ..db import transaction
from ..db.compiled import Prepared
from ..db.types import RowsConnection

__all__ = [
    "LEADERBOARD_PAGE_SIZE",
    "GALLERY_DEFAULT_LIMIT",
    "GALLERY_MAX_LIMIT",
    "leaderboard_query",
    "leaderboard_count_query",
    "players_above_query",
    "leaderboard_page",
    "gallery_query",
    "gallery_page",
    "finished_turn_query",
    "finished_turn",
    "rebuild_leaderboards",
]

LEADERBOARD_PAGE_SIZE = 50
GALLERY_DEFAULT_LIMIT = 12
GALLERY_MAX_LIMIT = 50


def _iso(moment: datetime.datetime) -> str:
    # The chat's format for times (docs/protocol.md): UTC with microseconds and +00:00.
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds")


# --- leaderboards ---------------------------------------------------------------------------


def _totals(channel: bool) -> tuple[sa.Table, list[Any]]:
    if not channel:
        return db.player_totals, []
    table = db.channel_player_totals
    return table, [table.c.channel == sa.bindparam("channel")]


# The pages' statements, built and compiled once per shape (building a statement and computing
# its cache key was a third of a page's CPU), sent as text: planned for their values.
_STATEMENTS: dict[tuple[str, bool], Prepared] = {}


def _statement(kind: str, shape: bool) -> Prepared:
    key = (kind, shape)
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = Prepared(_BUILDERS[kind](shape), server=False)
    return statement


def _leaderboard(channel: bool) -> sa.sql.Select:
    # A walk of the rank index in order, stopped by the LIMIT: a page costs the rows before
    # it, not the whole table. (rank() OVER in SQL would make PostgreSQL 15 add a WindowAgg
    # and an Incremental Sort over all those rows: five times slower on a deep page.)
    table, where = _totals(channel)
    return (
        sa.select(table.c.user, table.c.points, table.c.games, table.c.wins)
        .where(*where)
        .order_by(table.c.points.desc(), table.c.user)
        .offset(sa.bindparam("offset", type_=sa.Integer))
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


def _players(channel: bool) -> sa.sql.Select:
    table, where = _totals(channel)
    return sa.select(sa.func.count()).select_from(table).where(*where)


def _players_above(channel: bool) -> sa.sql.Select:
    table, where = _totals(channel)
    points = table.c.points > sa.bindparam("points", type_=sa.Integer)
    return sa.select(sa.func.count()).select_from(table).where(*where, points)


def _gallery(before: bool) -> sa.sql.Select:
    turns = db.game_turns
    # The page's ids from the gallery's index alone (an Index Only Scan of this channel's
    # entries), then the rows by primary key. Asked for the rows directly, the planner may
    # walk the primary key backwards testing each turn's channel: for a channel gone quiet,
    # every other channel's newer turns (120,000 rows read at the scale test's size).
    ids = sa.select(turns.c.id).where(
        (turns.c.channel == sa.bindparam("channel")) & _finished(turns)
    )
    if before:
        ids = ids.where(turns.c.id < sa.bindparam("before", type_=sa.Integer))
    limit = sa.bindparam("limit", type_=sa.Integer)
    page = sa.func.array(ids.order_by(turns.c.id.desc()).limit(limit).scalar_subquery())
    batches = sa.func.coalesce(sa.func.jsonb_array_length(turns.c.drawing), 0)
    return (
        sa.select(
            turns.c.id,
            turns.c.word,
            turns.c.drawer,
            turns.c.ended,
            batches.label("strokes"),
            turns.c.likes,
            turns.c.dislikes,
        )
        .where(turns.c.id == sa.any_(page))
        .order_by(turns.c.id.desc())
    )


_BUILDERS = {
    "leaderboard": _leaderboard,
    "players": _players,
    "players above": _players_above,
    "gallery": _gallery,
}


def _leaderboard_values(channel: str | None, page: int) -> dict[str, Any]:
    offset = (page - 1) * LEADERBOARD_PAGE_SIZE
    values: dict[str, Any] = {
        "offset": max(0, offset - 1),
        "limit": LEADERBOARD_PAGE_SIZE + (1 if offset else 0),
    }
    if channel is not None:
        values["channel"] = channel
    return values


def _channel_values(channel: str | None, **values: Any) -> dict[str, Any]:
    return values if channel is None else {"channel": channel, **values}


def leaderboard_query(channel: str | None, page: int) -> Any:
    """Page ``page`` (from 1) of the leaderboard, everyone's (``channel`` None) or one
    channel's, best first, ties by name; preceded by the last row of the page before (to tell
    whether the page begins in the middle of a tie). With its values (for plans: the app
    runs the shape's ``Prepared`` with them)."""
    statement = _statement("leaderboard", channel is not None).statement
    return statement.params(_leaderboard_values(channel, page))


def leaderboard_count_query(channel: str | None) -> Any:
    """How many players the leaderboard has (for the number of pages)."""
    statement = _statement("players", channel is not None).statement
    return statement.params(_channel_values(channel))


def players_above_query(channel: str | None, points: int) -> Any:
    """How many players of the leaderboard have more than ``points``."""
    statement = _statement("players above", channel is not None).statement
    return statement.params(_channel_values(channel, points=points))


async def leaderboard_page(
    conn: SAConnection, page: int, *, channel: str | None = None
) -> dict[str, Any]:
    """``{"page", "pages", "players": [{"rank", "user", "points", "games", "wins"}]}``; a page
    past the last is empty (``pages`` is at least 1, an empty leaderboard has one page).

    Players with equal points share a rank, the best of them (1, 2, 2, 4): a rank is one more
    than the number of players with more points."""
    rows_of = cast(RowsConnection, conn)  # every connection the app hands out can
    shape = channel is not None
    players = await conn.scalar(_statement("players", shape), **_channel_values(channel))
    pages = max(1, math.ceil(players / LEADERBOARD_PAGE_SIZE))
    offset = (page - 1) * LEADERBOARD_PAGE_SIZE
    ranked: list[dict[str, Any]] = []
    # Past the end there is nothing to read: skipping the query also means that a huge page
    # number never makes the database walk the whole index to skip it.
    if offset < players:
        rows = await rows_of.rows(
            _statement("leaderboard", shape), **_leaderboard_values(channel, page)
        )
        previous = rows.pop(0) if offset and rows else None
        rank = offset + 1
        for index, (user, points, games, wins) in enumerate(rows):
            if index == 0 and previous is not None and previous[1] == points:
                # A tie that began on an earlier page: where did it begin?
                above = _channel_values(channel, points=points)
                rank = 1 + await conn.scalar(_statement("players above", shape), **above)
            elif index > 0 and previous is not None and points != previous[1]:
                rank = offset + index + 1
            ranked.append(
                {"rank": rank, "user": user, "points": points, "games": games, "wins": wins}
            )
            previous = (user, points)
    return {"page": page, "pages": pages, "players": ranked}


# --- the gallery ----------------------------------------------------------------------------


def _finished(turns: sa.Table) -> Any:
    # The predicate of ix_game_turns_channel_id_ended (the planner uses a partial index only
    # when the query implies it). A turn that ended before a word was chosen (its drawer left
    # or was kicked while choosing) has nothing to show.
    return turns.c.ended.isnot(None) & turns.c.word.isnot(None)


def _gallery_values(channel: str, before: int | None, limit: int) -> dict[str, Any]:
    values: dict[str, Any] = {"channel": channel, "limit": limit}
    if before is not None:
        values["before"] = before
    return values


def gallery_query(channel: str, before: int | None, limit: int) -> Any:
    """The channel's last ``limit`` finished turns (with an id below ``before``), newest
    first, each with its number of batches and its ratings. With its values (for plans)."""
    statement = _statement("gallery", before is not None).statement
    return statement.params(_gallery_values(channel, before, limit))


async def gallery_page(
    conn: SAConnection,
    channel: str,
    *,
    before: int | None = None,
    limit: int = GALLERY_DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """``[{"id", "word", "drawer", "ended", "strokes", "likes", "dislikes"}]``, newest first:
    the next page is the one ``before`` the last id."""
    rows = await cast(RowsConnection, conn).rows(
        _statement("gallery", before is not None), **_gallery_values(channel, before, limit)
    )
    return [
        {
            "id": id_,
            "word": word,
            "drawer": drawer,
            "ended": _iso(ended),
            "strokes": strokes,
            "likes": likes,
            "dislikes": dislikes,
        }
        for id_, word, drawer, ended, strokes, likes, dislikes in rows
    ]


def finished_turn_query(channel: str, turn: int) -> sa.sql.Select:
    """The turn ``turn`` of ``channel`` with its drawing, if it is finished (no row
    otherwise: a running turn's drawing is not in its row, and never leaves)."""
    turns = db.game_turns
    return sa.select(
        turns.c.id,
        turns.c.word,
        turns.c.drawer,
        turns.c.ended,
        turns.c.likes,
        turns.c.dislikes,
        turns.c.drawing,
    ).where((turns.c.id == turn) & (turns.c.channel == channel) & _finished(turns))


async def finished_turn(conn: SAConnection, channel: str, turn: int) -> dict[str, Any] | None:
    """``{"id", "word", "drawer", "ended", "likes", "dislikes", "batches": [[op, ...], ...]}``,
    or None when ``channel`` has no finished turn ``turn`` (unknown, still being played, or
    another channel's). The drawing was compacted when the turn ended: one row read."""
    found = await (await conn.execute(finished_turn_query(channel, turn))).first()
    if found is None:
        return None
    return {
        "id": found.id,
        "word": found.word,
        "drawer": found.drawer,
        "ended": _iso(found.ended),
        "likes": found.likes,
        "dislikes": found.dislikes,
        "batches": found.drawing or [],
    }


# --- rebuilding the totals ------------------------------------------------------------------

# A game's winners are the players with its best score, when that score is above 0, players
# the others removed (game_results.kicked) not ranked: the rule of ``rules.Game._finish``,
# which ``store._add_to_leaderboards`` applies as each game ends.
_REBUILD_CHANNEL_TOTALS = sa.text(
    """
    INSERT INTO channel_player_totals (channel, "user", points, games, wins)
    SELECT channel, "user", sum(points), count(*),
           count(*) FILTER (WHERE points = best AND best > 0)
    FROM (
        SELECT games.channel, scores."user", scores.points,
               max(scores.points) OVER (PARTITION BY scores.game) AS best
        FROM scores JOIN games ON games.id = scores.game
        LEFT JOIN game_results ON game_results.game = games.id
        WHERE games.finished IS NOT NULL
            AND scores."user" <> ALL(COALESCE(game_results.kicked, '{}'))
    ) AS played
    GROUP BY channel, "user"
    """
)
_REBUILD_PLAYER_TOTALS = sa.text(
    """
    INSERT INTO player_totals ("user", points, games, wins)
    SELECT "user", sum(points), sum(games), sum(wins)
    FROM channel_player_totals
    GROUP BY "user"
    """
)


async def rebuild_leaderboards(conn: SAConnection) -> tuple[int, int]:
    """Recompute ``player_totals`` and ``channel_player_totals`` from ``scores`` over the
    finished games; ``(players, channel rows)``. Runs in the caller's transaction if there
    is one, else in its own."""
    async with transaction(conn):
        # EXCLUSIVE lets readers in and keeps writers out: a game finishing meanwhile waits
        # at its own upsert until this commits, then adds its game on top of the rebuilt
        # totals, whose reads (later statements) do not see its uncommitted scores. A game
        # that finished before the lock was granted is committed and seen. Either way,
        # counted exactly once.
        await conn.execute(
            sa.text("LOCK TABLE player_totals, channel_player_totals IN EXCLUSIVE MODE")
        )
        await conn.execute(db.channel_player_totals.delete())
        await conn.execute(db.player_totals.delete())
        channel_rows = (await conn.execute(_REBUILD_CHANNEL_TOTALS)).rowcount
        players = (await conn.execute(_REBUILD_PLAYER_TOTALS)).rowcount
    return players, channel_rows
