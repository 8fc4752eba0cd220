"""Helpers for the game's functional tests: a table of players (one socket each) and what
they saw, on top of ``ChatClient``/``ChatSocket``.

``GameTable`` follows one game in one channel: it finds the drawer of each turn, has them
choose a word and draw, has guessers guess, and keeps each turn's word so that a test can
check afterwards that no frame a guesser received held the word before the turn ended.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.chatclient import ChatClient, ChatSocket

__all__ = ["GameTable", "Turn", "strings_in", "holds_word", "send_json"]

TIMEOUT = 15.0


async def send_json(sock: ChatSocket, frame: dict[str, Any]) -> None:
    await sock.send_raw(json.dumps(frame))


def strings_in(value: Any) -> Iterable[str]:
    """Every string value inside a decoded JSON frame (keys left out)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def holds_word(frame: dict[str, Any], word: str) -> bool:
    """Does any string in ``frame`` contain ``word`` as a whole word (any case)?"""
    pattern = re.compile(rf"(?<![a-z]){re.escape(word)}(?![a-z])", re.IGNORECASE)
    return any(pattern.search(text) for text in strings_in(frame))


def is_type(kind: str) -> Any:
    return lambda frame: frame["type"] == kind


@dataclass
class Turn:
    number: int
    drawer: str
    word: str = ""
    start_index: dict[str, int] = field(default_factory=dict)  # per user: first frame of it
    end_index: dict[str, int] = field(default_factory=dict)  # per user: its game.turn_end


class GameTable:
    """Players of one channel, by name, each with a socket."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.clients: dict[str, ChatClient] = {}
        self.sockets: dict[str, ChatSocket] = {}
        self.turns: list[Turn] = []

    def seat(self, client: ChatClient, sock: ChatSocket) -> None:
        self.clients[client.username] = client
        self.sockets[client.username] = sock

    @property
    def users(self) -> list[str]:
        return list(self.sockets)

    def any_socket(self) -> ChatSocket:
        return next(iter(self.sockets.values()))

    async def start(self, user: str, **settings: Any) -> None:
        await send_json(self.sockets[user], {"type": "game.start", **settings})

    async def next_turn(self, number: int) -> Turn:
        """Wait until turn ``number`` is being chosen; it and its drawer."""
        sock = self.any_socket()
        state = await sock.wait_for(
            lambda f: (
                f["type"] == "game.state" and f["turn"] == number and f["phase"] == "choosing"
            ),
            TIMEOUT,
        )
        turn = Turn(number, state["drawer"])
        for user, other in self.sockets.items():
            found = await other.wait_for(
                lambda f: f["type"] == "game.state" and f["turn"] == number, TIMEOUT
            )
            turn.start_index[user] = other.frames.index(found)
        self.turns.append(turn)
        return turn

    async def choose(self, turn: Turn, prefer: Iterable[str] = ()) -> str:
        """The drawer picks (a word from ``prefer`` if offered); the word, as the drawer sees."""
        sock = self.sockets[turn.drawer]
        offered = await sock.wait_for(is_type("game.words"), TIMEOUT, turn.start_index[turn.drawer])
        words = offered["words"]
        preferred = set(prefer)
        index = next((i for i, w in enumerate(words) if w in preferred), 0)
        await send_json(sock, {"type": "game.choose", "index": index})
        chosen = await sock.wait_for(is_type("game.word"), TIMEOUT, turn.start_index[turn.drawer])
        turn.word = chosen["word"]
        assert turn.word == words[index], (turn.word, words, index)
        for user, other in self.sockets.items():
            await other.wait_for(
                lambda f: (
                    f["type"] == "game.state"
                    and f["turn"] == turn.number
                    and f["phase"] == "drawing"
                ),
                TIMEOUT,
                turn.start_index[user],
            )
        return turn.word

    async def draw(self, turn: Turn, ops: list[dict[str, Any]]) -> None:
        await send_json(self.sockets[turn.drawer], {"type": "game.draw", "ops": ops})

    async def guess(self, user: str, text: str) -> None:
        await self.sockets[user].send(text)

    async def turn_end(self, turn: Turn) -> dict[str, Any]:
        """Wait for the turn's end on every socket; the frame as the first socket got it."""
        first: dict[str, Any] | None = None
        for user, sock in self.sockets.items():
            frame = await sock.wait_for(
                lambda f: f["type"] == "game.turn_end", TIMEOUT, turn.start_index[user]
            )
            turn.end_index[user] = sock.frames.index(frame)
            first = first or frame
        assert first is not None
        return first

    async def play_to_end(self, first_turn: int, watcher: str) -> dict[str, Any]:
        """Play every turn from ``first_turn`` on, everyone guessing; the game.over frame as
        ``watcher`` got it (its socket looked up each turn: it may have been replaced)."""
        number = first_turn
        while True:
            frame = await self.sockets[watcher].wait_for(
                lambda f, n=number: (
                    (f["type"] == "game.state" and f["turn"] == n) or f["type"] == "game.over"
                ),
                20,
            )
            if frame["type"] == "game.over":
                return frame
            turn = await self.next_turn(number)
            word = await self.choose(turn)
            for user in self.users:
                if user != turn.drawer:
                    await self.guess(user, word)
            await self.turn_end(turn)
            number += 1

    def leaks(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Frames a guesser got, during a turn and before they guessed it or it ended,
        holding the turn's word."""
        found = []
        for turn in self.turns:
            if not turn.word:
                continue
            for user, sock in self.sockets.items():
                if user == turn.drawer:
                    continue
                end = turn.end_index.get(user, len(sock.frames))
                frames = sock.frames[turn.start_index[user] : end]
                for index, frame in enumerate(frames):
                    if _guessed_by(frame, user):
                        frames = frames[:index]  # from here on, they know it
                        break
                for frame in frames:
                    if frame["type"] == "message" and frame["user"] == user:
                        continue  # their own words, as they wrote them
                    if holds_word(frame, turn.word):
                        found.append((turn.number, user, frame))
        return found


def _guessed_by(frame: dict[str, Any], user: str) -> bool:
    """``frame`` tells that ``user`` has guessed the word: their ``game.guessed``, or (on a
    socket opened after they guessed on another) a snapshot that lists them as guessed."""
    if frame["type"] == "game.guessed":
        return bool(frame["user"] == user)
    if frame["type"] == "game.state":
        return any(p["user"] == user and p.get("guessed") for p in frame.get("players", ()))
    return False
