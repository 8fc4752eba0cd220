"""The rules of draw-and-guess as a pure state machine: no I/O, no clock, no randomness of its own.

Every input is a method call with ``now`` (seconds on the database's clock, so that any process
that takes the game over goes on from the same deadlines) and, where chance is involved, a
``random.Random``. Every output is a list of effects: frames to send (to everyone in the
channel, some users, or one socket), chat messages to post, score totals to store, turns begun,
ended and rated, the game finished. The owner (``owner.py``) applies the effects in the
transaction that stores the new state; the rules never see a socket or a table.

The state is plain JSON (``to_dict``/``from_dict``), stored whole after every change.
Invariants kept here:
- the secret word appears only in effects addressed to the drawer or to someone who has
  guessed it, and in ``turn_end``/``over`` frames once the turn has ended; the others get its
  mask and hints;
- whatever someone who has not guessed says while the word is drawn, how it is treated tells
  them nothing of the word but whether the message *is* a correct guess (``message``);
- a player's score changes only through ``ScoreSet`` effects carrying the new total, emitted in
  the same step as the frame that announces the change;
- a correct guess is never posted as a chat message.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .effects import Effect, GameFinished, Post, ScoreSet, Send, TurnBegan, TurnEnded, TurnRated
from .errors import (
    BAD_CHOICE,
    BAD_KICK,
    BAD_RATING,
    NOT_CHOOSING,
    NOT_DRAWER,
    NOT_ENOUGH_PLAYERS,
    NOT_PLAYER,
    TOO_MANY_GUESSES,
    WORD_IN_CHAT,
    GameError,
)
from .scoring import capped, drawer_points, guess_points
from .settings import MIN_PLAYERS, Settings
from .words import (
    builtin_words,
    guess_sized,
    hint_count,
    holds,
    is_close_guess,
    is_guess,
    letter_positions,
    mask_of,
)

__all__ = [
    "Phase",
    "CHOOSING",
    "DRAWING",
    "TURN_END",
    "FINISHED",
    "TurnEnd",
    "GUESS_BURST",
    "GUESS_EVERY",
    "GUESS_MAX",
    "KICK_VOTE_SECONDS",
    "Timing",
    "Game",
]


class Phase(StrEnum):
    CHOOSING = "choosing"
    DRAWING = "drawing"
    TURN_END = "turn_end"
    FINISHED = "finished"


CHOOSING = Phase.CHOOSING
DRAWING = Phase.DRAWING
TURN_END = Phase.TURN_END
FINISHED = Phase.FINISHED


class TurnEnd(StrEnum):
    """Why a turn ended (``game.turn_end``'s ``reason``)."""

    GUESSED = "guessed"  # every connected guesser has guessed
    TIME_UP = "time_up"
    DRAWER_LEFT = "drawer_left"  # away too long, or sat out
    DRAWER_KICKED = "drawer_kicked"
    ALONE = "alone"  # fewer than two players for too long: the game ends


# Guesses a player may make in one turn, over every socket, worker and server (the owner
# counts them): a burst, then one every few seconds, and a ceiling. With at most two
# candidates a message (words.GUESS_EXTRA_WORDS), trying the word list is no use.
GUESS_BURST = 4
GUESS_EVERY = 3.0
GUESS_MAX = 24
# A vote to remove a player counts this long.
KICK_VOTE_SECONDS = 60.0


@dataclass(frozen=True)
class Timing:
    """Seconds the rules wait; from the server's settings, kept with each game."""

    choose: float = 15.0
    reveal: float = 5.0
    drawer_gone: float = 10.0
    player_gone: float = 60.0
    alone: float = 60.0


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
    custom_only: bool = False
    max_players: int = 12
    word_choices: int = 3
    hints_setting: int | None = None
    language: str = "en"
    starter: str = ""
    order: list[str] = field(default_factory=list)  # play order of the players in the game
    scores: dict[str, int] = field(default_factory=dict)  # everyone who ever played
    connected: dict[str, bool] = field(default_factory=dict)
    gone_since: dict[str, float] = field(default_factory=dict)
    kicked: list[str] = field(default_factory=list)
    spectators: list[str] = field(default_factory=list)  # sitting out by choice
    online: list[str] = field(default_factory=list)  # everyone signed in on the channel
    phase: Phase = CHOOSING
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
    watchers_guessed: list[str] = field(default_factory=list)  # this turn, without points
    guesses: dict[str, list[float]] = field(default_factory=dict)  # user -> [left, at, made]
    turn_points: dict[str, int] = field(default_factory=dict)  # of the last ended turn
    end_reason: str | None = None  # of the last ended turn
    votes: dict[str, dict[str, float]] = field(default_factory=dict)  # target -> voter -> at
    ratings: dict[str, bool] = field(default_factory=dict)  # this turn: user -> liked
    alone_since: float | None = None
    used_words: list[str] = field(default_factory=list)
    winners: list[str] = field(default_factory=list)

    # --- persistence ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["timing"] = dict(self.timing.__dict__)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Game:
        values = dict(data)
        values["timing"] = Timing(**values["timing"])
        values["phase"] = Phase(values["phase"])
        votes = values.get("votes") or {}
        # States stored before votes had times held lists of voters: those votes have run out.
        values["votes"] = {t: v if isinstance(v, dict) else {} for t, v in votes.items()}
        return cls(**values)

    # --- starting ---------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        game: int,
        channel: str,
        starter: str,
        online: list[str],
        settings: Settings,
        timing: Timing,
        now: float,
        rng: random.Random,
    ) -> tuple[Game, list[Effect]]:
        """A new game with everyone online (the starter first), and its first turn."""
        players = [starter] + [user for user in online if user != starter]
        players = players[: settings.max_players]
        if starter not in online or len(players) < MIN_PLAYERS:
            raise GameError(
                NOT_ENOUGH_PLAYERS, f"A game needs at least {MIN_PLAYERS} players connected."
            )
        state = cls(
            game,
            channel,
            settings.rounds,
            settings.draw_seconds,
            list(settings.custom_words),
            timing,
            custom_only=settings.custom_only,
            max_players=settings.max_players,
            word_choices=settings.word_choices,
            hints_setting=settings.hints,
            language=settings.language,
            starter=starter,
            online=sorted(set(online)),
        )
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

    def knows_word(self, user: str | None) -> bool:
        """Whether ``user`` may read the word now: the drawer, and who has guessed it."""
        return user is not None and (
            user == self.drawer or user in self.guessed or user in self.watchers_guessed
        )

    def view(
        self,
        user: str | None,
        now: float,
        *,
        strokes: list[Any] | None = None,
        seq: int = 0,
    ) -> dict[str, Any]:
        """The ``game.state`` frame as ``user`` may see it (None: anyone who does not know
        the word)."""
        frame: dict[str, Any] = {
            "type": "game.state",
            "game": self.game,
            "phase": str(self.phase),
            "round": self.round,
            "rounds": self.rounds,
            "turn": self.turn,
            "drawer": self.drawer,
            "draw_seconds": self.draw_seconds,
            "starter": self.starter,
            "max_players": self.max_players,
            "players": self.players(),
            "spectators": list(self.spectators),
            "mask": self.mask() if self.phase == DRAWING else None,
            "ms_left": max(0, int((self.deadline - now) * 1000)) if self.phase != FINISHED else 0,
        }
        if strokes is not None:
            frame["strokes"] = strokes
            frame["seq"] = seq
        if self.phase in (DRAWING, TURN_END):
            frame["rating"] = self._rating()
            if user is not None and user in self.ratings:
                frame["rated"] = "like" if self.ratings[user] else "dislike"
        away = self._drawer_away_ms(now)
        if away is not None:
            frame["drawer_away_ms"] = away
        if self.phase in (TURN_END, FINISHED):
            frame["word"] = self.word
            frame["points"] = dict(self.turn_points)
            frame["reason"] = self.end_reason
        elif user is not None and user == self.drawer and self.phase == CHOOSING:
            frame["words"] = list(self.choices)
        elif self.phase == DRAWING and self.knows_word(user):
            frame["word"] = self.word
        if self.phase == FINISHED:
            frame["scores"] = self.standings_frame()
            frame["winners"] = list(self.winners)
        return frame

    def standings(self) -> list[tuple[str, int]]:
        """Best first, by name on a tie; a kicked player is not ranked."""
        ranked = [(u, p) for u, p in self.scores.items() if u not in self.kicked]
        return sorted(ranked, key=lambda item: (-item[1], item[0]))

    def standings_frame(self) -> list[dict[str, Any]]:
        return [{"user": user, "points": points} for user, points in self.standings()]

    def _rating(self) -> dict[str, int]:
        likes = sum(1 for liked in self.ratings.values() if liked)
        return {"likes": likes, "dislikes": len(self.ratings) - likes}

    def _drawer_away_ms(self, now: float) -> int | None:
        """While the drawer is away during their turn: the milliseconds until it ends."""
        if self.phase not in (CHOOSING, DRAWING) or self.drawer not in self.gone_since:
            return None
        since = self.gone_since[self.drawer]
        return max(0, int((since + self.timing.drawer_gone - now) * 1000))

    def _state_to_all(self, now: float) -> Send:
        return Send(self.view(None, now))

    def _players_frame(self, now: float) -> Send:
        frame: dict[str, Any] = {
            "type": "game.players",
            "players": self.players(),
            "spectators": list(self.spectators),
        }
        away = self._drawer_away_ms(now)
        if away is not None:
            frame["drawer_away_ms"] = away
        return Send(frame)

    # --- turns ------------------------------------------------------------------------------

    def _connected_players(self) -> list[str]:
        return [user for user in self.order if self.connected.get(user)]

    def _guessers(self) -> list[str]:
        """Connected players who are not drawing."""
        return [user for user in self._connected_players() if user != self.drawer]

    def _knowers(self) -> list[str]:
        """Who reads the word's turn restricted messages: the drawer and who has guessed."""
        known = [self.drawer] if self.drawer else []
        return known + [u for u in [*self.guessed, *self.watchers_guessed] if u not in known]

    def _pick_words(self, rng: random.Random) -> list[str]:
        """``word_choices`` distinct words not used in this game yet, each from the custom
        words or the built-in list with even odds (while custom words are left)."""
        custom_all = list(dict.fromkeys(self.custom_words))
        builtin_all = (
            []
            if self.custom_only
            else [w for w in builtin_words(self.language) if w not in custom_all]
        )
        custom = [w for w in custom_all if w not in self.used_words]
        builtin = [w for w in builtin_all if w not in self.used_words]
        wanted = min(self.word_choices, len(custom_all) + len(builtin_all))
        if len(builtin) + len(custom) < wanted:
            custom, builtin = custom_all, builtin_all  # every word has been used: start over
        picked: list[str] = []
        while len(picked) < wanted:
            pool = custom if custom and (not builtin or rng.random() < 0.5) else builtin
            word = rng.choice(pool)
            pool.remove(word)
            picked.append(word)
        return picked

    def _next_turn(self, now: float, rng: random.Random) -> list[Effect]:
        """The next drawer in play order (skipping who is not connected), or the next round,
        or the end of the game."""
        self.guessed = {}
        self.watchers_guessed = []
        self.guesses = {}
        self.ratings = {}
        self.revealed = []
        self.word = None
        self.choices = []
        self.hints = 0
        self.end_reason = None
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
        self.hints = hint_count(word, self.hints_setting)
        assert self.drawer is not None
        return [
            self._state_to_all(now),
            Send({"type": "game.word", "word": word}, users=[self.drawer]),
        ]

    def _hint_time(self, k: int) -> float:
        """When the (k+1)-th hint is due: hints are spread evenly over the turn."""
        return self.phase_started + self.draw_seconds * (k + 1) / (self.hints + 1)

    def _end_turn(self, now: float, reason: TurnEnd) -> list[Effect]:
        effects: list[Effect] = []
        # Everyone who played the turn is in the reveal, those who did not guess with 0.
        points = {user: 0 for user in self.order if user != self.drawer}
        if reason == TurnEnd.DRAWER_KICKED:
            # No points for anyone: what guessers earned this turn is taken back.
            for user, earned in self.guessed.items():
                self.scores[user] = max(0, self.scores[user] - earned)
                effects.append(ScoreSet(user, self.scores[user]))
        else:
            points.update(self.guessed)
            if self.drawer is not None and self.word is not None:
                earned = drawer_points(self.guessed)
                if self.drawer in self.scores:
                    self.scores[self.drawer] = capped(self.scores[self.drawer] + earned)
                    effects.append(ScoreSet(self.drawer, self.scores[self.drawer]))
                points[self.drawer] = earned
        self.turn_points = points
        self.end_reason = str(reason)
        self.phase = TURN_END
        self.phase_started = now
        self.deadline = now + self.timing.reveal
        effects.append(TurnEnded(self.word, shown=reason != TurnEnd.DRAWER_KICKED))
        effects.append(
            Send(
                {
                    "type": "game.turn_end",
                    "word": self.word,
                    "drawer": self.drawer,
                    "reason": str(reason),
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
        self.winners = [user for user, points in standings if points == best and best > 0]
        return [
            GameFinished(standings, list(self.winners)),
            Send(
                {
                    "type": "game.over",
                    "game": self.game,
                    "scores": self.standings_frame(),
                    "winners": list(self.winners),
                }
            ),
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
        """A chat message sent during the game: a guess, talk, or a message some may not read.

        While the word is drawn, what someone who does not know it says is either a guess
        (as many words as the word, plus one: ``words.guess_sized``) or talk. A guess is
        judged: correct, it scores and is never posted; wrong, it is posted for everyone (and
        its sender told when it was one letter away). Talk is never judged: whatever it
        holds, only those who know the word (and its sender) read it until the turn ends.
        So the sender learns from the treatment only whether a guess was right; a guess tests
        at most two candidates, and guesses are counted (``GUESS_*``).
        """
        if self.phase == CHOOSING:
            if user == self.drawer and any(holds(content, w) for w in self.choices):
                raise GameError(WORD_IN_CHAT, "You cannot give the words away in the chat.")
            return [Post(user, content)]
        if self.phase != DRAWING or self.word is None:
            return [Post(user, content)]
        knowers = self._knowers()
        if user in knowers:
            if holds(content, self.word):
                raise GameError(WORD_IN_CHAT, "You cannot give the word away in the chat.")
            return [Post(user, content, readers=knowers)]
        if not guess_sized(content, self.word):
            return [Post(user, content, readers=[*knowers, user])]
        self._count_guess(user, now)
        if is_guess(content, self.word):
            if user in self.order:
                return self._guessed(user, now)
            # A watcher (not playing) who found it: no points, but now one who knows.
            self.watchers_guessed.append(user)
            return [Send({"type": "game.word", "word": self.word}, users=[user])]
        effects: list[Effect] = [Post(user, content)]
        if is_close_guess(content, self.word):
            effects.append(Send({"type": "game.close"}, member=member))
        return effects

    def _count_guess(self, user: str, now: float) -> None:
        """One more guess of ``user`` this turn, or ``too_many_guesses`` (nothing changed)."""
        left, at, made = self.guesses.get(user, [GUESS_BURST, self.phase_started, 0])
        left = min(GUESS_BURST, left + max(0.0, now - at) / GUESS_EVERY)
        if made >= GUESS_MAX:
            raise GameError(TOO_MANY_GUESSES, f"At most {GUESS_MAX} guesses a turn.")
        if left < 1:
            wait = (1 - left) * GUESS_EVERY
            raise GameError(
                TOO_MANY_GUESSES, f"One guess every {GUESS_EVERY:g} s: wait {wait:.1f} s."
            )
        self.guesses[user] = [left - 1, now, made + 1]

    def _guessed(self, user: str, now: float) -> list[Effect]:
        earned = guess_points(
            self.deadline - now, self.draw_seconds, self.hints - len(self.revealed)
        )
        self.guessed[user] = earned
        self.scores[user] = capped(self.scores.get(user, 0) + earned)
        assert self.word is not None
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
            Send({"type": "game.word", "word": self.word}, users=[user]),
        ]
        if self._everyone_guessed():
            effects += self._end_turn(now, TurnEnd.GUESSED)
        return effects

    def _everyone_guessed(self) -> bool:
        """Drawing, someone has guessed, and every connected guesser has."""
        return (
            self.phase == DRAWING
            and bool(self.guessed)
            and all(guesser in self.guessed for guesser in self._guessers())
        )

    def kick(self, voter: str, target: Any, now: float) -> list[Effect]:
        """A vote to remove ``target``; the game's starter removes at once."""
        if voter not in self.order or not self.connected.get(voter):
            raise GameError(NOT_PLAYER, "Only players of this game vote.")
        if not isinstance(target, str) or target not in self.order:
            raise GameError(BAD_KICK, "user is a player of this game.")
        if target == voter:
            raise GameError(BAD_KICK, "You cannot vote to remove yourself.")
        if voter == self.starter:
            return self._remove(target, now, kicked=True)
        voters = self.votes.setdefault(target, {})
        voters[voter] = now
        connected = self._connected_players()
        counted = [v for v, at in voters.items() if v in connected and now - at < KICK_VOTE_SECONDS]
        needed = max(2, len(connected) // 2 + 1)
        if len(counted) < needed:
            return [
                Send(
                    {
                        "type": "game.kick_vote",
                        "user": target,
                        "votes": len(counted),
                        "needed": needed,
                        "ms_left": int(KICK_VOTE_SECONDS * 1000),
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
            reason = TurnEnd.DRAWER_KICKED if kicked else TurnEnd.DRAWER_LEFT
            effects += self._end_turn(now, reason)
        elif self._everyone_guessed():
            effects += self._end_turn(now, TurnEnd.GUESSED)
        effects.append(self._players_frame(now))
        self._update_alone(now)
        return effects

    def spectate(self, user: str, on: bool, now: float) -> list[Effect]:
        """``user`` sits out (``on``: out of the play order, points kept, not joined again
        by connecting) or comes back (at the end of the order, if there is room)."""
        if on:
            if user in self.spectators:
                return []
            self.spectators.append(user)
            if user in self.order:
                return self._remove(user, now, kicked=False)
            return [self._players_frame(now)]
        if user not in self.spectators:
            return []
        self.spectators.remove(user)
        effects: list[Effect] = []
        if user in self.online:
            effects += self._add_player(user)
        effects.append(self._players_frame(now))
        self._update_alone(now)
        return effects

    def rate(self, user: str, like: Any, now: float) -> list[Effect]:
        """``user`` likes (or not) the drawing of the turn being drawn or just ended."""
        if not isinstance(like, bool):
            raise GameError(BAD_RATING, '"like" is true or false.')
        if self.phase not in (DRAWING, TURN_END) or self.word is None:
            raise GameError(BAD_RATING, "There is no drawing to rate right now.")
        if user == self.drawer:
            raise GameError(BAD_RATING, "You cannot rate your own drawing.")
        if self.ratings.get(user) == like:
            return []
        self.ratings[user] = like
        rating = self._rating()
        return [
            Send({"type": "game.rating", "turn": self.turn, **rating}),
            TurnRated(rating["likes"], rating["dislikes"]),
        ]

    def _add_player(self, user: str) -> list[Effect]:
        """``user`` joins the end of the play order, if the game may take them."""
        if (
            user in self.order
            or user in self.kicked
            or user in self.spectators
            or len(self.order) >= self.max_players
        ):
            return []
        self.order.append(user)
        self.connected[user] = True
        if user in self.scores:
            return []
        self.scores[user] = 0
        return [ScoreSet(user, 0)]

    def presence(self, online: list[str], now: float) -> list[Effect]:
        """Who has a socket on the channel now: late joiners join, leavers are marked gone."""
        effects: list[Effect] = []
        online_set = set(online)
        self.online = sorted(online_set)
        changed = False
        for user in online:
            if user not in self.order and user not in self.kicked:
                joined = self._add_player(user)
                changed = changed or user in self.order
                effects += joined
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
            effects.append(self._players_frame(now))
            if self._everyone_guessed():
                effects += self._end_turn(now, TurnEnd.GUESSED)
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
            ended = self._end_turn(now, TurnEnd.ALONE) if self.phase in (CHOOSING, DRAWING) else []
            return ended + self._finish(now)
        drawer_gone = self.drawer is not None and self.drawer in self.gone_since
        drawer_gone_due = (
            drawer_gone and now >= self.gone_since[self.drawer] + self.timing.drawer_gone  # type: ignore[index]
        )
        if self.phase == CHOOSING:
            if drawer_gone_due:
                return self._end_turn(now, TurnEnd.DRAWER_LEFT)
            if now >= self.deadline:
                return self._begin_drawing(rng.choice(self.choices), now)
        elif self.phase == DRAWING:
            if drawer_gone_due:
                return self._end_turn(now, TurnEnd.DRAWER_LEFT)
            if now >= self.deadline:
                return self._end_turn(now, TurnEnd.TIME_UP)
            if len(self.revealed) < self.hints and now >= self._hint_time(len(self.revealed)):
                assert self.word is not None
                hidden = [i for i in letter_positions(self.word) if i not in self.revealed]
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
