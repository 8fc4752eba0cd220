"""The rules of draw-and-guess over time (``aiotutorial.game.rules``): scores, the end of a turn
and of the game, leaving and returning, vote-kicks, ``next_wakeup``, persistence, and random
games checked for the invariants of ``gamerules_support.Table`` (secret word, score totals).
"""

from __future__ import annotations

import json
import random
import unittest

from aiotutorial.game.effects import GameFinished, Post, ScoreSet, TurnBegan, TurnEnded, TurnRated
from aiotutorial.game.errors import GameError
from aiotutorial.game.rules import DRAWING, FINISHED, TURN_END, Game

from .gamerules_support import (
    T0,
    USERS,
    Monkey,
    Table,
    check_refusal,
    frames,
    of_type,
    one_frame,
    run,
    state_json,
)


def drawing(players: list[str] | tuple[str, ...] = ("p1", "p2", "p3", "p4"), **kw) -> Table:
    """A game whose first drawer (players[0]) draws "apple" (two hints) from T0 for 80 s."""
    table = Table(players, **kw)
    table.offer("apple")
    return table


class ScoringTests(unittest.TestCase):
    """Guessers get 100 + speed + 10 per hint not shown; the drawer the points of the turn's
    first correct guess (``scoring.drawer_points``); totals go out as ScoreSet."""

    def test_guessers_and_drawer_points(self) -> None:
        table = drawing()
        table.advance(10)
        self.assertEqual(table.say("p2", "apple")[0], ScoreSet("p2", 100 + 88 + 20))
        table.tick(T0 + 40)  # the first hint came at 26.7 s
        self.assertEqual(table.say("p3", "apple")[0], ScoreSet("p3", 100 + 50 + 10))
        effects = table.tick(T0 + 80)
        self.assertIn(ScoreSet("p1", 208), effects)
        points = one_frame(effects, "game.turn_end")["points"]
        self.assertEqual(points, {"p1": 208, "p2": 208, "p3": 160, "p4": 0})
        self.assertEqual(table.game.scores, {"p1": 208, "p2": 208, "p3": 160, "p4": 0})

    def test_the_drawer_cannot_be_marked_down_or_up_by_the_others(self) -> None:
        # The average rule moved with whoever joined or left: not this one.
        alone = drawing(["p1", "p2", "p3"])
        alone.say("p2", "apple")
        crowd = drawing(["p1", "p2", "p3"])
        crowd.join("p7", "p8", "p9")  # accounts that never guess
        crowd.say("p2", "apple")
        crowd.leave("p3")  # and one that leaves before the end
        for table in (alone, crowd):
            table.tick(T0 + 80)
        self.assertEqual(alone.game.scores["p1"], crowd.game.scores["p1"])
        self.assertEqual(crowd.game.scores["p1"], 220)

    def test_nobody_guessed(self) -> None:
        table = drawing()
        effects = table.tick(T0 + 80)
        self.assertEqual(of_type(effects, ScoreSet), [ScoreSet("p1", 0)])
        self.assertEqual(one_frame(effects, "game.turn_end")["points"].get("p1"), 0)

    def test_totals_run_over_turns(self) -> None:
        table = drawing(["p1", "p2"])
        table.say("p2", "apple")  # everyone guessed: the turn ends, p1 gets 220
        table.advance(5)
        self.assertEqual(table.drawers, [(1, "p1"), (1, "p2")])
        table.offer("cat")
        table.advance(20)
        effects = table.say("p1", "CAT")
        self.assertEqual(of_type(effects, ScoreSet), [ScoreSet("p1", 405), ScoreSet("p2", 405)])
        self.assertEqual(table.game.scores, {"p1": 405, "p2": 405})

    def test_a_guesser_who_left_still_counts_for_the_drawer(self) -> None:
        table = drawing(["p1", "p2", "p3", "p4"])
        table.say("p2", "apple")
        table.leave("p2")
        table.tick(T0 + 61)
        self.assertNotIn("p2", table.game.order)  # gone for 60 s: out of the play order
        effects = table.tick(T0 + 80)
        self.assertIn(ScoreSet("p1", 220), effects)

    def test_a_kicked_guesser_still_counts_for_the_drawer(self) -> None:
        table = drawing(["p1", "p2", "p3", "p4", "p5"])
        table.say("p2", "apple")
        for voter in ("p3", "p4", "p5"):
            table.kick(voter, "p2")
        self.assertNotIn("p2", table.game.order)
        effects = table.tick(T0 + 80)
        self.assertIn(ScoreSet("p1", 220), effects)
        self.assertEqual(table.game.scores["p2"], 220)


