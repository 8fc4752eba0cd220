"""The rules of draw-and-guess (``aiotutorial.game.rules``): words, settings, starting, choosing,
the secrecy of the word, guessing in the chat and the players' views.

The rules are a pure state machine: time and chance are injected, so every number below is
exact. Turns, scores, leaving, kicks, wake-ups, persistence and the random games are in
``test_game_rules_turns.py``; the shared ``Table`` (``gamerules_support.py``) checks the
secrecy of the word and the score totals after every call of every test.
"""

from __future__ import annotations

import json
import random
import string
import unittest

from aiotutorial.game.effects import Post, ScoreSet, Send, TurnBegan, TurnEnded
from aiotutorial.game.errors import GameError
from aiotutorial.game.rules import (
    CHOOSING,
    DRAWING,
    FINISHED,
    GUESS_BURST,
    GUESS_EVERY,
    GUESS_MAX,
    TURN_END,
    Game,
)
from aiotutorial.game.scoring import guess_points
from aiotutorial.game.settings import MAX_PLAYERS, Settings, validate_settings
from aiotutorial.game.words import (
    LANGUAGES,
    builtin_words,
    guess_sized,
    hint_count,
    is_close,
    is_guess,
    mask_of,
    normalize,
    tokens,
)

from .gamerules_support import (
    CUSTOM,
    T0,
    TIMING,
    USERS,
    CheckFailed,
    Monkey,
    Table,
    check_refusal,
    frames,
    leaks,
    member_of,
    of_type,
    one_frame,
    with_accent,
)

LETTERS = string.ascii_lowercase


class WordFunctionTests(unittest.TestCase):
    """normalize, is_close, mask_of, hint_count, guess_points and the built-in list."""

    def test_normalize_ignores_case_accents_and_spaces(self) -> None:
        self.assertEqual(normalize("  Ápple "), "apple")
        self.assertEqual(normalize("ICE   Cream"), "ice cream")
        self.assertEqual(normalize("Café"), normalize("cafe"))
        self.assertNotEqual(normalize("apple"), normalize("apples"))

    def test_close_is_one_letter_added_missing_changed_or_two_neighbours_swapped(self) -> None:
        for guess in ("apples", "aple", "pple", "appla", "bpple", "paple", "appel"):
            self.assertTrue(is_close(guess, "apple"), guess)

    def test_not_close(self) -> None:
        for guess in ("apple", "ap", "applesx", "elppa", "eppla", "aplpex", "banana", ""):
            self.assertFalse(is_close(guess, "apple"), guess)

    def test_mask_has_one_character_per_character_of_the_word(self) -> None:
        self.assertEqual(mask_of("apple"), "_ _ _ _ _")
        self.assertEqual(mask_of("apple", [1, 4]), "_ p _ _ e")
        self.assertEqual(mask_of("ice cream"), "_ _ _   _ _ _ _ _")
        self.assertEqual(mask_of("yo-yo", (3,)), "_ _ - y _")
        word = "traffic light"
        mask = mask_of(word, [0, 8])
        for i, ch in enumerate(word):
            self.assertEqual(mask[2 * i], ch if ch == " " or i in (0, 8) else "_")

    def test_hint_count_grows_with_the_letters(self) -> None:
        cases = {"ox": 0, "a": 0, "a-b": 0, "cat": 1, "yo-yo": 1, "bear": 1, "apple": 2}
        cases |= {"ice cream": 2, "alligator": 2, "basketball": 3, "traffic light": 3}
        for word, count in cases.items():
            self.assertEqual(hint_count(word), count, word)

    def test_the_hints_setting_leaves_a_letter_hidden(self) -> None:
        self.assertEqual(hint_count("apple", 0), 0)
        self.assertEqual(hint_count("apple", 3), 3)
        self.assertEqual(hint_count("apple", 5), 4)
        self.assertEqual(hint_count("ox", 5), 1)
        self.assertEqual(hint_count("ice cream", 5), 5)

    def test_guess_points(self) -> None:
        self.assertEqual(guess_points(80, 80, 2), 220)
        self.assertEqual(guess_points(40, 80, 1), 160)
        self.assertEqual(guess_points(0, 80, 0), 100)
        self.assertEqual(guess_points(-3, 80, 0), 100)
        self.assertEqual(guess_points(100, 80, 3), 230)
        self.assertEqual(guess_points(80, 80, 5), 250)
        self.assertGreater(guess_points(50, 80, 0), guess_points(49, 80, 0))

    def test_builtin_words_are_drawable_nouns(self) -> None:
        for language in LANGUAGES:
            words = builtin_words(language)
            self.assertGreater(len(words), 300, language)
            self.assertEqual(len(set(words)), len(words), language)
            for word in words:
                cleaned = validate_settings({"custom_words": [word]}).custom_words
                self.assertEqual(cleaned, (word,), language)
        with self.assertRaises(ValueError):
            builtin_words("xx")

    def test_words_are_runs_of_letters(self) -> None:
        self.assertEqual(tokens("  Ice-CREAM, please!"), ["ice", "cream", "please"])
        self.assertEqual(tokens("f.l.a.m.i.n.g.o"), list("flamingo"))
        self.assertEqual(tokens("Ápple2go"), ["apple", "go"])
        self.assertEqual(tokens("?! 42"), [])

    def test_a_guess_spells_the_word_in_a_short_message(self) -> None:
        for text in ("apple", "Ápple!", "an apple", "APPLES", "apple?", "red apple"):
            self.assertTrue(is_guess(text, "apple"), text)
        for text in ("pineapple", "applesauce", "is it apple", "a.p.p.l.e", "appel"):
            self.assertFalse(is_guess(text, "apple"), text)
        for text in ("ice cream", "icecream", "Ice-Cream!", "an ice cream", "ice creams"):
            self.assertTrue(is_guess(text, "ice cream"), text)
        self.assertTrue(is_guess("boxes", "box"))
        self.assertFalse(is_guess("ice", "ice cream"))

    def test_a_guess_has_at_most_one_word_more_than_the_word(self) -> None:
        self.assertTrue(guess_sized("red apple", "apple"))
        self.assertFalse(guess_sized("a red apple", "apple"))
        self.assertTrue(guess_sized("vanilla ice cream", "ice cream"))
        self.assertFalse(guess_sized("a vanilla ice cream", "ice cream"))
        self.assertFalse(guess_sized("?!", "apple"))


