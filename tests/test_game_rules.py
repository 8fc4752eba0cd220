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

from aiotutorial.game.rules import (
    CHOOSING,
    DRAWING,
    FINISHED,
    MAX_PLAYERS,
    TURN_END,
    Game,
    GameError,
    Post,
    ScoreSet,
    Send,
    TurnBegan,
    TurnEnded,
    builtin_words,
    guess_points,
    hint_count,
    is_close,
    mask_of,
    normalize,
    validate_settings,
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

    def test_guess_points(self) -> None:
        self.assertEqual(guess_points(80, 80, 2), 220)
        self.assertEqual(guess_points(40, 80, 1), 160)
        self.assertEqual(guess_points(0, 80, 0), 100)
        self.assertEqual(guess_points(-3, 80, 0), 100)
        self.assertEqual(guess_points(100, 80, 3), 230)
        self.assertGreater(guess_points(50, 80, 0), guess_points(49, 80, 0))

    def test_builtin_words_are_drawable_nouns(self) -> None:
        words = builtin_words()
        self.assertGreater(len(words), 100)
        self.assertEqual(len(set(words)), len(words))
        for word in words:
            self.assertEqual(validate_settings({"custom_words": [word]})[2], [word])


class SettingsTests(unittest.TestCase):
    """validate_settings: rounds 1-10 (3), draw_seconds 30-240 (80), up to 200 custom words."""

    def assertBad(self, frame: dict) -> None:
        with self.assertRaises(GameError) as caught:
            validate_settings(frame)
        self.assertEqual(caught.exception.code, "bad_settings", frame)

    def test_defaults(self) -> None:
        self.assertEqual(validate_settings({}), (3, 80, []))
        self.assertEqual(validate_settings({"rounds": None, "draw_seconds": None}), (3, 80, []))

    def test_bounds(self) -> None:
        self.assertEqual(validate_settings({"rounds": 1, "draw_seconds": 30})[:2], (1, 30))
        self.assertEqual(validate_settings({"rounds": 10, "draw_seconds": 240})[:2], (10, 240))
        for value in (0, 11, -1, "3", 3.0, True):
            self.assertBad({"rounds": value})
        for value in (29, 241, "80", 80.5, False):
            self.assertBad({"draw_seconds": value})

    def test_custom_words_are_cleaned_and_deduplicated(self) -> None:
        frame = {"custom_words": ["  Red   Fox ", "yo-yo", "Café", "red fox", "x" * 30]}
        self.assertEqual(validate_settings(frame)[2], ["red fox", "yo-yo", "café", "x" * 30])
        many = [a + b for a in LETTERS for b in LETTERS]
        self.assertEqual(validate_settings({"custom_words": many[:200]})[2], many[:200])

    def test_bad_custom_words(self) -> None:
        for word in ("abc1", "", "   ", "-", "a" * 31, 5, None, "a_b", "hi!"):
            self.assertBad({"custom_words": [word]})
        self.assertBad({"custom_words": "apple"})
        self.assertBad({"custom_words": [a + b for a in LETTERS for b in LETTERS][:201]})


class StartTests(unittest.TestCase):
    """Game.start: two connected players at least, everyone online plays (starter first, at
    most MAX_PLAYERS), and the first turn offers the starter three words."""

    def start(self, starter: str, online: list[str], words: list[str] | None = None) -> tuple:
        return Game.start(
            1, "lobby", starter, online, (2, 60, words or []), TIMING, T0, random.Random(3)
        )

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

    def test_custom_words_are_mixed_with_the_builtin_ones(self) -> None:
        offered: set[str] = set()
        for seed in range(60):
            game, _ = Game.start(
                1, "c", "p1", ["p1", "p2"], (1, 80, list(CUSTOM)), TIMING, T0, random.Random(seed)
            )
            self.assertEqual(len(set(game.choices)), 3)
            offered |= set(game.choices)
        own = set(CUSTOM) - set(builtin_words())  # "yo-yo" is a built-in word too
        self.assertTrue(offered & own)
        self.assertTrue(offered - set(CUSTOM))
        self.assertTrue(offered <= set(CUSTOM) | set(builtin_words()))

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

    def test_a_close_guess_is_posted_and_told_to_its_socket(self) -> None:
        for text in ("appel", "Aple", "pple", "applr"):
            effects = self.table.say("p2", text)
            self.assertEqual(of_type(effects, Post), [Post("p2", text)])
            close = frames(effects, "game.close")
            self.assertEqual(len(close), 1, text)
            self.assertEqual((close[0].member, close[0].users), (member_of("p2"), None))
        self.assertEqual(self.table.game.guessed, {})

    def test_a_wrong_guess_is_posted_publicly(self) -> None:
        effects = self.table.say("p2", "banana")
        self.assertEqual(effects, [Post("p2", "banana")])

    def test_a_sentence_holding_the_word_is_restricted(self) -> None:
        self.table.say("p3", "apple")
        effects = self.table.say("p2", "is it an Apple?")
        self.assertEqual(len(effects), 1)
        self.assertEqual(set(effects[0].readers), {"p1", "p2", "p3"})
        self.assertNotIn("p2", self.table.game.guessed)

    def test_a_close_guess_holding_the_word_is_restricted_but_told_close(self) -> None:
        effects = self.table.say("p2", "apples")
        self.assertEqual(set(of_type(effects, Post)[0].readers), {"p1", "p2"})
        self.assertEqual([s.member for s in frames(effects, "game.close")], [member_of("p2")])

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
        ):
            with self.assertRaises(GameError) as caught:
                self.table.say(user, text)
            self.assertEqual(caught.exception.code, "word_in_chat", (user, text))
        self.assertEqual(json.dumps(self.table.game.to_dict()), before)
        self.assertEqual(self.table.game.scores["p2"], guess_points(80, 80, 2))

    def test_a_watcher_cannot_guess(self) -> None:
        effects = self.table.say("watcher", with_accent("apple"))
        self.assertEqual(of_type(effects, ScoreSet), [])
        self.assertEqual(set(of_type(effects, Post)[0].readers), {"p1", "watcher"})

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