class TurnEndTests(unittest.TestCase):
    """A turn ends when every connected guesser has guessed, when time is up, or when the
    drawer has been gone 10 s; the next begins 5 s later; each round every player draws once."""

    def assertEnded(self, effects: list, word: str | None, reason: str) -> None:
        self.assertIn(TurnEnded(word), effects)
        frame = one_frame(effects, "game.turn_end")
        self.assertEqual((frame["word"], frame["drawer"], frame["reason"]), (word, "p1", reason))
        self.assertEqual(frames(effects, "game.turn_end")[0].users, None)
        # Everyone who played the turn is in the reveal, with what they scored in it.
        playing = {p["user"] for p in frame["players"]} - {"p1"}
        self.assertLessEqual(playing, set(frame["points"]))

    def test_everyone_guessed(self) -> None:
        table = drawing(["p1", "p2", "p3"])
        table.advance(3)
        self.assertEqual(of_type(table.say("p2", "apple"), TurnEnded), [])
        self.assertEnded(table.say("p3", "apple"), "apple", "guessed")
        self.assertEqual(table.game.next_wakeup(), T0 + 8)
        self.assertEqual(table.tick(T0 + 7.9), [])
        self.assertEqual(of_type(table.tick(T0 + 8), TurnBegan), [TurnBegan(2, 1, "p2")])

    def test_guessers_who_left_do_not_hold_the_turn(self) -> None:
        table = drawing(["p1", "p2", "p3", "p4"])
        table.leave("p3")
        table.say("p2", "apple")
        self.assertEnded(table.leave("p4"), "apple", "guessed")

    def test_time_up(self) -> None:
        table = drawing()
        self.assertEqual(of_type(table.tick(T0 + 79.99), TurnEnded), [])
        effects = table.tick(T0 + 80)
        self.assertEnded(effects, "apple", "time_up")
        self.assertEqual(table.game.phase, TURN_END)
        reveal = one_frame(effects, "game.turn_end")["points"]
        self.assertEqual(reveal, {"p1": 0, "p2": 0, "p3": 0, "p4": 0})

    def test_drawer_gone_while_drawing(self) -> None:
        table = drawing()
        table.advance(5)
        away = one_frame(table.leave("p1"), "game.players")
        self.assertEqual(away["drawer_away_ms"], 10_000)
        self.assertEqual(table.game.view("p2", T0 + 9)["drawer_away_ms"], 6_000)
        self.assertEqual(table.game.next_wakeup(), T0 + 15)
        self.assertEqual(of_type(table.tick(T0 + 14.9), TurnEnded), [])
        self.assertEnded(table.tick(T0 + 15), "apple", "drawer_left")

    def test_drawer_gone_while_choosing(self) -> None:
        table = Table()
        table.advance(1)
        table.leave("p1")
        self.assertEnded(table.tick(T0 + 11), None, "drawer_left")
        self.assertEqual(of_type(table.tick(T0 + 16), TurnBegan), [TurnBegan(2, 1, "p2")])

    def test_drawer_back_in_time(self) -> None:
        table = drawing()
        table.advance(5)
        table.leave("p1")
        table.advance(9)
        back = one_frame(table.join("p1"), "game.players")
        self.assertNotIn("drawer_away_ms", back)
        self.assertEqual(table.tick(T0 + 16), [])
        self.assertEqual(table.game.phase, DRAWING)

    def test_each_player_draws_once_a_round_in_order(self) -> None:
        table = Table(["p2", "p1", "p3"], rounds=2)
        table.play_out()
        self.assertEqual([d for _, d in table.drawers], ["p2", "p1", "p3"] * 2)
        self.assertEqual([r for r, _ in table.drawers], [1, 1, 1, 2, 2, 2])
        self.assertEqual(len(of_type(table.log, GameFinished)), 1)


