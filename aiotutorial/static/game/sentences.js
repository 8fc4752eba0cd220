// The game's sentences that more than one part of the page says: why a turn ended, who won.

import { plural } from "../lib/dom.js";

/**
 * "ann", "ann and bob", "ann, bob and cat" (or "or").
 * @param {string[]} list
 * @param {string} [conjunction]
 */
export function names(list, conjunction = "and") {
  if (list.length <= 1) return list.join("");
  return `${list.slice(0, -1).join(", ")} ${conjunction} ${list.at(-1)}`;
}

/**
 * What ended a turn, in a sentence (game.turn_end's reason).
 * @param {string | null} reason
 * @param {string | null | undefined} drawer
 * @param {string} me
 */
export function reasonText(reason, drawer, me) {
  const mine = drawer === me;
  switch (reason) {
    case "guessed":
      return "Everyone guessed it!";
    case "time_up":
      return "Time's up!";
    case "drawer_left":
      return mine ? "You left: the turn ended." : `${drawer} left: the turn ended.`;
    case "drawer_kicked":
      return mine
        ? "You were removed from the game: no points this turn."
        : `${drawer} was removed from the game: no points this turn.`;
    case "alone":
      return "Not enough players left: the game ends.";
    default:
      return "";
  }
}

/**
 * The game-over line: who won, ties included ({scores, winners} of game.over).
 * @param {{scores: {user: string, points: number}[], winners: string[]}} over
 */
export function overText(over) {
  const winners = over.winners;
  if (winners.length === 0) return "Game over! Nobody scored.";
  const best = over.scores.find((entry) => entry.user === winners[0])?.points ?? 0;
  const points = plural(best, "point", "points");
  return winners.length === 1
    ? `Game over! ${winners[0]} wins with ${points}.`
    : `Game over! ${names(winners)} tie with ${points}.`;
}

/**
 * The podium's title.
 * @param {string[]} winners
 */
export function winnersText(winners) {
  if (winners.length === 0) return "Nobody scored.";
  return winners.length === 1 ? `${winners[0]} wins!` : `A tie: ${names(winners)} win!`;
}
