"""The rules of draw-and-guess as a pure state machine: no I/O, no clock, no randomness of its own.

Every input is a method call with ``now`` (seconds on the database's clock, so that any process
that takes the game over goes on from the same deadlines) and, where chance is involved, a
``random.Random``. Every output is a list of effects: frames to send (to everyone in the
channel, some users, or one socket), chat messages to post, score totals to store, turns begun
and ended, the game finished. The owner (``owner.py``) applies the effects in the transaction
that stores the new state; the rules never see a socket or a table.

The state is plain JSON (``to_dict``/``from_dict``), stored whole after every change.
Invariants kept here:
- the secret word appears only in effects addressed to the drawer, and in ``turn_end``/``over``
  frames once the turn has ended; guessers get its mask and hints;
- a player's score changes only through ``ScoreSet`` effects carrying the new total, emitted in
  the same step as the frame that announces the change;
- a correct guess is never posted as a chat message.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ..realtime import ProtocolError

__all__ = [
    "CHOOSING",
    "DRAWING",
    "TURN_END",
    "FINISHED",
    "ROUNDS",
    "DRAW_SECONDS",
    "MAX_PLAYERS",
    "MIN_PLAYERS",
    "GameError",
    "Timing",
    "Send",
    "Post",
    "ScoreSet",
    "TurnBegan",
    "TurnEnded",
    "GameFinished",
    "Game",
    "normalize",
    "is_close",
    "mask_of",
    "hint_count",
    "guess_points",
    "validate_settings",
    "builtin_words",
]

CHOOSING = "choosing"
DRAWING = "drawing"
TURN_END = "turn_end"
FINISHED = "finished"

ROUNDS = (1, 10, 3)  # lowest, highest, default
DRAW_SECONDS = (30, 240, 80)
CUSTOM_WORDS_MAX = 200
WORD_MAX_CHARS = 30
WORD_CHOICES = 3
MIN_PLAYERS = 2
# Scores are the tutorial's SMALLINT: 12 players x 10 rounds x at most 230 points a turn
# stays under 32,767. Whoever connects past 12 watches and chats.
MAX_PLAYERS = 12
BASE_POINTS = 100
SPEED_POINTS = 100
HINT_POINTS = 10

# Error codes of refused game frames (docs/protocol.md).
NOT_DRAWER = "not_drawer"
NO_GAME = "no_game"
GAME_RUNNING = "game_running"
NOT_ENOUGH_PLAYERS = "not_enough_players"
BAD_SETTINGS = "bad_settings"
BAD_STROKE = "bad_stroke"
NOT_CHOOSING = "not_choosing"
BAD_CHOICE = "bad_choice"
NOT_PLAYER = "not_player"
BAD_KICK = "bad_kick"
WORD_IN_CHAT = "word_in_chat"


class GameError(ProtocolError):
    """A game frame the rules refuse: an error frame to its sender."""


@dataclass(frozen=True)
class Timing:
    """Seconds the rules wait; from the server's settings, kept with each game."""

    choose: float = 15.0
    reveal: float = 5.0
    drawer_gone: float = 10.0
    player_gone: float = 60.0
    alone: float = 60.0


# --- effects ------------------------------------------------------------------------------


@dataclass
class Send:
    """A frame to the channel: everyone, ``users``, or the socket ``member``."""

    frame: dict[str, Any]
    users: list[str] | None = None
    member: str | None = None


@dataclass
class Post:
    """A chat message to store and deliver; with ``readers``, only they read it until the
    turn ends (``TurnEnded`` releases it)."""

    user: str
    content: str
    readers: list[str] | None = None
    # The client's ref of the chat frame it answers (set by the owner, not the rules).
    ref: str | None = None


@dataclass
class ScoreSet:
    """``user``'s running total for the game is now ``total``."""

    user: str
    total: int


@dataclass
class TurnBegan:
    number: int
    round: int
    drawer: str


@dataclass
class TurnEnded:
    word: str | None
    # False for a kicked drawer's turn: its drawing is not kept for the gallery.
    shown: bool = True


@dataclass
class GameFinished:
    standings: list[tuple[str, int]]  # best first
    winners: list[str]


Effect = Send | Post | ScoreSet | TurnBegan | TurnEnded | GameFinished