class SettingsTests(unittest.TestCase):
    """validate_settings: rounds 1-10 (3), draw_seconds 30-240 (80), up to 200 custom words."""

    def assertBad(self, frame: dict) -> None:
        with self.assertRaises(GameError) as caught:
            validate_settings(frame)
        self.assertEqual(caught.exception.code, "bad_settings", frame)

    def test_defaults(self) -> None:
        self.assertEqual(validate_settings({}), Settings())
        self.assertEqual(
            Settings(),
            Settings(3, 80, (), False, MAX_PLAYERS, 3, None, "en"),
        )
        nothing = {key: None for key in ("rounds", "draw_seconds", "max_players", "hints")}
        self.assertEqual(validate_settings({**nothing, "language": None}), Settings())

    def test_bounds(self) -> None:
        low = validate_settings(
            {"rounds": 1, "draw_seconds": 30, "max_players": 2, "word_choices": 1, "hints": 0}
        )
        self.assertEqual(
            (low.rounds, low.draw_seconds, low.max_players, low.word_choices, low.hints),
            (1, 30, 2, 1, 0),
        )
        high = validate_settings(
            {"rounds": 10, "draw_seconds": 240, "max_players": 12, "word_choices": 5, "hints": 5}
        )
        self.assertEqual(
            (high.rounds, high.draw_seconds, high.max_players, high.word_choices, high.hints),
            (10, 240, 12, 5, 5),
        )
        for value in (0, 11, -1, "3", 3.0, True):
            self.assertBad({"rounds": value})
        for value in (29, 241, "80", 80.5, False):
            self.assertBad({"draw_seconds": value})
        for value in (1, 13, "4"):
            self.assertBad({"max_players": value})
        for value in (0, 6, 2.5):
            self.assertBad({"word_choices": value})
        for value in (-1, 6, "2"):
            self.assertBad({"hints": value})
        for value in ("fr", "", 1, ["en"]):
            self.assertBad({"language": value})
        self.assertEqual(validate_settings({"language": "de"}).language, "de")

    def test_custom_words_only_needs_as_many_as_are_offered(self) -> None:
        self.assertBad({"custom_words_only": True, "custom_words": ["a", "b"]})
        self.assertBad({"custom_words_only": "yes", "custom_words": ["a", "b", "c"]})
        only = validate_settings({"custom_words_only": True, "custom_words": ["a", "b", "c"]})
        self.assertTrue(only.custom_only)
        one = {"custom_words_only": True, "custom_words": ["a"], "word_choices": 1}
        self.assertTrue(validate_settings(one).custom_only)

    def test_custom_words_are_cleaned_and_deduplicated(self) -> None:
        frame = {"custom_words": ["  Red   Fox ", "yo-yo", "Café", "red fox", "x" * 30]}
        self.assertEqual(
            validate_settings(frame).custom_words, ("red fox", "yo-yo", "café", "x" * 30)
        )
        many = [a + b for a in LETTERS for b in LETTERS]
        self.assertEqual(
            validate_settings({"custom_words": many[:200]}).custom_words, tuple(many[:200])
        )

    def test_bad_custom_words(self) -> None:
        for word in ("abc1", "", "   ", "-", "a" * 31, 5, None, "a_b", "hi!"):
            self.assertBad({"custom_words": [word]})
        self.assertBad({"custom_words": "apple"})
        self.assertBad({"custom_words": [a + b for a in LETTERS for b in LETTERS][:201]})


