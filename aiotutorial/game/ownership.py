"""Who owns a game: its lease (``game_state.owner``, ``epoch``, ``lease_until``, on the
database's clock), renewed by its owner, taken over when it runs out, released at shutdown.

Taking a game over raises its epoch: the old owner's next ``store.lock_owned`` (which checks
owner and epoch) finds nothing, so a stale owner writes nothing (``owner`` says why a lease
row and not an advisory lock).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiopg.sa import SAConnection

from ..db import schema as db

__all__ = ["lease_until", "claim_orphan", "renew_leases", "release_leases"]


def lease_until(seconds: float) -> Any:
    """The end of a lease of ``seconds`` from now, on the database's clock (SQL)."""
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
        .values(owner=worker, epoch=gs.c.epoch + 1, lease_until=lease_until(lease_seconds))
        .returning(gs.c.game, gs.c.epoch, gs.c.channel)
    )
    return await result.first()


async def renew_leases(
    conn: SAConnection, worker: str, games: list[int], lease_seconds: float
) -> dict[int, tuple[int, bool]]:
    """Extend this worker's leases; the games it still owns: their epochs, and whether
    commands wait in their inbox (an announcement that never came: the owner looks)."""
    if not games:
        return {}
    gs = db.game_state
    waiting = sa.exists().where(db.game_inbox.c.game == gs.c.game)
    result = await conn.execute(
        gs.update()
        .where((gs.c.owner == worker) & gs.c.game.in_(games))
        .values(lease_until=lease_until(lease_seconds))
        .returning(gs.c.game, gs.c.epoch, waiting.label("waiting"))
    )
    return {row.game: (row.epoch, row.waiting) for row in await result.fetchall()}


async def release_leases(conn: SAConnection, worker: str) -> None:
    """On shutdown: this worker's games may be taken over at once."""
    gs = db.game_state
    await conn.execute(
        gs.update()
        .where(gs.c.owner == worker)
        .values(lease_until=sa.func.clock_timestamp() - sa.text("interval '1 second'"))
    )