class GameEndTests(unittest.TestCase):
    """The game ends after the last turn of the last round, or when fewer than two players
    have been connected for 60 s: GameFinished (best first, winners) and a game.over frame."""

    def test_after_the_last_turn(self) -> None:
        table = drawing(["p1", "p2", "p3"])
        table.say("p2", "apple")
        effects = table.tick(T0 + 80) + table.wake_until(FINISHED)
        self.assertEqual(table.drawers, [(1, "p1"), (1, "p2"), (1, "p3")])
        standings = [("p1", 220), ("p2", 220), ("p3", 0)]
        winners = ["p1", "p2"]
        self.assertEqual(of_type(effects, GameFinished), [GameFinished(standings, winners)])
        over = one_frame(effects, "game.over")
        self.assertEqual(over["scores"], [{"user": u, "points": p} for u, p in standings])
        self.assertEqual(over["winners"], winners)
        self.assertEqual(table.game.view("p3", table.now)["winners"], winners)
        self.assertIsNone(table.game.next_wakeup())
        self.assertEqual(table.tick(T0 + 10_000), [])

    def test_ties_share_the_win(self) -> None:
        table = drawing(["p1", "p2"])
        table.say("p2", "apple")
        table.advance(5)
        table.offer("cat")
        effects = table.say("p1", "cat") + table.wake_until(FINISHED)
        self.assertEqual(of_type(effects, GameFinished)[0].winners, ["p1", "p2"])
        self.assertEqual(one_frame(effects, "game.over")["winners"], ["p1", "p2"])

    def test_a_kicked_player_is_not_ranked(self) -> None:
        table = drawing(["p1", "p2", "p3"])
        table.say("p2", "apple")  # p2 leads
        table.kick("p1", "p2")  # the starter removes p2
        effects = table.wake_until(FINISHED)
        finished = of_type(effects, GameFinished)[0]
        self.assertNotIn("p2", [u for u, _ in finished.standings])
        self.assertEqual(finished.winners, ["p1"])
        self.assertNotIn("p2", [s["user"] for s in one_frame(effects, "game.over")["scores"]])
        self.assertEqual(table.game.scores["p2"], 220)  # the running total stays as it was

    def test_alone_for_a_minute(self) -> None:
        table = drawing(["p1", "p2", "p3"], draw_seconds=240)
        table.advance(10)
        table.leave("p2", "p3")
        self.assertEqual(table.game.next_wakeup(), T0 + 70)
        table.tick(T0 + 69.9)
        self.assertEqual(table.game.phase, DRAWING)
        effects = table.tick(T0 + 70)
        self.assertEqual(table.game.phase, FINISHED)
        kinds = [type(e) for e in effects if isinstance(e, TurnEnded | GameFinished)]
        self.assertEqual(kinds, [TurnEnded, GameFinished])
        self.assertEqual(one_frame(effects, "game.turn_end")["word"], "apple")
        self.assertEqual(one_frame(effects, "game.over")["type"], "game.over")

    def test_back_in_time_the_game_goes_on(self) -> None:
        table = drawing(["p1", "p2", "p3"], draw_seconds=240)
        table.advance(10)
        table.leave("p2", "p3")
        table.advance(50)
        table.join("p3")
        table.tick(T0 + 100)
        self.assertEqual(table.game.phase, DRAWING)