class StartTests(unittest.TestCase):
    """Game.start: two connected players at least, everyone online plays (starter first, at
    most MAX_PLAYERS), and the first turn offers the starter three words."""

    def start(self, starter: str, online: list[str], **settings: object) -> tuple:
        chosen = Settings(rounds=2, draw_seconds=60, **settings)  # type: ignore[arg-type]
        return Game.start(1, "lobby", starter, online, chosen, TIMING, T0, random.Random(3))

    def test_needs_two_connected_players(self) -> None:
        for starter, online in (("p1", ["p1"]), ("p1", ["p2", "p3"]), ("p1", [])):
            with self.assertRaises(GameError) as caught:
                self.start(starter, online)
            self.assertEqual(caught.exception.code, "not_enough_players")

    def test_everyone_online_plays_starter_first(self) -> None:
        game, effects = self.start("p3", ["p1", "p2", "p3"])
        self.assertEqual(game.order, ["p3", "p1", "p2"])
        self.assertEqual(of_type(effects, ScoreSet), [ScoreSet(u, 0) for u in ["p3", "p1", "p2"]])
        self.assertEqual(of_type(effects, TurnBegan), [TurnBegan(1, 1, "p3")])
        self.assertEqual((game.rounds, game.draw_seconds, game.phase), (2, 60, CHOOSING))

    def test_at_most_max_players(self) -> None:
        online = USERS[:15]
        game, _ = self.start("p15", online)
        self.assertEqual(len(game.order), MAX_PLAYERS)
        self.assertEqual(game.order, ["p15", *online[: MAX_PLAYERS - 1]])
        self.assertEqual(set(game.scores), set(game.order))
        game, _ = self.start("p15", online, max_players=4)
        self.assertEqual(game.order, ["p15", "p1", "p2", "p3"])

    def test_drawer_is_offered_three_words_privately(self) -> None:
        game, effects = self.start("p1", ["p1", "p2"])
        offer = one_frame(effects, "game.words")
        self.assertEqual(frames(effects, "game.words")[0].users, ["p1"])
        self.assertEqual(offer["words"], game.choices)
        self.assertEqual(len(set(offer["words"])), 3)
        self.assertTrue(set(offer["words"]) <= set(builtin_words()))
        state = one_frame(effects, "game.state")
        self.assertEqual(
            (state["phase"], state["drawer"], state["ms_left"]), (CHOOSING, "p1", 15000)
        )
        self.assertNotIn("words", state)


