"""Shared helpers of the draw-and-guess rules' tests (``aiotutorial.game.rules``).

``Table`` plays one game with a fake clock and a seeded ``random.Random`` and checks, after
every call, what must hold whatever happens:

- secrecy: until the ``TurnEnded`` effect of a turn, no frame addressed to anyone but those who
  know the word (the drawer, and who has guessed it), and no view of anyone else, holds the
  turn's word or one of the words it was chosen from; no public chat message holds the word as
  a word; a hint never shows the whole word;
- scores: every ``ScoreSet`` total is in 0..32766, the last one per user equals
  ``game.scores``, and each total is the sum of the points announced by the ``game.turn_end``
  frames (plus, while drawing, the guesses of the turn): no turn is counted twice;
- turns begin and end alternately, numbered 1, 2, 3...

``Monkey`` makes up random inputs (guesses right, wrong and close, leaves and returns, kicks,
time passing) for the property-style tests.
"""

from __future__ import annotations

import functools
import json
import random
import unicodedata
from collections.abc import Iterator
from typing import Any

from aiotutorial.game.effects import Post, ScoreSet, Send, TurnBegan, TurnEnded
from aiotutorial.game.errors import GameError
from aiotutorial.game.rules import CHOOSING, DRAWING, FINISHED, Game, Timing
from aiotutorial.game.settings import Settings
from aiotutorial.game.words import builtin_words, hint_count, normalize, tokens

T0 = 1000.0
TIMING = Timing()
SCORE_LIMIT = 32767  # the SMALLINT the totals are stored in
TURN_POINTS_MAX = 250  # 100 + 100 for speed + 5 hints x 10
USERS = [f"p{i}" for i in range(1, 16)]
CUSTOM = ("red fox", "yo-yo", "café", "ox", "basketball")

# The protocol's own names: a word that happens to be one of them ("mask" is a built-in word)
# is no leak when it is a key or a frame's type or phase.
PROTOCOL_KEYS = frozenset(
    "type game phase round rounds turn drawer draw_seconds players mask ms_left strokes seq "
    "word words points scores user score guessed connected votes needed starter max_players "
    "spectators rating likes dislikes rated reason winners drawer_away_ms".split()
)
FIXED_VALUES = frozenset({"type", "phase", "reason", "rated"})


class CheckFailed(AssertionError):
    """An invariant of the game does not hold."""


def check(condition: Any, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def member_of(user: str) -> str:
    return f"{user}/socket"


def _strings(value: Any, key: str | None = None, *, free: bool = True) -> Iterator[str]:
    """The strings of a frame the game fills in (``free``) or the protocol's own."""
    if isinstance(value, dict):
        for k, v in value.items():
            if (k not in PROTOCOL_KEYS) == free:
                yield k
            yield from _strings(v, k, free=free)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, key, free=free)
    elif isinstance(value, str) and (key not in FIXED_VALUES) == free:
        yield value


def _both_strings(frame: Any) -> tuple[list[str], list[str]]:
    """``_strings(frame)`` and ``_strings(frame, free=False)`` in one walk, without a generator
    per level (the random games call it for every view after every action)."""
    free: list[str] = []
    fixed: list[str] = []
    stack: list[tuple[Any, str | None]] = [(frame, None)]
    while stack:
        value, key = stack.pop()
        if isinstance(value, dict):
            for k, v in value.items():
                (fixed if k in PROTOCOL_KEYS else free).append(k)
                stack.append((v, k))
        elif isinstance(value, list | tuple):
            stack.extend((item, key) for item in value)
        elif isinstance(value, str):
            (fixed if key in FIXED_VALUES else free).append(value)
    return free, fixed


@functools.lru_cache(maxsize=65536)
def _normalized(text: str) -> str:
    # The same strings come back in view after view: normalize each once.
    return normalize(text)


def leaks(frame: dict[str, Any], *words: str, text: str | None = None) -> str | None:
    """The first of ``words`` in the frame's JSON outside the protocol's own names, literally
    or ignoring case and accents; None when none is. The frame is walked once for them all.
    ``text``: the frame's JSON (``ensure_ascii=False``), when the caller has it already."""
    if text is None:
        text = json.dumps(frame, ensure_ascii=False)
    strings, fixed = _both_strings(frame)
    free = [_normalized(s) for s in strings]
    fixed_text = "\x00".join(fixed)  # no word holds a NUL: no count across two strings
    for word in words:
        literal = text.count(word) > fixed_text.count(word)
        target = _normalized(word)
        if literal or any(target in s for s in free):
            return word
    return None