class PresenceTests(unittest.TestCase):
    """Leavers keep place and points 60 s, then leave the play order (points stay); late
    joiners guess at once and draw later in the round; absent drawers are skipped."""

    def test_gone_for_a_minute(self) -> None:
        table = drawing()
        table.say("p2", "apple")
        table.advance(1)
        table.leave("p2")
        self.assertEqual(table.game.connected["p2"], False)
        table.tick(T0 + 60.9)
        self.assertIn("p2", table.game.order)
        effects = table.tick(T0 + 61)
        self.assertEqual(table.game.order, ["p1", "p3", "p4"])
        self.assertEqual(table.game.scores["p2"], 220)
        self.assertNotIn("p2", [p["user"] for p in one_frame(effects, "game.players")["players"]])

    def test_back_in_time_keeps_the_place(self) -> None:
        table = drawing()
        table.leave("p2")
        table.advance(30)
        table.join("p2")
        table.tick(T0 + 70)
        self.assertEqual(table.game.order, ["p1", "p2", "p3", "p4"])
        self.assertTrue(table.game.connected["p2"])

    def test_a_removed_player_comes_back_with_their_points(self) -> None:
        table = drawing(draw_seconds=240)
        table.say("p2", "apple")
        table.leave("p2")
        table.tick(T0 + 61)
        effects = table.join("p2")
        self.assertEqual(table.game.order, ["p1", "p3", "p4", "p2"])
        self.assertEqual(of_type(effects, ScoreSet), [])
        with self.assertRaises(GameError):  # already guessed this turn: no second points
            table.say("p2", "apple")
        self.assertEqual(table.game.scores["p2"], 220)

    def test_late_joiners_guess_now_and_draw_later(self) -> None:
        table = drawing(["p1", "p2", "p3"])
        effects = table.join("p9")
        self.assertEqual(of_type(effects, ScoreSet), [ScoreSet("p9", 0)])
        self.assertEqual(table.game.order, ["p1", "p2", "p3", "p9"])
        self.assertEqual(table.say("p9", "apple")[0], ScoreSet("p9", 220))
        table.say("p2", "apple")
        self.assertEqual(table.game.phase, DRAWING)  # p3 has not guessed
        table.play_out()
        self.assertEqual(table.drawers, [(1, "p1"), (1, "p2"), (1, "p3"), (1, "p9")])

    def test_absent_players_are_skipped(self) -> None:
        table = drawing(["p1", "p2", "p3"], rounds=2)
        table.advance(70)
        table.leave("p2")  # gone, but not yet out of the play order when their turn comes
        table.wake_until(TURN_END)
        table.wake()
        self.assertEqual(table.drawers[-1], (1, "p3"))
        table.join("p2")
        table.play_out()
        self.assertEqual([d for _, d in table.drawers], ["p1", "p3", "p1", "p2", "p3"])

    def test_beyond_max_players_one_watches(self) -> None:
        table = Table(USERS[:12])
        table.offer("apple")
        effects = table.join("p13")
        self.assertEqual((of_type(effects, ScoreSet), len(table.game.order)), ([], 12))
        self.assertEqual(set(table.say("p13", "what a crowd in here")[0].readers), {"p1", "p13"})
        self.assertEqual(of_type(table.say("p13", "apple"), ScoreSet), [])

    def test_a_game_of_few_players_leaves_the_rest_watching(self) -> None:
        table = Table(["p1", "p2", "p3", "p4"], max_players=3)
        self.assertEqual(table.game.order, ["p1", "p2", "p3"])
        table.join("p5")
        self.assertEqual(table.game.order, ["p1", "p2", "p3"])
        table.leave("p3")
        table.tick(T0 + 61)
        table.presence(["p1", "p2", "p4", "p5"])
        self.assertEqual(table.game.order, ["p1", "p2", "p4"])