class ChoosingTests(unittest.TestCase):
    """The drawer picks one of three words (built-in mixed with custom, none used twice in a
    game) within timing.choose seconds, or a tick picks one for them."""

    def test_drawer_chooses(self) -> None:
        table = Table(seed=1)
        words = list(table.game.choices)
        effects = table.choose(2)
        self.assertEqual(table.game.phase, DRAWING)
        self.assertEqual(table.game.word, words[2])
        self.assertEqual(one_frame(effects, "game.word"), {"type": "game.word", "word": words[2]})
        self.assertEqual(one_frame(effects, "game.state")["mask"], mask_of(words[2]))
        self.assertEqual(table.game.deadline, T0 + 80)

    def test_bad_choices(self) -> None:
        table = Table()
        for user, index, code in (
            ("p2", 0, "not_drawer"),
            ("p1", 3, "bad_choice"),
            ("p1", -1, "bad_choice"),
            ("p1", True, "bad_choice"),
            ("p1", "0", "bad_choice"),
        ):
            with self.assertRaises(GameError) as caught:
                table.choose(index, user)
            self.assertEqual(caught.exception.code, code, (user, index))
        self.assertEqual(table.game.phase, CHOOSING)
        table.choose(0)
        with self.assertRaises(GameError) as caught:
            table.choose(1)
        self.assertEqual(caught.exception.code, "not_choosing")

    def test_a_word_is_picked_when_time_is_up(self) -> None:
        table = Table(seed=5)
        words = list(table.game.choices)
        self.assertEqual(table.tick(T0 + 14.9), [])
        self.assertEqual(table.game.next_wakeup(), T0 + 15)
        effects = table.tick(T0 + 15)
        self.assertEqual(table.game.phase, DRAWING)
        self.assertIn(table.game.word, words)
        self.assertEqual(frames(effects, "game.word")[0].users, ["p1"])

    def start(self, seed: int, **settings: object) -> Game:
        chosen = Settings(rounds=1, **settings)  # type: ignore[arg-type]
        game, _ = Game.start(1, "c", "p1", ["p1", "p2"], chosen, TIMING, T0, random.Random(seed))
        return game

    def test_custom_words_are_mixed_with_the_builtin_ones(self) -> None:
        offered: list[str] = []
        for seed in range(200):
            game = self.start(seed, custom_words=CUSTOM)
            self.assertEqual(len(set(game.choices)), 3)
            offered += game.choices
        self.assertTrue(set(offered) - set(CUSTOM))
        self.assertTrue(set(offered) <= set(CUSTOM) | set(builtin_words()))
        # Every custom word has the same chance, built-in or not ("yo-yo" is both): about
        # half of the words offered are custom, each of the five a fifth of those.
        custom = [w for w in offered if w in CUSTOM]
        self.assertGreater(len(custom), len(offered) * 0.4)
        for word in CUSTOM:
            self.assertGreater(custom.count(word), len(custom) / 5 * 0.6, word)

    def test_settings_of_the_words_offered(self) -> None:
        game = self.start(1, word_choices=5)
        self.assertEqual(len(set(game.choices)), 5)
        game = self.start(1, word_choices=1)
        self.assertEqual(len(game.choices), 1)
        only = ("red fox", "yo-yo", "café")
        for seed in range(20):
            self.assertEqual(
                set(self.start(seed, custom_words=only, custom_only=True).choices), set(only)
            )
        german = self.start(1, language="de")
        self.assertTrue(set(german.choices) <= set(builtin_words("de")))

    def test_custom_words_only_start_over_when_all_are_drawn(self) -> None:
        table = Table(
            ["p1", "p2"], rounds=3, custom_words=("cat", "dog"), custom_only=True, word_choices=2
        )
        drawn = []
        while table.game.phase != FINISHED:
            if table.game.phase == CHOOSING:
                self.assertEqual(set(table.game.choices) <= {"cat", "dog"}, True)
                table.choose(0)
                drawn.append(table.game.word)
            table.wake()
        self.assertEqual(len(drawn), 6)
        self.assertEqual(set(drawn), {"cat", "dog"})

    def test_no_word_is_offered_again_once_drawn(self) -> None:
        table = Table(["p1", "p2", "p3"], rounds=10, custom_words=CUSTOM, seed=9)
        drawn: list[str] = []
        while table.game.phase != FINISHED:
            if table.game.phase == CHOOSING:
                self.assertFalse(set(table.game.choices) & set(drawn), table.game.choices)
                table.choose(table.turns_begun % 3)
                drawn.append(table.game.word)
            table.wake()
        self.assertEqual(len(drawn), 30)
        self.assertEqual(len(set(drawn)), 30)