def holds_as_words(content: str, word: str) -> bool:
    """Whether consecutive words of ``content`` spell ``word`` (or its plural), whatever the
    message's length: the word as a word, which no public message may hold."""
    words, target = tokens(content), "".join(tokens(word))
    runs = ("".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1))
    return any(run in (target, target + "s", target + "es") for run in runs)


def frames(effects: list[Any], kind: str | None = None) -> list[Send]:
    """The Send effects (of frame type ``kind``)."""
    return [e for e in effects if isinstance(e, Send) and (kind is None or e.frame["type"] == kind)]


def one_frame(effects: list[Any], kind: str) -> dict[str, Any]:
    found = frames(effects, kind)
    check(len(found) == 1, f"expected one {kind} frame, got {len(found)} in {effects}")
    return found[0].frame


def of_type(effects: list[Any], cls: type) -> list[Any]:
    return [e for e in effects if isinstance(e, cls)]


def state_json(game: Game) -> str:
    return json.dumps(game.to_dict(), sort_keys=True)


def with_accent(word: str) -> str:
    """``word`` capitalized with an acute accent on its first letter: "apple" -> "Ápple"."""
    return unicodedata.normalize("NFC", word[0].upper() + "\u0301" + word[1:])


def run(game: Game, rng: random.Random, action: tuple[Any, ...]) -> list[Any]:
    """Apply one input (``(kind, now, *args)``) to a bare game."""
    kind, now, *args = action
    if kind == "tick":
        return game.tick(now, rng)
    if kind == "say":
        user, content = args
        return game.message(user, member_of(user), content, now)
    if kind == "choose":
        user, index = args
        return game.choose(user, index, now)
    if kind == "presence":
        return game.presence(list(args[0]), now)
    if kind == "kick":
        voter, target = args
        return game.kick(voter, target, now)
    if kind == "spectate":
        user, on = args
        return game.spectate(user, on, now)
    if kind == "rate":
        user, like = args
        return game.rate(user, like, now)
    raise ValueError(kind)


