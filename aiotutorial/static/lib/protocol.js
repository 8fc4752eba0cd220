// The protocol's limits and codes, as the server defines them in Python: read once from the
// JSON data island the layout puts in every page (<script type="application/json"
// id="aiotutorial-protocol">, built by aiotutorial/views/protocol.py). Nothing of it is
// copied here by hand: what the pages need of the server's constants comes from there.

/**
 * A setting's (lowest, highest, default) of ``game.start``; hints' default is null.
 * @typedef {[number, number, number | null]} Bounds
 */

/**
 * The island (views/protocol.py, ``protocol``).
 * @typedef {object} Protocol
 * @property {{ref_max_chars: number, signed_out_close: number, removed_close: number}} socket
 * @property {{
 *   message_max_chars: number, rate_per_second: number, rate_burst: number,
 *   typing_every_ms: number, typing_shown_ms: number, history_page: number,
 *   history_max_page: number, username_min: number, username_max: number,
 * }} chat
 * @property {{
 *   board_width: number, board_height: number, palette: string[], widths: number[],
 *   max_ops: number, max_points: number, max_fills: number,
 *   settings: {rounds: Bounds, draw_seconds: Bounds, max_players: Bounds,
 *              word_choices: Bounds, hints: Bounds},
 *   custom_words_max: number, word_max_chars: number, languages: Record<string, string>,
 *   kick_vote_ms: number,
 * }} game
 * @property {{max: number}} pins
 * @property {{max: number}} reactions
 * @property {{max_per_message: number, max_size: number}} uploads
 * @property {ErrorCodes} errors
 */

/**
 * Every error code a page may see, by the name of its Python constant.
 * @typedef {object} ErrorCodes
 * @property {string} RATE_LIMITED
 * @property {string} MUTED
 * @property {string} BAD_JSON
 * @property {string} BAD_FRAME
 * @property {string} UNKNOWN_TYPE
 * @property {string} UNAVAILABLE
 * @property {string} INTERNAL
 * @property {string} BAD_REF
 * @property {string} SIGN_IN_REQUIRED
 * @property {string} BAD_CONTENT
 * @property {string} EMPTY
 * @property {string} TOO_LONG
 * @property {string} BAD_ID
 * @property {string} NOT_FOUND
 * @property {string} NOT_YOURS
 * @property {string} BAD_REPLY
 * @property {string} BAD_EMOJI
 * @property {string} TOO_MANY_REACTIONS
 * @property {string} DELETED
 * @property {string} EDIT_LOCKED
 * @property {string} BAD_UPLOAD
 * @property {string} UPLOADS_LOCKED
 * @property {string} NOT_DRAWER
 * @property {string} NO_GAME
 * @property {string} GAME_RUNNING
 * @property {string} NOT_ENOUGH_PLAYERS
 * @property {string} BAD_SETTINGS
 * @property {string} BAD_STROKE
 * @property {string} NOT_CHOOSING
 * @property {string} BAD_CHOICE
 * @property {string} NOT_PLAYER
 * @property {string} BAD_KICK
 * @property {string} BAD_RATING
 * @property {string} WORD_IN_CHAT
 * @property {string} TOO_MANY_GUESSES
 * @property {string} DRAWING_FULL
 * @property {string} NOT_PINNABLE
 * @property {string} TOO_MANY_PINS
 */

export const ISLAND_ID = "aiotutorial-protocol";

/** @returns {Protocol} */
function readIsland() {
  const island = document.getElementById(ISLAND_ID);
  if (!island || !island.textContent) {
    throw new Error(`the page has no #${ISLAND_ID}: the layout puts it in every page`);
  }
  return JSON.parse(island.textContent);
}

/** The server's limits and codes. */
export const PROTOCOL = readIsland();
export const ERRORS = PROTOCOL.errors;