# The tutorial's scores.points is a SMALLINT. MAX_PLAYERS keeps a game far below it; players
# coming and going could make a round longer than one turn each, hence the cap.
SCORE_MAX = 32767


def _capped(total: int) -> int:
    return min(SCORE_MAX, total)


# --- words ----------------------------------------------------------------------------------


_builtin: list[str] | None = None


def builtin_words() -> list[str]:
    """The shipped list of common English nouns (``words.txt``)."""
    global _builtin
    if _builtin is None:
        text = resources.files(__package__).joinpath("words.txt").read_text(encoding="utf-8")
        _builtin = [
            line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
        ]
    return _builtin


def normalize(text: str) -> str:
    """What a guess is compared by: case, accents and surrounding or repeated spaces ignored."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


def is_close(guess: str, word: str) -> bool:
    """One letter added, missing or changed, or two neighbours swapped (normalized input)."""
    if guess == word or abs(len(guess) - len(word)) > 1:
        return False
    if len(guess) == len(word):
        diffs = [i for i, (a, b) in enumerate(zip(guess, word, strict=True)) if a != b]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and guess[diffs[0]] == word[diffs[1]]
            and guess[diffs[1]] == word[diffs[0]]
        )
    shorter, longer = (guess, word) if len(guess) < len(word) else (word, guess)
    for i in range(len(longer)):
        if longer[:i] + longer[i + 1 :] == shorter:
            return True
    return False


def _letter_positions(word: str) -> list[int]:
    return [i for i, ch in enumerate(word) if ch not in " -"]


def hint_count(word: str) -> int:
    """Letters revealed over a turn: none for 1-2 letters, 1 up to 4, 2 up to 9, 3 beyond."""
    letters = len(_letter_positions(word))
    if letters <= 2:
        return 0
    if letters <= 4:
        return 1
    if letters <= 9:
        return 2
    return 3


def mask_of(word: str, revealed: list[int] | tuple[int, ...] = ()) -> str:
    """The word as guessers see it: one character per character of the word (``_`` for a
    hidden letter; spaces, hyphens and revealed letters as they are), joined by spaces, so
    that ``mask[2 * i]`` is the word's i-th character: ``"_ p _ _ _"``."""
    shown = set(revealed)
    return " ".join(ch if ch in " -" or i in shown else "_" for i, ch in enumerate(word))


def guess_points(seconds_left: float, draw_seconds: float, hints_left: int) -> int:
    """100, plus up to 100 for speed (decaying over the turn), plus 10 per hint not shown."""
    speed = max(0.0, min(1.0, seconds_left / draw_seconds))
    return BASE_POINTS + round(SPEED_POINTS * speed) + HINT_POINTS * max(0, hints_left)


