"""The rows the load needs in the measurement's database: users, channels, and games whose
turn is being drawn.

The database is a ``harness.cluster.ThrowawayCluster`` of the measurement's own, migrated to
head: pgcluster's settings (the embedded cluster's: fsync and synchronous_commit on), so the
limits measured are those of the database the app is run on here; ``var/pg`` is never touched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg2

__all__ = ["Fixture", "make_fixture"]


@dataclass
class Fixture:
    """Names the load uses: ``channels`` for chat, ``games`` as (channel, drawer), ``rooms``
    for presence (500 channels of 20 users: 10,000 sockets)."""

    users: list[str]
    channels: list[str]
    games: list[tuple[str, str]]
    rooms: list[str]


def make_fixture(
    url: str, *, channels: int = 64, games: int = 128, rooms: int = 500, users: int = 1000
) -> Fixture:
    """Users, channels, and ``games`` games each in its own channel with its turn being drawn
    by its own user (the state the strokes statement updates), inserted directly."""
    names = [f"bench{n:05d}" for n in range(max(channels, games, users))]
    chat_channels = [f"chat{n:04d}" for n in range(channels)]
    game_channels = [f"game{n:04d}" for n in range(games)]
    room_channels = [f"room{n:04d}" for n in range(rooms)]
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO users (username, phash) VALUES (%s, 'x') ON CONFLICT DO NOTHING",
                [(user,) for user in names],
            )
            cursor.executemany(
                "INSERT INTO chats (channel) VALUES (%s) ON CONFLICT DO NOTHING",
                [(channel,) for channel in chat_channels + game_channels + room_channels],
            )
            for channel, drawer in zip(game_channels, names, strict=False):
                cursor.execute("INSERT INTO games (channel) VALUES (%s) RETURNING id", (channel,))
                game = cursor.fetchone()[0]
                cursor.execute(
                    "INSERT INTO game_turns (game, channel, number, round, drawer, started) "
                    "VALUES (%s, %s, 1, 1, %s, now()) RETURNING id",
                    (game, channel, drawer),
                )
                turn = cursor.fetchone()[0]
                cursor.execute(
                    "INSERT INTO game_state (game, channel, owner, epoch, lease_until, phase, "
                    "drawer, turn, version, players, state) VALUES "
                    "(%s, %s, 'scaling', 1, now() + interval '1 day', 'drawing', %s, %s, 0, 2, "
                    "%s)",
                    (game, channel, drawer, turn, json.dumps({"bench": True})),
                )
    finally:
        connection.close()
    games_drawn = list(zip(game_channels, names, strict=False))
    return Fixture(names, chat_channels, games_drawn, room_channels)
