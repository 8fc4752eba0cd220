"""The gallery over HTTP (docs/protocol.md, "Leaderboards and the gallery"): a channel's
finished turns and each one's drawing, served in-process inside a rolled-back transaction
(``GameRecordsTest``, tests/functional/gamerecords.py), with games and turns written directly.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from aiotutorial.db import schema as db
from aiotutorial.game import records

from .gamerecords import JSON, GameRecordsTest


class GalleryTests(GameRecordsTest):
    """``/channels/{name}/gallery`` and ``.../gallery/{id}``: finished turns only."""

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.drawer, self.guesser = await self.users(2, "g")
        self.name = await self.channel()
        self.game = await self.add_game(self.name, finished=True)

    async def add_game(self, channel: str, *, finished: bool) -> int:
        values = {"channel": channel, "finished": sa.func.now() if finished else None}
        return await self.conn.scalar(db.games.insert().values(**values).returning(db.games.c.id))

    async def add_turn(
        self, game: int, channel: str, word: str | None, *, ended: bool = True, batches: int = 0
    ) -> int:
        turn = await self.conn.scalar(
            db.game_turns.insert()
            .values(
                game=game,
                channel=channel,
                number=1,
                round=1,
                drawer=self.drawer,
                word=word,
                started=sa.func.now(),
                ended=sa.func.now() if ended else None,
            )
            .returning(db.game_turns.c.id)
        )
        # A finished turn's drawing is in its row (one batch per shape, kept when it
        # ended); a running turn's is in game_strokes (stored out of order here, and past 9,
        # where text order would differ).
        batches_of = [
            [{"op": "line", "c": seq % 16, "w": 1, "p": [seq, seq, seq + 1, seq + 1]}]
            for seq in range(1, batches + 1)
        ]
        if ended:
            await self.conn.execute(
                db.game_turns.update().where(db.game_turns.c.id == turn).values(drawing=batches_of)
            )
        for seq in reversed(range(1, batches + 1)) if not ended else ():
            await self.conn.execute(
                db.game_strokes.insert().values(turn=turn, seq=seq, ops=batches_of[seq - 1])
            )
        return turn

    async def test_finished_turns_newest_first_with_their_batch_counts(self) -> None:
        older = await self.add_turn(self.game, self.name, "apple", batches=3)
        await self.add_turn(self.game, self.name, None)  # ended while choosing: no word
        newer = await self.add_turn(self.game, self.name, "river", batches=11)
        elsewhere = await self.channel()
        await self.add_turn(await self.add_game(elsewhere, finished=True), elsewhere, "house")
        running = await self.add_game(self.name, finished=False)
        # Even with its word written early, a turn that has not ended stays hidden.
        await self.add_turn(running, self.name, "secretword", ended=False, batches=2)

        body = await self.get_json(f"/channels/{self.name}/gallery")
        self.assertEqual([t["id"] for t in body["turns"]], [newer, older])
        self.assertEqual([t["word"] for t in body["turns"]], ["river", "apple"])
        self.assertEqual([t["strokes"] for t in body["turns"]], [11, 3])
        self.assertEqual({t["drawer"] for t in body["turns"]}, {self.drawer})
        for turn in body["turns"]:
            self.assertRegex(turn["ended"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
        self.assertNotIn("secretword", json.dumps(body))
        other = (await self.get_json(f"/channels/{elsewhere}/gallery"))["turns"]
        self.assertEqual([t["word"] for t in other], ["house"])

    async def test_paging_with_before_and_limit(self) -> None:
        turns = [await self.add_turn(self.game, self.name, f"word{n}") for n in range(15)]
        newest_first = turns[::-1]
        path = f"/channels/{self.name}/gallery"
        body = await self.get_json(path)
        self.assertEqual(
            [t["id"] for t in body["turns"]], newest_first[: records.GALLERY_DEFAULT_LIMIT]
        )
        seen: list[int] = []
        before = ""
        while True:
            page = (await self.get_json(f"{path}?limit=4{before}"))["turns"]
            if not page:
                break
            self.assertLessEqual(len(page), 4)
            seen += [t["id"] for t in page]
            before = f"&before={page[-1]['id']}"
        self.assertEqual(seen, newest_first)
        page = await self.get_json(f"{path}?before={turns[0]}")
        self.assertEqual(page, {"turns": []})
        page = await self.get_json(f"{path}?limit={records.GALLERY_MAX_LIMIT}")
        self.assertEqual(len(page["turns"]), 15)

    async def test_one_turn_with_its_batches_in_order(self) -> None:
        turn = await self.add_turn(self.game, self.name, "lighthouse", batches=12)
        body = await self.get_json(f"/channels/{self.name}/gallery/{turn}")
        self.assertEqual(
            {key: body[key] for key in ("id", "word", "drawer")},
            {"id": turn, "word": "lighthouse", "drawer": self.drawer},
        )
        self.assertEqual(
            [batch[0]["c"] for batch in body["batches"]], [n % 16 for n in range(1, 13)]
        )
        self.assertEqual(body["batches"][0], [{"op": "line", "c": 1, "w": 1, "p": [1, 1, 2, 2]}])
        self.assertEqual((body["likes"], body["dislikes"]), (0, 0))
        listed = (await self.get_json(f"/channels/{self.name}/gallery"))["turns"][0]
        self.assertEqual(listed["ended"], body["ended"])
        empty = await self.add_turn(self.game, self.name, "blank")
        body = await self.get_json(f"/channels/{self.name}/gallery/{empty}")
        self.assertEqual(body["batches"], [])

    async def test_turns_not_to_be_shown_are_not_found(self) -> None:
        shown = await self.add_turn(self.game, self.name, "apple", batches=1)
        no_word = await self.add_turn(self.game, self.name, None, batches=1)
        running = await self.add_turn(
            await self.add_game(self.name, finished=False),
            self.name,
            "secretword",
            ended=False,
            batches=1,
        )
        elsewhere = await self.channel()
        foreign = await self.add_turn(
            await self.add_game(elsewhere, finished=True), elsewhere, "house", batches=1
        )
        base = f"/channels/{self.name}/gallery"
        await self.get_json(f"{base}/{shown}")  # the control: this one is found
        for segment in (
            running,
            no_word,
            foreign,
            running + 1000,
            "abc",
            "0",
            "-1",
            "99999999999999999999",
            "٣",  # an Arabic-Indic 3: a digit to str.isdigit, not to us
            f"{shown}/extra",
        ):
            with self.subTest(segment=segment):
                body = await self.get_json(f"{base}/{segment}", status=404)
                self.assertEqual(body["error"], "not_found")
                self.assertNotIn("secretword", json.dumps(body))
        response = await self.client.get(f"/channels/{elsewhere}/gallery/{shown}", headers=JSON)
        self.assertEqual(response.status, 404)

    async def test_bad_parameters_and_unknown_channels(self) -> None:
        base = f"/channels/{self.name}/gallery"
        for query in (
            "before=abc",
            "before=-1",
            "limit=0",
            "limit=51",
            "limit=x",
            "limit=1&limit=2",
        ):
            with self.subTest(query=query):
                body = await self.get_json(f"{base}?{query}", status=400)
                self.assertEqual(body["error"], "bad_parameter")
        self.assertEqual(await self.get_json(base), {"turns": []})
        for path in ("/channels/no-such-channel/gallery", "/channels/no-such-channel/gallery/1"):
            with self.subTest(path=path):
                response = await self.client.get(path, headers=JSON)
                self.assertEqual(response.status, 404)