class SecrecyTests(unittest.TestCase):
    """The word goes to the drawer only; guessers get its mask and hints spread evenly over the
    turn, never the whole word; no public frame, view or chat message holds it before the
    turn ends."""

    def test_the_checker_finds_a_word_wherever_it_is(self) -> None:
        self.assertTrue(leaks({"type": "game.state", "mask": "apple"}, "apple"))
        self.assertTrue(leaks({"type": "x", "points": {"Ápple": 1}}, "apple"))
        self.assertTrue(leaks({"type": "x", "players": [{"user": "big CAFE"}]}, "café"))
        self.assertFalse(leaks({"type": "game.state", "mask": "_ _ _ _"}, "mask"))
        self.assertFalse(leaks({"type": "game.state", "mask": "_ p p _ e"}, "apple"))
        table = Table()
        table.choose(0)
        with self.assertRaises(CheckFailed):
            table._record([Send({"type": "game.guessed", "user": table.game.word})])
        with self.assertRaises(CheckFailed):
            table._record([Post("p2", f"it is {table.game.word.upper()}")])

    def test_the_word_goes_to_the_drawer_only(self) -> None:
        table = Table()
        effects = table.offer("apple")
        private = [e for e in effects if isinstance(e, Send) and "apple" in json.dumps(e.frame)]
        self.assertEqual(private, [Send({"type": "game.word", "word": "apple"}, users=["p1"])])

    def test_hints_are_spread_over_the_turn(self) -> None:
        table = Table(draw_seconds=90)
        table.offer("apple")  # two hints, at 30 and 60 seconds
        self.assertEqual(table.game.next_wakeup(), table.now + 30)
        start = table.now
        self.assertEqual(table.tick(start + 29.9), [])
        masks = []
        for at in (start + 30, start + 60):
            hint = one_frame(table.tick(at), "game.hint")
            self.assertEqual(frames(table.log, "game.hint")[-1].users, None)
            masks.append(hint["mask"])
        self.assertEqual([m.count("_") for m in masks], [4, 3])
        for i, ch in enumerate(masks[0][::2]):
            self.assertIn(ch, ("_", "apple"[i]))
        self.assertEqual(table.game.next_wakeup(), start + 90)
        table.tick(start + 89.9)
        self.assertEqual(len(frames(table.log, "game.hint")), 2)

    def test_hint_counts_over_whole_turns(self) -> None:
        for word, hints in (("ox", 0), ("cat", 1), ("ice cream", 2), ("basketball", 3)):
            table = Table(seed=len(word))
            table.offer(word)
            effects = table.wake_until(TURN_END)
            self.assertEqual(len(frames(effects, "game.hint")), hints, word)
            self.assertEqual(effects[-3:-2], [TurnEnded(word)])

    def test_views(self) -> None:
        table = Table(seed=2)
        words = list(table.game.choices)
        self.assertEqual(table.game.view("p1", T0)["words"], words)
        for user in ("p2", None):
            view = table.game.view(user, T0)
            self.assertNotIn("words", view)
            self.assertFalse(any(leaks(view, w) for w in words))
        table.advance(1.2345)
        table.choose(1)
        self.assertEqual(table.game.view("p1", table.now)["word"], words[1])
        view = table.game.view("p2", table.now + 0.0004, strokes=[[1, 2]], seq=7)
        self.assertEqual(
            (view["mask"], view["strokes"], view["seq"]), (mask_of(words[1]), [[1, 2]], 7)
        )
        self.assertNotIn("word", view)
        self.assertEqual(view["ms_left"], 79999)
        table.say("p2", words[1])
        table.say("p3", words[1])
        self.assertEqual(table.game.phase, TURN_END)
        view = table.game.view("p3", table.now)
        self.assertEqual((view["word"], set(view["points"])), (words[1], {"p1", "p2", "p3"}))

    def test_whole_games_keep_the_word_secret(self) -> None:
        # Table checks every effect and every view; this plays many whole games through it.
        hints = turns = 0
        for seed in range(30):
            monkey = Monkey(seed)
            table = monkey.table()
            for _ in range(150):
                if table.game.phase == FINISHED:
                    break
                action = monkey.action(table)
                try:
                    table.apply(action)
                except GameError as error:
                    check_refusal(table, action, error)
            table.play_out()
            hints += len(frames(table.log, "game.hint"))
            turns += table.turns_ended
        self.assertGreater(hints, 50)
        self.assertGreater(turns, 100)