class Table:
    """A game, its clock and its randomness; every call's effects are checked and logged."""

    def __init__(
        self,
        players: tuple[str, ...] | list[str] = ("p1", "p2", "p3"),
        *,
        rounds: int = 1,
        draw_seconds: int = 80,
        custom_words: tuple[str, ...] | list[str] = (),
        seed: int = 0,
        timing: Timing = TIMING,
        starter: str | None = None,
        **settings: Any,
    ) -> None:
        self.rng = random.Random(seed)
        self.now = T0
        self.online = list(players)
        self.log: list[Any] = []
        self.in_turn = False
        self.drawer: str | None = None
        self.candidates: list[str] = []
        self.word_sent: str | None = None
        self.turns_begun = self.turns_ended = 0
        self.drawers: list[tuple[int, str]] = []  # (round, drawer) of each turn
        self.knowers: set[str] = set()  # who has been told this turn's word
        self.last_total: dict[str, int] = {}
        self.ledger: dict[str, int] = {}
        self.game, effects = Game.start(
            1,
            "lobby",
            starter or self.online[0],
            list(self.online),
            Settings(
                rounds=rounds,
                draw_seconds=draw_seconds,
                custom_words=tuple(custom_words),
                **settings,
            ),
            timing,
            self.now,
            self.rng,
        )
        self.first = self._record(effects)

    # --- inputs ---------------------------------------------------------------------------

    def apply(self, action: tuple[Any, ...]) -> list[Any]:
        self.now = max(self.now, action[1])
        if action[0] == "presence":
            self.online = list(action[2])
        return self._record(run(self.game, self.rng, action))

    def tick(self, at: float | None = None) -> list[Any]:
        return self.apply(("tick", self.now if at is None else at))

    def advance(self, seconds: float) -> list[Any]:
        return self.tick(self.now + seconds)

    def say(self, user: str, content: str) -> list[Any]:
        return self.apply(("say", self.now, user, content))

    def choose(self, index: int = 0, user: str | None = None) -> list[Any]:
        return self.apply(("choose", self.now, user or self.game.drawer, index))

    def offer(self, word: str) -> list[Any]:
        """The drawer, offered ``word`` among their choices, picks it."""
        self.game.choices[0] = word
        self.candidates[0] = word
        return self.choose(0)

    def presence(self, online: list[str]) -> list[Any]:
        return self.apply(("presence", self.now, list(online)))

    def leave(self, *users: str) -> list[Any]:
        return self.presence([u for u in self.online if u not in users])

    def join(self, *users: str) -> list[Any]:
        return self.presence(self.online + [u for u in users if u not in self.online])

    def kick(self, voter: str, target: str) -> list[Any]:
        return self.apply(("kick", self.now, voter, target))

    def spectate(self, user: str, on: bool = True) -> list[Any]:
        return self.apply(("spectate", self.now, user, on))

    def rate(self, user: str, like: bool = True) -> list[Any]:
        return self.apply(("rate", self.now, user, like))

    def restore(self) -> None:
        """Go on with the game as another process would: from its stored JSON."""
        self.game = Game.from_dict(json.loads(json.dumps(self.game.to_dict())))

    def guessers(self) -> list[str]:
        return [u for u in self.game.order if u != self.game.drawer]

    # --- time -----------------------------------------------------------------------------

    def wake(self) -> list[Any]:
        """``tick`` at ``next_wakeup()``, which must make progress and do all that is due."""
        due = self.game.next_wakeup()
        check(due is not None, f"next_wakeup() is None in phase {self.game.phase}")
        assert due is not None
        before = state_json(self.game)
        effects = self.tick(max(self.now, due))
        check(
            effects and state_json(self.game) != before,
            f"tick at next_wakeup()={due} did nothing (phase {self.game.phase})",
        )
        later = self.game.next_wakeup()
        check(later is None or later > self.now, f"next_wakeup() {later} is not after {self.now}")
        return effects

    def wake_until(self, phase: str, limit: int = 50) -> list[Any]:
        effects: list[Any] = []
        while self.game.phase != phase:
            check(limit > 0, f"phase {phase} never came")
            limit -= 1
            effects += self.wake()
        return effects

    def play_out(self, limit: int = 5000) -> int:
        """Wake until the game is over; the number of wake-ups."""
        steps = 0
        while self.game.phase != FINISHED:
            steps += 1
            check(steps <= limit, f"the game did not finish in {limit} wake-ups")
            self.wake()
        check(self.game.next_wakeup() is None, "a finished game wants a wake-up")
        return steps

    # --- checks ---------------------------------------------------------------------------

    def _record(self, effects: list[Any]) -> list[Any]:
        self.log.extend(effects)
        self._check_secrecy(effects)
        self._check_scores(effects)
        self._check_views()
        return effects

    def _secrets_at(self, effects: list[Any], i: int) -> tuple[str | None, list[str]]:
        """The word (if chosen) and the words offered of the turn going on at ``effects[i]``."""
        word, offered = self.word_sent, list(self.candidates)
        for effect in effects[i:]:
            if isinstance(effect, TurnBegan):
                break
            if isinstance(effect, TurnEnded):
                return effect.word or word, offered
            if isinstance(effect, Send) and effect.frame["type"] == "game.words":
                offered += effect.frame["words"]
        else:  # the turn is still going on after this call
            offered += self.game.choices
            word = word or self.game.word
        return word, offered

    def _check_secrecy(self, effects: list[Any]) -> None:
        for i, effect in enumerate(effects):
            if isinstance(effect, TurnBegan):
                check(not self.in_turn, f"turn {effect.number} began before the last one ended")
                check(effect.number == self.turns_begun + 1, f"turn numbered {effect.number}")
                self.turns_begun += 1
                self.drawers.append((effect.round, effect.drawer))
                self.in_turn, self.drawer = True, effect.drawer
                self.candidates, self.word_sent = [], None
                self.knowers = {effect.drawer}
                continue
            if isinstance(effect, TurnEnded):
                check(self.in_turn, "a turn ended that was not going on")
                check(effect.word == self.word_sent, f"ended {effect.word}, drawn {self.word_sent}")
                self.in_turn = False
                self.turns_ended += 1
                continue
            if isinstance(effect, Send) and effect.frame["type"] == "game.words":
                check(
                    effect.users == [self.drawer] and effect.member is None,
                    f"{effect} is not addressed to the drawer {self.drawer} alone",
                )
                self.candidates = list(effect.frame["words"])
            elif isinstance(effect, Send) and effect.frame["type"] == "game.word":
                check(
                    effect.users is not None and len(effect.users) == 1 and effect.member is None,
                    f"{effect} is not addressed to one user",
                )
                assert effect.users is not None
                user = effect.users[0]
                if user == self.drawer:
                    self.word_sent = effect.frame["word"]
                else:
                    # Only who has just found it: a player (game.guessed said so) or a watcher.
                    check(
                        user in self.game.guessed or user in self.game.watchers_guessed,
                        f"{effect} goes to {user}, who has not guessed the word",
                    )
                    self.knowers.add(user)
            if not self.in_turn:
                continue
            word, offered = self._secrets_at(effects, i)
            if isinstance(effect, Send):
                if effect.member is None and effect.users and set(effect.users) <= self.knowers:
                    continue
                secret = leaks(effect.frame, *([word, *offered] if word else offered))
                check(secret is None, f"{effect} gives away {secret!r}")
                if effect.frame["type"] == "game.hint" and word:
                    shown = [c for c in effect.frame["mask"][::2] if c not in "_ -"]
                    check(
                        "_" in effect.frame["mask"] and len(shown) <= hint_count(word),
                        f"hint {effect.frame['mask']!r} shows too much of {word!r}",
                    )
            elif isinstance(effect, Post) and effect.readers is None:
                # The words offered are the drawer's to give away; anyone may say one of
                # them by chance while the drawer chooses (not knowing it was offered).
                secrets = [word] if word else []
                if effect.user == self.drawer:
                    secrets += offered
                for secret in secrets:
                    check(
                        not holds_as_words(effect.content, secret),
                        f"public message {effect.content!r} holds the word {secret!r}",
                    )

    def _check_scores(self, effects: list[Any]) -> None:
        for effect in effects:
            if isinstance(effect, ScoreSet):
                check(0 <= effect.total < SCORE_LIMIT, f"{effect} out of range")
                self.last_total[effect.user] = effect.total
            elif isinstance(effect, Send) and effect.frame["type"] == "game.guessed":
                frame = effect.frame
                check(
                    frame["score"] == self.last_total.get(frame["user"]),
                    f"{frame} without the ScoreSet of its total",
                )
                check(100 <= frame["points"] <= TURN_POINTS_MAX, f"{frame}: points out of range")
            elif isinstance(effect, Send) and effect.frame["type"] == "game.turn_end":
                for user, points in effect.frame["points"].items():
                    check(0 <= points <= TURN_POINTS_MAX, f"{effect.frame}: points out of range")
                    self.ledger[user] = self.ledger.get(user, 0) + points
        game = self.game
        check(self.last_total == game.scores, f"ScoreSets {self.last_total} != {game.scores}")
        check(set(self.ledger) <= set(game.scores), f"points for unknown users: {self.ledger}")
        current = game.guessed if game.phase == DRAWING else {}
        expected = {u: self.ledger.get(u, 0) + current.get(u, 0) for u in game.scores}
        check(expected == game.scores, f"scores {game.scores} != turn points {expected}")

    def _check_views(self) -> None:
        game = self.game
        word, offered = game.word, list(game.choices)
        # Most users who do not know the word get the very same view: its JSON is checked for
        # the secrets once (the check depends on nothing else).
        checked: set[str] = set()
        for user in [*game.order, "watcher", None]:
            view = game.view(user, self.now)
            text = json.dumps(view, ensure_ascii=False)
            check(json.loads(text) == view, "a view that is not JSON")
            ms_left = view["ms_left"]
            check(type(ms_left) is int and ms_left >= 0, f"ms_left {ms_left!r}")
            if game.phase not in (CHOOSING, DRAWING):
                continue
            if user is not None and user == game.drawer:
                if game.phase == CHOOSING:
                    check(view.get("words") == offered, f"drawer's view {view} lacks the words")
                else:
                    check(view.get("word") == word, f"drawer's view {view} lacks the word")
                continue
            if game.phase == DRAWING and game.knows_word(user):
                check(view.get("word") == word, f"{user} guessed, but the view {view} lacks it")
                continue
            if text in checked:
                continue
            secret = leaks(view, *([word, *offered] if word else offered), text=text)
            check(secret is None, f"{user}'s view {view} gives away {secret!r}")
            checked.add(text)


