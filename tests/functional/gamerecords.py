"""What the leaderboard and gallery tests share: ``GameRecordsTest`` (the application
in-process, inside a rolled-back transaction, ``AppTest``) with helpers that write players,
channels, totals and finished games in the test's transaction and read the pages as JSON or
HTML, and the parser of a leaderboard page.
"""

from __future__ import annotations

import json
import re
import secrets
from html.parser import HTMLParser
from typing import Any

import sqlalchemy as sa

from aiotutorial import chat
from aiotutorial.db import schema as db
from aiotutorial.game import records, store
from aiotutorial.game.effects import GameFinished

from ..dbtest import AppTest

JSON = {"Accept": "application/json"}
PAGE = records.LEADERBOARD_PAGE_SIZE
CSRF_FIELD = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')


def new_name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


class Page(HTMLParser):
    """What a leaderboard page shows: its table rows (cell texts, marked or not), its
    pagination links by ``rel``, and its alert."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.marked: list[str] = []  # players of the rows marked as the signed-in user's
        self.links: dict[str, str] = {}
        self.alert = ""
        self._cell: list[str] | None = None
        self._in_body = self._in_alert = False
        self._mark = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
            self._mark = "me" in (attributes.get("class") or "").split()
        elif tag in ("td", "th") and self._in_body:
            self._cell = []
        elif tag == "a" and attributes.get("rel"):
            self.links[attributes["rel"] or ""] = attributes.get("href") or ""
        elif tag == "p" and attributes.get("role") == "alert":
            self._in_alert = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            self.rows[-1].append(text)
            if self._mark and len(self.rows[-1]) == 2:
                self.marked.append(text.removesuffix(" (you)"))
            self._cell = None
        elif tag == "p":
            self._in_alert = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_alert:
            self.alert += data


class GameRecordsTest(AppTest):
    """Helpers that write players, channels, totals and games in the test's transaction."""

    async def users(self, count: int, prefix: str = "p") -> list[str]:
        """``count`` new users, in name order (a tie on a leaderboard is ordered by name)."""
        common = new_name(prefix)
        names = [f"{common}-{index:03d}" for index in range(count)]
        await self.conn.execute(db.users.insert().values([{"username": n} for n in names]))
        return names

    async def channel(self) -> str:
        name = new_name("lb-")
        await chat.create_channel(self.conn, name)
        return name

    async def only_our_totals(self) -> None:
        """Empty the totals (until the rollback): the global board shows this test's only."""
        await self.conn.execute(db.channel_player_totals.delete())
        await self.conn.execute(db.player_totals.delete())

    async def finish_game(self, channel: str, points: dict[str, int]) -> int:
        """A finished game with these scores, counted in the totals by ``store``."""
        game = await self.conn.scalar(
            db.games.insert()
            .values(channel=channel, finished=sa.func.now())
            .returning(db.games.c.id)
        )
        await self.conn.execute(
            db.scores.insert().values(
                [{"game": game, "user": u, "points": p} for u, p in points.items()]
            )
        )
        standings = sorted(points.items(), key=lambda item: (-item[1], item[0]))
        best = standings[0][1]
        # The rule of rules.Game._finish: the best score, when above 0, ties included.
        winners = [user for user, score in standings if score == best and best > 0]
        await store._add_to_leaderboards(self.conn, channel, GameFinished(standings, winners))
        return game

    async def get_json(self, path: str, status: int = 200) -> Any:
        response = await self.client.get(path, headers=JSON)
        body = await response.text()
        self.assertEqual(response.status, status, body)
        self.assertEqual(response.content_type, "application/json", body)
        return json.loads(body)

    async def get_page(self, path: str, status: int = 200) -> Page:
        response = await self.client.get(path, headers={"Accept": "text/html"})
        body = await response.text()
        self.assertEqual(response.status, status, body)
        self.assertEqual(response.content_type, "text/html", body)
        return Page(body)