class KickTests(unittest.TestCase):
    """A majority of the connected players (at least 2 votes) removes a player for good."""

    def test_votes_then_kick(self) -> None:
        table = drawing(["p1", "p2", "p3", "p4", "p5"])
        vote = one_frame(table.kick("p2", "p3"), "game.kick_vote")
        self.assertEqual(
            vote,
            {"type": "game.kick_vote", "user": "p3", "votes": 1, "needed": 3, "ms_left": 60_000},
        )
        self.assertEqual(one_frame(table.kick("p2", "p3"), "game.kick_vote")["votes"], 1)
        self.assertEqual(one_frame(table.kick("p4", "p3"), "game.kick_vote")["votes"], 2)
        table.say("p3", "apple")
        table.kick("p5", "p2")
        effects = table.kick("p5", "p3")
        self.assertEqual(one_frame(effects, "game.kicked"), {"type": "game.kicked", "user": "p3"})
        self.assertNotIn("p3", table.game.order)
        self.assertEqual(table.game.scores["p3"], 220)
        self.assertEqual(of_type(table.join("p3"), ScoreSet), [])
        self.assertNotIn("p3", table.game.order)
        self.assertEqual(set(table.say("p3", "hi")[0].readers), {"p1", "p3"})
        with self.assertRaises(GameError):
            table.say("p3", "the apple")

    def test_two_players_cannot_kick(self) -> None:
        table = Table(["p1", "p2"])
        vote = one_frame(table.kick("p2", "p1"), "game.kick_vote")
        self.assertEqual((vote["votes"], vote["needed"]), (1, 2))
        self.assertIn("p1", table.game.order)

    def test_the_starter_removes_at_once(self) -> None:
        table = drawing(["p1", "p2", "p3", "p4", "p5"])
        effects = table.kick("p1", "p4")
        self.assertEqual(one_frame(effects, "game.kicked"), {"type": "game.kicked", "user": "p4"})
        self.assertNotIn("p4", table.game.order)
        self.assertEqual(table.game.view(None, table.now)["starter"], "p1")
        # Anyone else's is a vote.
        self.assertEqual(one_frame(table.kick("p2", "p1"), "game.kick_vote")["votes"], 1)
        self.assertIn("p1", table.game.order)

    def test_votes_run_out(self) -> None:
        table = drawing(["p1", "p2", "p3", "p4", "p5"], draw_seconds=240)
        table.kick("p2", "p5")
        table.advance(61)
        table.kick("p3", "p5")
        vote = one_frame(table.kick("p4", "p5"), "game.kick_vote")
        self.assertEqual(vote["votes"], 2)  # p2's vote has run out
        self.assertIn("p5", table.game.order)

    def test_votes_of_those_gone_do_not_count(self) -> None:
        table = drawing(["p1", "p2", "p3", "p4", "p5"])
        table.kick("p2", "p4")
        table.kick("p3", "p4")
        table.leave("p2")
        vote = one_frame(table.kick("p5", "p4"), "game.kick_vote")
        self.assertEqual((vote["votes"], vote["needed"]), (2, 3))

    def test_refused_votes(self) -> None:
        table = Table(["p1", "p2", "p3"])
        table.leave("p3")
        for voter, target, code in (
            ("p9", "p2", "not_player"),
            ("p3", "p2", "not_player"),
            ("p1", "p9", "bad_kick"),
            ("p1", 7, "bad_kick"),
            ("p1", "p1", "bad_kick"),
        ):
            with self.assertRaises(GameError) as caught:
                table.kick(voter, target)
            self.assertEqual(caught.exception.code, code, (voter, target))

    def test_a_kicked_drawer_turn_counts_for_nobody(self) -> None:
        table = drawing()
        table.say("p2", "apple")
        table.kick("p2", "p1")
        table.kick("p3", "p1")
        effects = table.kick("p4", "p1")
        self.assertEqual(of_type(effects, ScoreSet), [ScoreSet("p2", 0)])
        self.assertIn(TurnEnded("apple", shown=False), effects)
        turn_end = one_frame(effects, "game.turn_end")
        self.assertEqual(turn_end["points"], {"p2": 0, "p3": 0, "p4": 0})
        self.assertEqual(turn_end["reason"], "drawer_kicked")
        self.assertEqual(table.game.scores, {"p1": 0, "p2": 0, "p3": 0, "p4": 0})
        self.assertEqual(of_type(table.advance(5), TurnBegan), [TurnBegan(2, 1, "p2")])