class GuessingTests(unittest.TestCase):
    """Game.message while drawing: correct guesses, close guesses, restricted messages."""

    def setUp(self) -> None:
        self.table = Table(["p1", "p2", "p3", "p4"], seed=4)
        self.table.offer("apple")

    def test_a_correct_guess_is_not_posted(self) -> None:
        for user, text in (("p2", "Ápple"), ("p3", "  APPLE  ")):
            self.table.advance(10)
            effects = self.table.say(user, text)
            self.assertEqual(of_type(effects, Post), [])
            points = guess_points(70 - 10 * (user == "p3"), 80, 2)
            self.assertEqual(of_type(effects, ScoreSet), [ScoreSet(user, points)])
            guessed = frames(effects, "game.guessed")
            self.assertEqual(len(guessed), 1)
            self.assertEqual((guessed[0].users, guessed[0].member), (None, None))
            self.assertEqual(
                guessed[0].frame,
                {"type": "game.guessed", "user": user, "points": points, "score": points},
            )
        self.assertEqual(list(self.table.game.guessed), ["p2", "p3"])

    def test_a_correct_guess_tells_its_guesser_the_word(self) -> None:
        effects = self.table.say("p2", "an apple!")
        told = frames(effects, "game.word")
        self.assertEqual([(t.users, t.frame["word"]) for t in told], [(["p2"], "apple")])
        self.assertEqual(self.table.game.view("p2", self.table.now)["word"], "apple")
        self.assertNotIn("word", self.table.game.view("p3", self.table.now))

    def test_a_close_guess_is_posted_and_told_to_its_socket(self) -> None:
        for text in ("appel", "Aple", "pple", "applr", "an appel"):
            self.table.advance(GUESS_EVERY)
            effects = self.table.say("p2", text)
            self.assertEqual(of_type(effects, Post), [Post("p2", text)])
            close = frames(effects, "game.close")
            self.assertEqual(len(close), 1, text)
            self.assertEqual((close[0].member, close[0].users), (member_of("p2"), None))
        self.assertEqual(self.table.game.guessed, {})

    def test_a_wrong_guess_is_posted_publicly(self) -> None:
        for text in ("banana", "pineapple", "red banana"):
            self.table.advance(GUESS_EVERY)
            self.assertEqual(self.table.say("p2", text), [Post("p2", text)])

    def test_a_sentence_holding_the_word_is_treated_as_any_other_sentence(self) -> None:
        # Talk (more words than a guess) is never judged: with the word in it or not, only
        # those who know the word and its sender read it until the turn ends, and nothing
        # else happens. So its treatment cannot tell its sender whether the word is in it.
        self.table.say("p3", "apple")
        with_word = self.table.say("p2", "is it an Apple?")
        without = self.table.say("p2", "is it a banana?")
        self.assertEqual(len(with_word), 1)
        self.assertEqual(set(with_word[0].readers), {"p1", "p2", "p3"})
        self.assertEqual(
            [(type(e), e.user, e.readers) for e in with_word],
            [(type(e), e.user, e.readers) for e in without],
        )
        self.assertNotIn("p2", self.table.game.guessed)
        self.assertNotIn("p2", self.table.game.guesses)  # talk is not a guess: none counted

    def test_the_oracle_attack_learns_nothing(self) -> None:
        # Half the candidates that fit the mask in one message, then the other half: the
        # attack that found the word in log2(N) messages. Both messages are treated alike.
        candidates = [w for w in builtin_words() if len(w) == 5 and " " not in w]
        self.assertIn("apple", candidates)
        half = len(candidates) // 2
        probes = [" ".join(candidates[:half]), " ".join(candidates[half:])]
        answers = []
        for probe in probes:
            effects = self.table.say("p2", probe)
            answers.append([(type(e).__name__, e.readers) for e in effects if isinstance(e, Post)])
            self.assertEqual([type(e) for e in effects], [Post])
        self.assertEqual(answers[0], answers[1])
        self.assertEqual(self.table.game.guessed, {})

    def test_guesses_are_counted_per_player_and_turn(self) -> None:
        table = self.table
        for i in range(GUESS_BURST):
            table.say("p2", f"wrong{'x' * i}")
        with self.assertRaises(GameError) as caught:
            table.say("p2", "apple")  # right, but one too many: not judged
        self.assertEqual(caught.exception.code, "too_many_guesses")
        self.assertNotIn("p2", table.game.guessed)
        table.say("p3", "banana")  # another player has guesses of their own
        table.say("p2", "i am not guessing here at all")  # talk is not a guess
        table.advance(GUESS_EVERY)
        table.say("p2", "cherry")
        with self.assertRaises(GameError):
            table.say("p2", "melon")
        made = GUESS_BURST + 1
        while made < GUESS_MAX:
            table.advance(GUESS_EVERY)
            table.say("p2", "melon")
            made += 1
        table.advance(2 * GUESS_EVERY)  # budget left, but the turn's ceiling is reached
        with self.assertRaises(GameError) as caught:
            table.say("p2", "apple")
        self.assertIn(f"{GUESS_MAX} guesses a turn", caught.exception.detail)

    def test_brute_force_finds_nothing_with_what_a_turn_allows(self) -> None:
        # Every candidate that fits the mask, two to a message, as fast as the rules allow
        # over the whole turn: at most 2 x GUESS_MAX are tried. Put the word past them.
        table = Table(["p1", "p2", "p3"], draw_seconds=240, seed=4)
        candidates = [w for w in builtin_words() if len(w) == 5 and " " not in w]
        tried = 2 * GUESS_MAX
        self.assertGreater(len(candidates), tried + 1)
        word = candidates[tried + 1]
        table.offer(word)
        judged = 0
        pairs = [candidates[i : i + 2] for i in range(0, len(candidates), 2)]
        while table.game.phase == DRAWING and pairs:
            try:
                table.say("p2", " ".join(pairs[0]))
                judged += 1
                pairs.pop(0)
            except GameError:
                table.advance(1)
        self.assertEqual(judged, GUESS_MAX)
        self.assertNotIn("p2", table.game.guessed)

    def test_who_has_guessed_talks_to_those_who_know(self) -> None:
        self.table.say("p2", "apple")
        effects = self.table.say("p2", "nice drawing")
        self.assertEqual([(p.user, p.content) for p in effects], [("p2", "nice drawing")])
        self.assertEqual(set(effects[0].readers), {"p1", "p2"})
        self.table.say("p3", "apple")
        self.assertEqual(set(self.table.say("p2", "ha")[0].readers), {"p1", "p2", "p3"})

    def test_who_knows_cannot_chat_the_word(self) -> None:
        self.table.say("p2", "apple")
        before = json.dumps(self.table.game.to_dict())
        for user, text in (
            ("p1", "apple"),
            ("p1", "an ÁPPLE"),
            ("p2", "apple"),
            ("p2", "the apple is red"),
            ("p2", "pineapple"),
        ):
            with self.assertRaises(GameError) as caught:
                self.table.say(user, text)
            self.assertEqual(caught.exception.code, "word_in_chat", (user, text))
        self.assertEqual(json.dumps(self.table.game.to_dict()), before)
        self.assertEqual(self.table.game.scores["p2"], guess_points(80, 80, 2))

    def test_a_watcher_who_finds_the_word_scores_nothing_and_knows_it(self) -> None:
        effects = self.table.say("watcher", with_accent("apple"))
        self.assertEqual(of_type(effects, ScoreSet), [])
        self.assertEqual(of_type(effects, Post), [])
        self.assertEqual(
            [(s.users, s.frame) for s in frames(effects)],
            [(["watcher"], {"type": "game.word", "word": "apple"})],
        )
        self.assertEqual(set(self.table.say("watcher", "ha")[0].readers), {"p1", "watcher"})
        self.assertNotIn("watcher", self.table.game.scores)

    def test_the_drawer_cannot_chat_the_words_offered(self) -> None:
        table = Table(seed=3)
        offered = list(table.game.choices)
        for text in (offered[0], f"take {offered[1].upper()}!", f"xx{offered[2]}xx"):
            with self.assertRaises(GameError) as caught:
                table.say("p1", text)
            self.assertEqual(caught.exception.code, "word_in_chat", text)
        self.assertEqual(table.say("p1", "hmm, let me see"), [Post("p1", "hmm, let me see")])
        self.assertEqual(table.say("p2", offered[0]), [Post("p2", offered[0])])

    def test_outside_drawing_messages_are_public(self) -> None:
        table = Table(seed=7)
        self.assertEqual(table.say("p2", "ready?"), [Post("p2", "ready?")])
        table.offer("apple")
        table.say("p2", "apple")
        table.say("p3", "apple")
        self.assertEqual(table.game.phase, TURN_END)
        self.assertEqual(table.say("p2", "apple!"), [Post("p2", "apple!")])


if __name__ == "__main__":
    unittest.main()