def _clean_word(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    word = " ".join(raw.split()).lower()
    if not 1 <= len(word) <= WORD_MAX_CHARS:
        return None
    if not all(ch.isalpha() or ch in " -" for ch in word) or not any(ch.isalpha() for ch in word):
        return None
    return word


def validate_settings(frame: dict[str, Any]) -> tuple[int, int, list[str]]:
    """``(rounds, draw_seconds, custom_words)`` from a ``game.start`` frame, or GameError."""

    def number(key: str, bounds: tuple[int, int, int]) -> int:
        low, high, default = bounds
        value = frame.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise GameError(BAD_SETTINGS, f"{key} is a whole number from {low} to {high}.")
        return value

    rounds = number("rounds", ROUNDS)
    draw_seconds = number("draw_seconds", DRAW_SECONDS)
    raw_words = frame.get("custom_words") or []
    if not isinstance(raw_words, list) or len(raw_words) > CUSTOM_WORDS_MAX:
        raise GameError(BAD_SETTINGS, f"custom_words is a list of at most {CUSTOM_WORDS_MAX}.")
    words: list[str] = []
    for raw in raw_words:
        word = _clean_word(raw)
        if word is None:
            raise GameError(
                BAD_SETTINGS,
                f"Each custom word has 1 to {WORD_MAX_CHARS} letters, spaces or hyphens.",
            )
        if word not in words:
            words.append(word)
    return rounds, draw_seconds, words


# --- the game -------------------------------------------------------------------------------


@dataclass
class Game:
    """One game's whole state. Construct with ``Game.start``; restore with ``from_dict``."""

    game: int
    channel: str
    rounds: int
    draw_seconds: int
    custom_words: list[str]
    timing: Timing
    order: list[str] = field(default_factory=list)  # play order of the players in the game
    scores: dict[str, int] = field(default_factory=dict)  # everyone who ever played
    connected: dict[str, bool] = field(default_factory=dict)
    gone_since: dict[str, float] = field(default_factory=dict)
    kicked: list[str] = field(default_factory=list)
    phase: str = CHOOSING
    round: int = 1
    turn: int = 0
    drawer: str | None = None
    drawn: list[str] = field(default_factory=list)  # who has drawn (or was skipped) this round
    choices: list[str] = field(default_factory=list)
    word: str | None = None
    phase_started: float = 0.0
    deadline: float = 0.0
    hints: int = 0
    revealed: list[int] = field(default_factory=list)
    guessed: dict[str, int] = field(default_factory=dict)  # this turn: user -> points, in order
    turn_points: dict[str, int] = field(default_factory=dict)  # of the last ended turn
    votes: dict[str, list[str]] = field(default_factory=dict)
    alone_since: float | None = None
    used_words: list[str] = field(default_factory=list)

    # --- persistence ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["timing"] = dict(self.timing.__dict__)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Game:
        values = dict(data)
        values["timing"] = Timing(**values["timing"])
        return cls(**values)

    # --- starting ---------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        game: int,
        channel: str,
        starter: str,
        online: list[str],
        settings: tuple[int, int, list[str]],
        timing: Timing,
        now: float,
        rng: random.Random,
    ) -> tuple[Game, list[Effect]]:
        """A new game with everyone online (the starter first), and its first turn."""
        rounds, draw_seconds, custom_words = settings
        players = [starter] + [user for user in online if user != starter]
        players = players[:MAX_PLAYERS]
        if starter not in online or len(players) < MIN_PLAYERS:
            raise GameError(
                NOT_ENOUGH_PLAYERS, f"A game needs at least {MIN_PLAYERS} players connected."
            )
        state = cls(game, channel, rounds, draw_seconds, list(custom_words), timing)
        effects: list[Effect] = []
        for user in players:
            state.order.append(user)
            state.scores[user] = 0
            state.connected[user] = True
            effects.append(ScoreSet(user, 0))
        effects += state._next_turn(now, rng)
        return state, effects

    # --- views ------------------------------------------------------------------------------

    def players(self) -> list[dict[str, Any]]:
        return [
            {
                "user": user,
                "score": self.scores.get(user, 0),
                "guessed": user in self.guessed,
                "connected": self.connected.get(user, False),
            }
            for user in self.order
        ]

    def mask(self) -> str | None:
        return mask_of(self.word, self.revealed) if self.word is not None else None

    def view(
        self,
        user: str | None,
        now: float,
        *,
        strokes: list[Any] | None = None,
        seq: int = 0,
    ) -> dict[str, Any]:
        """The ``game.state`` frame as ``user`` may see it (None: anyone but the drawer)."""
        frame: dict[str, Any] = {
            "type": "game.state",
            "game": self.game,
            "phase": self.phase,
            "round": self.round,
            "rounds": self.rounds,
            "turn": self.turn,
            "drawer": self.drawer,
            "draw_seconds": self.draw_seconds,
            "players": self.players(),
            "mask": self.mask() if self.phase == DRAWING else None,
            "ms_left": max(0, int((self.deadline - now) * 1000)) if self.phase != FINISHED else 0,
        }
        if strokes is not None:
            frame["strokes"] = strokes
            frame["seq"] = seq
        if self.phase in (TURN_END, FINISHED):
            frame["word"] = self.word
            frame["points"] = dict(self.turn_points)
        elif user is not None and user == self.drawer:
            if self.phase == CHOOSING:
                frame["words"] = list(self.choices)
            else:
                frame["word"] = self.word
        if self.phase == FINISHED:
            frame["scores"] = self.standings_frame()
        return frame

    def standings(self) -> list[tuple[str, int]]:
        return sorted(self.scores.items(), key=lambda item: (-item[1], item[0]))

    def standings_frame(self) -> list[dict[str, Any]]:
        return [{"user": user, "points": points} for user, points in self.standings()]

    def _state_to_all(self, now: float) -> Send:
        return Send(self.view(None, now))

    def _players_frame(self) -> Send:
        return Send({"type": "game.players", "players": self.players()})

    # --- turns ------------------------------------------------------------------------------

    def _connected_players(self) -> list[str]:
        return [user for user in self.order if self.connected.get(user)]

    def _guessers(self) -> list[str]:
        """Connected players who are not drawing."""
        return [user for user in self._connected_players() if user != self.drawer]

    def _pick_words(self, rng: random.Random) -> list[str]:
        """Three distinct words not used in this game yet, each from the custom words or the
        built-in list with even odds (while custom words are left)."""
        builtin = [w for w in builtin_words() if w not in self.used_words]
        custom = [w for w in self.custom_words if w not in self.used_words and w not in builtin]
        if len(builtin) + len(custom) < WORD_CHOICES:
            builtin = list(builtin_words())  # every word has been used: start over
            custom = [w for w in self.custom_words if w not in builtin]
        picked: list[str] = []
        while len(picked) < WORD_CHOICES:
            pool = custom if custom and (not builtin or rng.random() < 0.5) else builtin
            word = rng.choice(pool)
            pool.remove(word)
            picked.append(word)
        return picked

    def _next_turn(self, now: float, rng: random.Random) -> list[Effect]:
        """The next drawer in play order (skipping who is not connected), or the next round,
        or the end of the game."""
        self.guessed = {}
        self.revealed = []
        self.word = None
        self.choices = []
        self.hints = 0
        drawer = None
        while drawer is None:
            for user in self.order:
                if user in self.drawn:
                    continue
                self.drawn.append(user)  # drawing now, or skipped for being away
                if self.connected.get(user):
                    drawer = user
                    break
            else:
                if not self._connected_players() or self.round >= self.rounds:
                    return self._finish(now)
                self.round += 1
                self.drawn = []
        self.turn += 1
        self.drawer = drawer
        self.phase = CHOOSING
        self.phase_started = now
        self.deadline = now + self.timing.choose
        self.choices = self._pick_words(rng)
        return [
            TurnBegan(self.turn, self.round, drawer),
            self._state_to_all(now),
            Send({"type": "game.words", "words": list(self.choices)}, users=[drawer]),
        ]

    def _begin_drawing(self, word: str, now: float) -> list[Effect]:
        self.phase = DRAWING
        self.word = word
        self.choices = []
        self.used_words.append(word)
        self.phase_started = now
        self.deadline = now + self.draw_seconds
        self.hints = hint_count(word)
        assert self.drawer is not None
        return [
            self._state_to_all(now),
            Send({"type": "game.word", "word": word}, users=[self.drawer]),
        ]

    def _hint_time(self, k: int) -> float:
        """When the (k+1)-th hint is due: hints are spread evenly over the turn."""
        return self.phase_started + self.draw_seconds * (k + 1) / (self.hints + 1)

    def _end_turn(self, now: float, *, kicked_drawer: bool = False) -> list[Effect]:
        effects: list[Effect] = []
        points: dict[str, int] = {}
        if kicked_drawer:
            # No points for anyone: what guessers earned this turn is taken back.
            for user, earned in self.guessed.items():
                self.scores[user] = max(0, self.scores[user] - earned)
                effects.append(ScoreSet(user, self.scores[user]))
                points[user] = 0
        else:
            points.update(self.guessed)
            if self.drawer is not None and self.word is not None:
                # Everyone who could have guessed counts, those who did not with 0; who guessed
                # counts even if removed since (their points are in the sum).
                eligible = set(self.guessed).union(self._guessers())
                earned = round(sum(self.guessed.values()) / len(eligible)) if eligible else 0
                if self.drawer in self.scores:
                    self.scores[self.drawer] = _capped(self.scores[self.drawer] + earned)
                    effects.append(ScoreSet(self.drawer, self.scores[self.drawer]))
                points[self.drawer] = earned
        self.turn_points = points
        self.phase = TURN_END
        self.phase_started = now
        self.deadline = now + self.timing.reveal
        effects.append(TurnEnded(self.word, shown=not kicked_drawer))
        effects.append(
            Send(
                {
                    "type": "game.turn_end",
                    "word": self.word,
                    "drawer": self.drawer,
                    "points": points,
                    "players": self.players(),
                }
            )
        )
        effects.append(self._state_to_all(now))
        return effects

    def _finish(self, now: float) -> list[Effect]:
        self.phase = FINISHED
        self.phase_started = now
        self.deadline = now
        standings = self.standings()
        best = standings[0][1] if standings else 0
        winners = [user for user, points in standings if points == best and best > 0]
        return [
            GameFinished(standings, winners),
            Send({"type": "game.over", "game": self.game, "scores": self.standings_frame()}),
            self._state_to_all(now),
        ]

    # --- inputs -----------------------------------------------------------------------------

    def choose(self, user: str, index: Any, now: float) -> list[Effect]:
        if self.phase != CHOOSING:
            raise GameError(NOT_CHOOSING, "There is no word to choose right now.")
        if user != self.drawer:
            raise GameError(NOT_DRAWER, "Only the drawer chooses the word.")
        if isinstance(index, bool) or not isinstance(index, int):
            raise GameError(BAD_CHOICE, "index is the number of one of the words offered.")
        if not 0 <= index < len(self.choices):
            raise GameError(BAD_CHOICE, f"index is from 0 to {len(self.choices) - 1}.")
        return self._begin_drawing(self.choices[index], now)

    def message(self, user: str, member: str, content: str, now: float) -> list[Effect]:
        """A chat message sent during the game: a guess, or a message some may not read."""
        if self.phase != DRAWING or self.word is None:
            return [Post(user, content)]
        said = normalize(content)
        word = normalize(self.word)
        knows = [self.drawer] + list(self.guessed) if self.drawer else list(self.guessed)
        if user in knows:
            if word in said:
                raise GameError(WORD_IN_CHAT, "You cannot give the word away in the chat.")
            return [Post(user, content, readers=[*knows, user])]
        if said == word and user in self.order:
            return self._guessed(user, now)
        if word in said:
            # It holds the word (a lucky guess in a sentence, or a non-player): only those who
            # know the word, and its sender, read it until the turn ends.
            restricted: list[Effect] = [Post(user, content, readers=[*knows, user])]
            if user in self.order and is_close(said, word):
                restricted.append(Send({"type": "game.close"}, member=member))
            return restricted
        effects: list[Effect] = [Post(user, content)]
        if user in self.order and is_close(said, word):
            effects.append(Send({"type": "game.close"}, member=member))
        return effects

    def _guessed(self, user: str, now: float) -> list[Effect]:
        earned = guess_points(
            self.deadline - now, self.draw_seconds, self.hints - len(self.revealed)
        )
        self.guessed[user] = earned
        self.scores[user] = _capped(self.scores.get(user, 0) + earned)
        effects: list[Effect] = [
            ScoreSet(user, self.scores[user]),
            Send(
                {
                    "type": "game.guessed",
                    "user": user,
                    "points": earned,
                    "score": self.scores[user],
                }
            ),
        ]
        if self._everyone_guessed():
            effects += self._end_turn(now)
        return effects

    def _everyone_guessed(self) -> bool:
        """Drawing, someone has guessed, and every connected guesser has."""
        return (
            self.phase == DRAWING
            and bool(self.guessed)
            and all(guesser in self.guessed for guesser in self._guessers())
        )

    def kick(self, voter: str, target: Any, now: float) -> list[Effect]:
        if voter not in self.order or not self.connected.get(voter):
            raise GameError(NOT_PLAYER, "Only players of this game vote.")
        if not isinstance(target, str) or target not in self.order:
            raise GameError(BAD_KICK, "user is a player of this game.")
        if target == voter:
            raise GameError(BAD_KICK, "You cannot vote to remove yourself.")
        voters = self.votes.setdefault(target, [])
        if voter not in voters:
            voters.append(voter)
        connected = self._connected_players()
        counted = [v for v in voters if v in connected]
        needed = max(2, len(connected) // 2 + 1)
        if len(counted) < needed:
            return [
                Send(
                    {
                        "type": "game.kick_vote",
                        "user": target,
                        "votes": len(counted),
                        "needed": needed,
                    }
                )
            ]
        return self._remove(target, now, kicked=True)

    def _remove(self, user: str, now: float, *, kicked: bool) -> list[Effect]:
        """Take ``user`` out of the play order (their points stay theirs)."""
        self.order.remove(user)
        self.connected.pop(user, None)
        self.gone_since.pop(user, None)
        self.votes.pop(user, None)
        effects: list[Effect] = []
        if kicked:
            self.kicked.append(user)
            effects.append(Send({"type": "game.kicked", "user": user}))
        if user == self.drawer and self.phase in (CHOOSING, DRAWING):
            effects += self._end_turn(now, kicked_drawer=kicked)
        elif self._everyone_guessed():
            effects += self._end_turn(now)
        effects.append(self._players_frame())
        self._update_alone(now)
        return effects

    def presence(self, online: list[str], now: float) -> list[Effect]:
        """Who has a socket on the channel now: late joiners join, leavers are marked gone."""
        effects: list[Effect] = []
        online_set = set(online)
        changed = False
        for user in online:
            if user in self.order or user in self.kicked or len(self.order) >= MAX_PLAYERS:
                continue
            self.order.append(user)
            self.connected[user] = True
            changed = True
            if user not in self.scores:
                self.scores[user] = 0
                effects.append(ScoreSet(user, 0))
        for user in self.order:
            here = user in online_set
            if here != self.connected.get(user, False):
                changed = True
                self.connected[user] = here
                if here:
                    self.gone_since.pop(user, None)
                else:
                    self.gone_since[user] = now
        self._update_alone(now)
        if changed:
            effects.append(self._players_frame())
            if self._everyone_guessed():
                effects += self._end_turn(now)
        return effects

    def _update_alone(self, now: float) -> None:
        if len(self._connected_players()) < MIN_PLAYERS:
            if self.alone_since is None:
                self.alone_since = now
        else:
            self.alone_since = None

    # --- time -------------------------------------------------------------------------------

    def tick(self, now: float, rng: random.Random) -> list[Effect]:
        """Everything due at ``now``, in order (a turn may end and the next begin)."""
        effects: list[Effect] = []
        for _ in range(100):  # each step changes the phase or a deadline; bounded regardless
            step = self._due(now, rng)
            if not step:
                break
            effects += step
        return effects

    def _due(self, now: float, rng: random.Random) -> list[Effect]:
        if self.phase == FINISHED:
            return []
        for user, since in list(self.gone_since.items()):
            if now >= since + self.timing.player_gone and user != self.drawer:
                return self._remove(user, now, kicked=False)
        if self.alone_since is not None and now >= self.alone_since + self.timing.alone:
            # A turn cut short ends first: its word and points are released like any other's.
            ended = self._end_turn(now) if self.phase in (CHOOSING, DRAWING) else []
            return ended + self._finish(now)
        drawer_gone = self.drawer is not None and self.drawer in self.gone_since
        drawer_gone_due = (
            drawer_gone and now >= self.gone_since[self.drawer] + self.timing.drawer_gone  # type: ignore[index]
        )
        if self.phase == CHOOSING:
            if drawer_gone_due:
                return self._end_turn(now)
            if now >= self.deadline:
                return self._begin_drawing(rng.choice(self.choices), now)
        elif self.phase == DRAWING:
            if drawer_gone_due or now >= self.deadline:
                return self._end_turn(now)
            if len(self.revealed) < self.hints and now >= self._hint_time(len(self.revealed)):
                assert self.word is not None
                hidden = [i for i in _letter_positions(self.word) if i not in self.revealed]
                self.revealed.append(rng.choice(hidden))
                return [Send({"type": "game.hint", "mask": self.mask()})]
        elif self.phase == TURN_END and now >= self.deadline:
            return self._next_turn(now, rng)
        return []

    def next_wakeup(self) -> float | None:
        """When ``tick`` must run next (None: nothing is due until something happens)."""
        if self.phase == FINISHED:
            return None
        times = [self.deadline]
        # The drawer is removed for being away only once the turn is over (``_due``).
        times += [
            since + self.timing.player_gone
            for user, since in self.gone_since.items()
            if user != self.drawer
        ]
        if self.alone_since is not None:
            times.append(self.alone_since + self.timing.alone)
        if self.phase in (CHOOSING, DRAWING) and self.drawer in self.gone_since:
            times.append(self.gone_since[self.drawer] + self.timing.drawer_gone)
        if self.phase == DRAWING and len(self.revealed) < self.hints:
            times.append(self._hint_time(len(self.revealed)))
        return min(times)