class SpectatorTests(unittest.TestCase):
    """A player may sit out (points kept, not joined again by connecting) and come back."""

    def test_sit_out_and_come_back(self) -> None:
        table = drawing(["p1", "p2", "p3", "p4"])
        table.say("p3", "apple")
        effects = table.spectate("p3")
        self.assertNotIn("p3", table.game.order)
        self.assertEqual(one_frame(effects, "game.players")["spectators"], ["p3"])
        self.assertEqual(table.game.scores["p3"], 220)
        table.join("p3")  # connecting again does not bring a spectator back
        self.assertNotIn("p3", table.game.order)
        self.assertEqual(table.spectate("p3"), [])
        effects = table.spectate("p3", False)
        self.assertEqual(table.game.order, ["p1", "p2", "p4", "p3"])
        self.assertEqual(of_type(effects, ScoreSet), [])
        self.assertEqual(table.game.scores["p3"], 220)

    def test_a_watcher_may_sit_out_before_joining(self) -> None:
        table = Table(["p1", "p2"])
        table.spectate("p9")
        table.join("p9")
        self.assertNotIn("p9", table.game.order)
        table.spectate("p9", False)
        self.assertIn("p9", table.game.order)

    def test_the_drawer_sitting_out_ends_the_turn(self) -> None:
        table = drawing(["p1", "p2", "p3"])
        effects = table.spectate("p1")
        self.assertEqual(one_frame(effects, "game.turn_end")["reason"], "drawer_left")
        self.assertEqual(table.game.phase, TURN_END)

    def test_a_game_left_to_one_player_ends(self) -> None:
        table = drawing(["p1", "p2"], draw_seconds=240)
        table.spectate("p2")
        table.advance(60)
        self.assertEqual(table.game.phase, FINISHED)


class RatingTests(unittest.TestCase):
    """Anyone but the drawer likes or dislikes the drawing, once each (changeable), while it
    is drawn and at the end of its turn."""

    def test_ratings(self) -> None:
        table = drawing()
        effects = table.rate("p2")
        self.assertEqual(
            one_frame(effects, "game.rating"),
            {"type": "game.rating", "turn": 1, "likes": 1, "dislikes": 0},
        )
        self.assertEqual(of_type(effects, TurnRated), [TurnRated(1, 0)])
        self.assertEqual(table.rate("p2"), [])  # the same again: nothing changes
        table.rate("watcher", False)
        effects = table.rate("p2", False)
        self.assertEqual(of_type(effects, TurnRated), [TurnRated(0, 2)])
        view = table.game.view("p2", table.now)
        self.assertEqual((view["rating"], view["rated"]), ({"likes": 0, "dislikes": 2}, "dislike"))
        table.tick(T0 + 80)
        self.assertEqual(of_type(table.rate("p3"), TurnRated), [TurnRated(1, 2)])
        table.advance(5)  # the next turn: nothing to rate until it is drawn
        with self.assertRaises(GameError) as caught:
            table.rate("p3")
        self.assertEqual(caught.exception.code, "bad_rating")
        self.assertNotIn("rating", table.game.view("p3", table.now))

    def test_refused_ratings(self) -> None:
        table = drawing()
        for user, like in (("p1", True), ("p2", "yes"), ("p2", None)):
            with self.assertRaises(GameError) as caught:
                table.rate(user, like)
            self.assertEqual(caught.exception.code, "bad_rating", (user, like))


class WakeupTests(unittest.TestCase):
    """next_wakeup() is when tick must run next; a tick then always makes progress."""

    def test_next_wakeup(self) -> None:
        table = Table(["p1", "p2", "p3"], draw_seconds=90)
        self.assertEqual(table.game.next_wakeup(), T0 + 15)
        table.offer("apple")
        self.assertEqual(table.game.next_wakeup(), T0 + 30)  # the first hint
        table.advance(25)
        table.leave("p1")
        self.assertEqual(table.game.next_wakeup(), T0 + 30)
        table.advance(5)
        self.assertEqual(table.game.next_wakeup(), T0 + 35)  # the drawer gone for 10 s
        table.join("p1")
        table.leave("p3")
        self.assertEqual(table.game.next_wakeup(), T0 + 60)

    def test_whole_games_through_next_wakeup_only(self) -> None:
        for seed in range(25):
            pick = random.Random(seed)
            players = USERS[: pick.randint(2, 12)]
            rounds = pick.randint(1, 3)
            table = Table(
                players, rounds=rounds, draw_seconds=pick.choice([30, 80, 240]), seed=seed
            )
            steps = table.play_out(limit=len(players) * rounds * 6 + 2)
            self.assertEqual(len(table.drawers), len(players) * rounds)
            self.assertGreater(steps, len(players) * rounds * 3)

    def test_a_late_tick_does_all_that_is_due(self) -> None:
        table = drawing()
        table.leave("p3", "p4")
        effects = table.tick(T0 + 79)  # two hints and two removals are due
        self.assertEqual(len(frames(effects, "game.hint")), 2)
        self.assertEqual(table.game.order, ["p1", "p2"])
        self.assertEqual(table.game.next_wakeup(), T0 + 80)