class Monkey:
    """Random inputs for a random game: its own ``random.Random``, apart from the game's."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.pick = random.Random(seed * 7919 + 1)
        self.crowd = USERS[: self.pick.choice([3, 4, 6, 15])]

    def table(self) -> Table:
        pick = self.pick
        online = pick.sample(self.crowd, pick.randint(2, min(len(self.crowd), 14)))
        return Table(
            online,
            rounds=pick.randint(1, 3),
            draw_seconds=pick.choice([30, 45, 80, 240]),
            custom_words=pick.choice([(), CUSTOM]),
            seed=self.seed,
        )

    def chatter(self, game: Game, user: str) -> str:
        pick = self.pick
        word = game.word
        if word and pick.random() < 0.7:
            close = word[1:] if len(word) > 3 else word + "s"
            return pick.choice(
                [
                    word,
                    word.upper(),
                    f"  {with_accent(word)} ",
                    close,
                    f"is it {word}?",
                    f"a {word}!",
                    f"{word}s",
                    f"pine{word}",
                    f"i think it is a {word} lol",
                ]
            )
        if game.phase == CHOOSING and user == game.drawer and pick.random() < 0.3:
            return f"pick {pick.choice(game.choices)}"
        return pick.choice([*builtin_words()[:40], "hello", "nice drawing"])

    def action(self, table: Table) -> tuple[Any, ...]:
        pick, game, now = self.pick, table.game, table.now
        roll = pick.random()
        if roll < 0.3:
            due = game.next_wakeup()
            if due is not None and pick.random() < 0.5:
                return ("tick", max(now, due))
            return ("tick", now + pick.uniform(0, 20))
        if roll < 0.6:
            user = pick.choice(table.online or self.crowd)
            return ("say", now, user, self.chatter(game, user))
        if roll < 0.7:
            user = game.drawer if pick.random() < 0.8 else pick.choice(self.crowd)
            return ("choose", now, user, pick.randint(-1, 3))
        if roll < 0.9:
            user = pick.choice(self.crowd)
            if user in table.online:
                return ("presence", now, [u for u in table.online if u != user])
            return ("presence", now, [*table.online, user])
        if roll < 0.93:
            return ("spectate", now, pick.choice(self.crowd), pick.random() < 0.6)
        if roll < 0.96:
            return ("rate", now, pick.choice(table.online or self.crowd), pick.random() < 0.7)
        voter = pick.choice(table.online or self.crowd)
        return ("kick", now, voter, pick.choice(game.order or self.crowd))


# Which refusals each input may meet, and when.
ALLOWED_ERRORS = {
    "say": {"word_in_chat", "too_many_guesses"},
    "choose": {"not_choosing", "not_drawer", "bad_choice"},
    "kick": {"not_player", "bad_kick"},
    "rate": {"bad_rating"},
}


def check_refusal(table: Table, action: tuple[Any, ...], error: GameError) -> None:
    """A refused input: an expected code, and for chat only what the rules say: the word (or
    a word offered) from someone who knows it, or a guess past the guesses' limits."""
    kind = action[0]
    check(error.code in ALLOWED_ERRORS.get(kind, ()), f"{action} refused with {error.code}")
    game = table.game
    if kind == "say":
        user, content = action[2], action[3]
        said = "".join(tokens(content))
        if error.code == "word_in_chat":
            secrets = [game.word] if game.phase == DRAWING else list(game.choices)
            check(
                game.knows_word(user) or (game.phase == CHOOSING and user == game.drawer),
                f"{user}, who does not know the word, refused to say {content!r}",
            )
            check(
                any("".join(tokens(w)) in said for w in secrets if w),
                f"{user} refused to say {content!r}, which holds no secret",
            )
        else:
            check(
                game.phase == DRAWING
                and not game.knows_word(user)
                and len(tokens(content)) <= len(tokens(game.word or "")) + 1,
                f"{user}'s {content!r} counted as a guess",
            )
    elif kind == "rate":
        user = action[2]
        check(
            game.phase not in (DRAWING, "turn_end") or user == game.drawer or game.word is None,
            f"{user}'s rating refused in phase {game.phase}",
        )