class PersistenceTests(unittest.TestCase):
    """A game restored from the JSON of to_dict() goes on exactly as the original would."""

    def test_the_state_is_json(self) -> None:
        table = drawing()
        table.say("p2", "apple")
        table.leave("p3")
        table.kick("p2", "p4")
        data = table.game.to_dict()
        self.assertEqual(json.loads(json.dumps(data)), data)
        self.assertEqual(Game.from_dict(json.loads(json.dumps(data))).to_dict(), data)

    def test_a_restored_game_goes_on_identically(self) -> None:
        compared = 0
        for seed in range(40):
            monkey = Monkey(seed)
            table = monkey.table()
            fork_at = monkey.pick.randint(0, 120)
            twin = twin_rng = None
            for step in range(3000):
                if table.game.phase == FINISHED:
                    break
                if step == fork_at:
                    twin = Game.from_dict(json.loads(json.dumps(table.game.to_dict())))
                    twin_rng = random.Random()
                    twin_rng.setstate(table.rng.getstate())
                action = monkey.action(table) if step < 300 else ("tick", table.game.next_wakeup())
                outcome = twin_outcome = None
                try:
                    outcome = table.apply(action)
                except GameError as error:
                    outcome = error.code
                if twin is not None:
                    try:
                        twin_outcome = run(twin, twin_rng, (action[0], table.now, *action[2:]))
                    except GameError as error:
                        twin_outcome = error.code
                    self.assertEqual(twin_outcome, outcome, (seed, step, action))
                    self.assertEqual(state_json(twin), state_json(table.game), (seed, step))
                    compared += 1
            self.assertEqual(table.game.phase, FINISHED)
        self.assertGreater(compared, 3000)


class RandomGameTests(unittest.TestCase):
    """Random games with random inputs: every invariant of Table holds after every call, the
    game always finishes, and its result agrees with the scores."""

    def test_random_games(self) -> None:
        seen: dict[str, int] = {}
        for seed in range(80):
            monkey = Monkey(seed)
            table = monkey.table()
            for _ in range(300):
                if table.game.phase == FINISHED:
                    break
                action = monkey.action(table)
                if action[0] == "tick" and action[1] == table.game.next_wakeup():
                    table.wake()
                    continue
                try:
                    table.apply(action)
                except GameError as error:
                    check_refusal(table, action, error)
                if monkey.pick.random() < 0.05:
                    table.restore()
            table.play_out()
            finished = of_type(table.log, GameFinished)
            self.assertEqual(len(finished), 1, seed)
            self.assertEqual(table.turns_begun, table.turns_ended, seed)
            ranked = [i for i in table.game.scores.items() if i[0] not in table.game.kicked]
            self.assertEqual(finished[0].standings, sorted(ranked, key=lambda i: (-i[1], i[0])))
            best = finished[0].standings[0][1]
            self.assertEqual(
                finished[0].winners, [u for u, p in finished[0].standings if p == best and best > 0]
            )
            for kind in ("game.guessed", "game.close", "game.kicked", "game.hint", "game.rating"):
                seen[kind] = seen.get(kind, 0) + len(frames(table.log, kind))
            seen["restricted"] = seen.get("restricted", 0) + sum(
                1 for p in of_type(table.log, Post) if p.readers
            )
            seen["phase"] = seen.get("phase", 0) + (table.game.phase == FINISHED)
        for kind, count in seen.items():
            self.assertGreater(count, 10, kind)


if __name__ == "__main__":
    unittest.main()
