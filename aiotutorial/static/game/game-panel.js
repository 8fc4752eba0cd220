// The channel page's draw-and-guess game: the state the game frames of the page's websocket
// tell, and what the players do, sent back (docs/protocol.md, "The game"). game-view.js and
// overlays.js draw it; board.js paints the drawing; pen.js is the drawer's input, whose
// strokes stroke-outbox.js sends; sounds.js makes its sounds; gallery.js shows past drawings.
//
// The server decides everything; this page shows the state it is told (phase, players, the
// mask or the word when this player knows it, the time left, why a turn ended, who won) and
// keeps the turn's drawing in step with the drawer's: it replays the relayed `game.draw`
// batches in order and, on a gap in their numbers, asks for the drawing again (`game.sync`).
// Times come as milliseconds left and are counted down on the monotonic clock; the wall
// clock is never compared with the server's.

import { find, findAs, plural } from "../lib/dom.js";
import { ERRORS, PROTOCOL } from "../lib/protocol.js";
import { isNumber, isWhole, strings } from "../lib/values.js";
import { Board, Painter, isOp } from "./board.js";
import { GalleryDialog } from "./gallery.js";
import { GameView } from "./game-view.js";
import { Pen } from "./pen.js";
import { overText, reasonText } from "./sentences.js";
import { Sounds } from "./sounds.js";

/** @typedef {import("../lib/socket.js").ChannelSocket} ChannelSocket */
/** @typedef {import("../lib/socket.js").ErrorFrame} ErrorFrame */
/** @typedef {import("../lib/socket.js").SocketClient} SocketClient */

/**
 * A game frame from the server (docs/protocol.md, "The game"): the fields of all of them, each
 * on some; what comes from the network is checked where it is read.
 * @typedef {object} GameFrame
 * @property {string} type
 * @property {number} [game]
 * @property {string} [phase] choosing, drawing, turn_end, finished
 * @property {number} [round]
 * @property {number} [rounds]
 * @property {number} [turn]
 * @property {string | null} [drawer]
 * @property {string} [starter]
 * @property {number} [max_players]
 * @property {unknown} [players]
 * @property {unknown} [spectators]
 * @property {string} [mask]
 * @property {number} [ms_left]
 * @property {{likes?: unknown, dislikes?: unknown}} [rating]
 * @property {string} [rated]
 * @property {number} [drawer_away_ms]
 * @property {unknown} [words]
 * @property {string} [word]
 * @property {Record<string, number>} [points]
 * @property {string} [reason]
 * @property {{user: string, points: number}[]} [scores]
 * @property {unknown} [winners]
 * @property {unknown[]} [strokes]
 * @property {number} [seq]
 * @property {unknown[]} [ops]
 * @property {string} [user]
 * @property {number} [score]
 * @property {unknown} [likes]
 * @property {unknown} [dislikes]
 * @property {number} [votes]
 * @property {number} [needed]
 * @property {unknown} [users]
 */

/** @typedef {{user: string, score: number, guessed: boolean, connected: boolean}} Player */

/**
 * The game as the frames tell it (the last game.state, kept up to date by those after it).
 * @typedef {object} GameState
 * @property {number} game
 * @property {string} phase
 * @property {number} round
 * @property {number} rounds
 * @property {number} turn
 * @property {string | null} drawer
 * @property {string} starter
 * @property {number | null} maxPlayers
 * @property {Player[]} players
 * @property {string[]} spectators
 * @property {string | null} mask
 * @property {{likes: number, dislikes: number}} rating
 * @property {"like" | "dislike" | null} rated
 */

/** @typedef {{game: number, scores: {user: string, points: number}[], winners: string[]}} GameOver */

const TICK_MS = 250;
const SYNC_RETRY_MS = 3000;
const BANNER_MS = 2600;
const URGENT_SECONDS = 10; // the time running out: a sound at 10 s, then each of the last 5
// The error codes only game frames get (docs/protocol.md, "Game error codes").
const GAME_ERRORS = [
  ERRORS.NO_GAME,
  ERRORS.GAME_RUNNING,
  ERRORS.NOT_ENOUGH_PLAYERS,
  ERRORS.BAD_SETTINGS,
  ERRORS.NOT_DRAWER,
  ERRORS.NOT_CHOOSING,
  ERRORS.BAD_CHOICE,
  ERRORS.BAD_STROKE,
  ERRORS.DRAWING_FULL,
  ERRORS.BAD_KICK,
  ERRORS.NOT_PLAYER,
  ERRORS.BAD_RATING,
];
/** @type {Record<string, string>} */
const ERROR_TEXT = {
  [ERRORS.NO_GAME]: "No game is running in this channel.",
  [ERRORS.GAME_RUNNING]: "A game is already running in this channel.",
  [ERRORS.NOT_ENOUGH_PLAYERS]:
    `A game needs at least ${PROTOCOL.game.settings.max_players[0]} players connected to the ` +
    "channel.",
  [ERRORS.NOT_DRAWER]: "Only the drawer can do that, once the word is chosen.",
  [ERRORS.NOT_CHOOSING]: "There is no word to choose right now.",
  [ERRORS.BAD_CHOICE]: "That word is not one of those offered.",
  [ERRORS.BAD_STROKE]: "A stroke was refused; the drawing has been reloaded.",
  [ERRORS.DRAWING_FULL]: "This drawing is as large as a drawing may be: undo does not make room.",
  [ERRORS.BAD_KICK]: "You cannot remove that player.",
  [ERRORS.NOT_PLAYER]: "Only the players of this game can do that.",
  [ERRORS.BAD_RATING]: "You cannot rate this drawing.",
  [ERRORS.RATE_LIMITED]: "That was too fast: wait a moment and try again.",
  [ERRORS.UNAVAILABLE]: "The server could not take that right now; try again.",
  [ERRORS.INTERNAL]: "Something went wrong on our side.",
};
// Refusals after which the drawer's drawing and the server's may differ.
const RESYNC = [ERRORS.BAD_STROKE, ERRORS.RATE_LIMITED, ERRORS.NOT_DRAWER, ERRORS.DRAWING_FULL];

export class GamePanel {
  /**
   * @param {HTMLElement} root the game's section
   * @param {HTMLElement} chatRoot the chat's, whose timeline shows the game's notices
   * @param {ChannelSocket} socket the page's socket
   */
  constructor(root, chatRoot, socket) {
    this.root = root;
    this.chatRoot = chatRoot;
    this.me = chatRoot.dataset.user || "";
    this.socket = socket;
    /** @type {GameState | null} the last game.state, kept up to date by the frames after it */
    this.game = null;
    /** @type {string[] | null} the drawer's choice of words */
    this.words = null;
    /** @type {string | null} the word, once this player knows it (drawing it, guessed it, or
     * ended) */
    this.word = null;
    /** @type {Record<string, number>} the last ended turn's points, every player's (the
     * drawer's included) */
    this.points = {};
    /** @type {string | null} why the last turn ended */
    this.reason = null;
    /** @type {GameOver | null} the last game.over */
    this.over = null;
    this.showStart = false; // the start form over the last podium
    /** @type {Map<string, {votes: number, needed: number, until: number}>} */
    this.votes = new Map();
    /** @type {Set<string>} */
    this.myVotes = new Set();
    /** @type {string[]} */
    this.online = [];
    /** @type {number | null} performance.now() at which the phase's time runs out */
    this.deadline = null;
    /** @type {number | null} performance.now() at which an away drawer's turn ends */
    this.awayUntil = null;
    /** @type {{text: string, until: number} | null} */
    this.banner = null;
    this.seq = 0; // the last stroke batch of the turn applied
    /** @type {number | null} the turn id of the batches applied */
    this.drawTurn = null;
    /** @type {number | null} when game.sync was sent, until a snapshot answers it */
    this.syncing = null;
    this.stateConnection = -1; // the connection that last sent a game.state
    this.readyConnection = -1; // the last connection whose catch-up is over
    /** @type {number | null} the last second of the turn the time's running out was told */
    this.warned = null;
    /** @type {string | null} the turn whose guesses are judged, as the chat was last told */
    this.toldTurn = null;
    /** @type {SocketClient} */
    this.client = socket.client({
      codes: GAME_ERRORS,
      onError: (frame) => this.onError(frame),
    });

    const canvas = findAs(root, "[data-game=canvas]", HTMLCanvasElement);
    this.board = new Board(canvas);
    this.painter = new Painter(this.board);
    this.pen = new Pen({
      canvas,
      tools: find(root, "[data-game=tools]"),
      board: this.board,
      painter: this.painter,
      send: (ops) => this.client.send({ type: "game.draw", ops }),
    });
    this.sounds = new Sounds(findAs(root, "[data-game=mute]", HTMLButtonElement));
    this.view = new GameView(root, {
      start: (settings) => this.client.send({ type: "game.start", ...settings }),
      choose: (index) => this.client.send({ type: "game.choose", index }),
      kick: (user) => this.kick(user),
      rate: (like) => this.rate(like),
      spectate: (on) => this.client.send({ type: "game.spectate", on }),
      announce: (text) => this.announce(text),
      newGame: () => {
        this.showStart = true;
        this.render();
      },
    });
    this.gallery = new GalleryDialog(
      findAs(document, "#gallery", HTMLDialogElement),
      root.dataset.galleryUrl || "",
    );
  }

  start() {
    const socket = this.socket;
    /** @type {Record<string, (frame: GameFrame) => void>} */
    const frames = {
      "game.state": (frame) => this.onState(frame),
      "game.words": (frame) => {
        if (Array.isArray(frame.words)) this.words = frame.words.map(String);
      },
      "game.word": (frame) => {
        if (typeof frame.word === "string") this.word = frame.word;
      },
      "game.hint": (frame) => {
        if (this.game && typeof frame.mask === "string") this.game.mask = frame.mask;
      },
      "game.draw": (frame) => this.onDraw(frame),
      "game.guessed": (frame) => this.onGuessed(frame),
      "game.close": () => this.onClose(),
      "game.players": (frame) => this.onPlayers(frame),
      "game.turn_end": (frame) => this.onTurnEnd(frame),
      "game.rating": (frame) => this.onRating(frame),
      "game.kick_vote": (frame) => this.onKickVote(frame),
      "game.kicked": (frame) => this.onKicked(frame),
      "game.over": (frame) => this.onOver(frame),
      presence: (frame) => {
        if (Array.isArray(frame.users)) this.online = strings(frame.users);
      },
      ready: () => this.onReady(),
    };
    for (const [type, handler] of Object.entries(frames)) {
      socket.on(type, (/** @type {GameFrame} */ frame) => {
        handler(frame);
        // Stroke batches (25 a second) change the board only, which they paint themselves.
        if (type !== "game.draw") this.render();
      });
    }
    socket.onState(() => this.render());
    this.gallery.bind(find(this.root, "[data-game=gallery-open]"));
    setInterval(() => this.tick(), TICK_MS);
    socket.start();
    this.render();
  }

  // -- who is who -----------------------------------------------------------------------------

  get phase() {
    return this.game ? this.game.phase : null;
  }

  isDrawer() {
    return this.game !== null && this.game.drawer === this.me;
  }

  isPlayer() {
    return this.game !== null && this.game.players.some((player) => player.user === this.me);
  }

  isStarter() {
    return this.game !== null && this.game.starter === this.me && this.me !== "";
  }

  isSpectator() {
    return this.game !== null && this.game.spectators.includes(this.me);
  }

  running() {
    return this.game !== null && this.game.phase !== "finished";
  }

  /** Is the socket connected and caught up? */
  get live() {
    return this.socket.state === "live";
  }

  /** Is this frame news (live), rather than the catch-up of a connection? */
  get current() {
    return this.readyConnection === this.socket.connection;
  }

  // -- frames ---------------------------------------------------------------------------------

  /** @param {GameFrame} frame */
  onState(frame) {
    if (!isWhole(frame.game) || typeof frame.phase !== "string") return;
    const previous = this.game;
    const newGame = !previous || previous.game !== frame.game;
    const newTurn = newGame || previous.turn !== frame.turn;
    const newPhase = newTurn || previous.phase !== frame.phase;
    const first = Array.isArray(frame.players) ? frame.players[0] : null;
    const starter =
      typeof frame.starter === "string"
        ? frame.starter
        : typeof first?.user === "string"
          ? first.user
          : "";
    const rounds = isWhole(frame.rounds) ? frame.rounds : 0;
    if (newGame && this.current && frame.phase === "choosing") {
      // Live, not a snapshot on connecting.
      this.notice(
        `${starter || "Someone"} started a game of ${plural(rounds, "round", "rounds")}.`,
        "info",
      );
    }
    this.stateConnection = this.socket.connection;
    this.game = {
      game: frame.game,
      phase: frame.phase,
      round: isWhole(frame.round) ? frame.round : 0,
      rounds,
      turn: isWhole(frame.turn) ? frame.turn : 0,
      drawer: typeof frame.drawer === "string" ? frame.drawer : null,
      starter,
      maxPlayers: isWhole(frame.max_players) ? frame.max_players : null,
      players: [],
      spectators: [],
      mask: typeof frame.mask === "string" ? frame.mask : null,
      rating: { likes: 0, dislikes: 0 },
      rated: frame.rated === "like" || frame.rated === "dislike" ? frame.rated : null,
    };
    if (frame.rating && typeof frame.rating === "object") this.setRating(frame.rating);
    this.setPlayers(frame.players, frame.spectators);
    this.setAway(frame.drawer_away_ms);
    this.deadline = isNumber(frame.ms_left) ? performance.now() + frame.ms_left : null;
    if (newGame) {
      this.votes.clear();
      this.myVotes.clear();
      if (frame.phase !== "finished") {
        this.over = null;
        this.showStart = false;
      }
    }
    if (newTurn) {
      this.words = null;
      this.word = null;
      this.points = {};
      this.reason = null;
      this.warned = null;
      this.painter.clear();
      this.board.reset();
      this.board.flush();
      this.pen.newTurn();
      this.seq = 0;
      this.drawTurn = null;
    }
    if (Array.isArray(frame.words)) this.words = frame.words.map(String);
    if (typeof frame.word === "string") this.word = frame.word;
    if (frame.points && typeof frame.points === "object") this.points = frame.points;
    if (typeof frame.reason === "string") this.reason = frame.reason;
    if (Array.isArray(frame.scores)) this.setOver({ ...frame, scores: frame.scores });
    if (Array.isArray(frame.strokes)) this.replaceDrawing(frame.strokes, frame.seq);
    if (newPhase && this.current) this.turnBegins();
  }

  /** A phase that began now (not one found on connecting): the banner and the sound. */
  turnBegins() {
    const game = this.game;
    this.banner = null;
    if (!game) return;
    if (game.phase === "choosing") {
      if (this.isDrawer()) {
        this.showBanner("Your turn: choose a word");
        this.sounds.play("yourTurn");
      } else {
        this.sounds.play("turn");
      }
    } else if (game.phase === "drawing" && !this.isDrawer()) {
      this.showBanner(`${game.drawer} is drawing`);
    }
  }

  /** @param {string} text */
  showBanner(text) {
    this.banner = { text, until: performance.now() + BANNER_MS };
    this.announce(text);
  }

  /** Said to screen readers (a live region), whatever the eyes are on. */
  /** @param {string} text */
  announce(text) {
    this.view.announce(text);
  }

  /** A snapshot of the turn's drawing (on connecting, or after game.sync). */
  /**
   * @param {unknown[]} strokes
   * @param {unknown} seq
   */
  replaceDrawing(strokes, seq) {
    this.painter.clear();
    this.board.reset();
    this.board.flush();
    this.painter.push(strokes.filter(isOp));
    if (this.isDrawer()) {
      // What this page drew and has not sent yet is still to come: keep showing it.
      this.painter.push(this.pen.outbox.pending());
    }
    this.seq = isWhole(seq) ? seq : 0;
    this.syncing = null;
  }

  /** @param {GameFrame} frame */
  onDraw(frame) {
    if (!this.running() || !Array.isArray(frame.ops) || !isWhole(frame.seq)) return;
    if (this.drawTurn !== null && frame.turn !== this.drawTurn) {
      this.requestSync();
      return;
    }
    if (frame.seq <= this.seq) return; // the snapshot had it already
    if (frame.seq !== this.seq + 1) {
      this.requestSync();
      return;
    }
    this.seq = frame.seq;
    this.drawTurn = isWhole(frame.turn) ? frame.turn : null;
    if (this.isDrawer() && this.pen.sent) return; // this page's own strokes, painted already
    // Painted a slice of time at a time: a flood of batches does not hold the page.
    this.painter.push(frame.ops);
  }

  requestSync() {
    const now = performance.now();
    if (this.syncing !== null && now - this.syncing < SYNC_RETRY_MS) return;
    if (this.client.send({ type: "game.sync" })) this.syncing = now;
  }

  /** @param {GameFrame} frame */
  onGuessed(frame) {
    if (typeof frame.user !== "string" || !this.game) return;
    for (const player of this.game.players) {
      if (player.user === frame.user) {
        player.guessed = true;
        if (isWhole(frame.score)) player.score = frame.score;
      }
    }
    if (frame.user === this.me) {
      // The guess was taken, not posted: the chat will not see it come back.
      this.chatRoot.dispatchEvent(new CustomEvent("chat:taken"));
      this.notice(`You guessed the word! +${frame.points}`, "guessed");
      this.sounds.play("correct");
    } else {
      this.notice(`${frame.user} guessed the word!`, "guessed");
      this.sounds.play("guessed");
    }
  }

  onClose() {
    const guess = this.socket.lastSent("message");
    const text = guess ? `'${guess.content}' is close!` : "Your guess is close!";
    this.notice(text, "close", true);
  }

  /** @param {GameFrame} frame */
  onPlayers(frame) {
    this.setPlayers(frame.players, frame.spectators);
    const wasAway = this.awayUntil !== null;
    this.setAway(frame.drawer_away_ms);
    if (!wasAway && this.awayUntil !== null && this.game?.drawer && !this.isDrawer()) {
      const seconds = Math.ceil((this.awayUntil - performance.now()) / 1000);
      this.announce(`${this.game.drawer} left: the turn ends in ${seconds} s unless they come back.`);
    }
  }

  /** @param {unknown} ms */
  setAway(ms) {
    this.awayUntil = isNumber(ms) && this.running() ? performance.now() + ms : null;
  }

  /** @param {GameFrame} frame */
  onTurnEnd(frame) {
    if (typeof frame.word === "string") this.word = frame.word;
    if (frame.points && typeof frame.points === "object") this.points = frame.points;
    if (typeof frame.reason === "string") this.reason = frame.reason;
    this.setPlayers(frame.players);
    this.awayUntil = null;
    if (this.game) this.game.phase = "turn_end";
    this.pen.setEnabled(false);
    const drawer = typeof frame.drawer === "string" ? frame.drawer : this.game?.drawer;
    if (typeof frame.word !== "string") return;
    const said = `The word was '${frame.word}'.`;
    const why = this.reason === "guessed" ? "" : reasonText(this.reason, drawer, this.me);
    this.notice(why ? `${why} ${said}` : said, "turn-end");
    if (this.reason === "time_up") this.sounds.play("timeUp");
  }

  /** @param {GameFrame} frame */
  onRating(frame) {
    if (!this.game || (Number.isInteger(frame.turn) && frame.turn !== this.game.turn)) return;
    this.setRating(frame);
  }

  /** @param {{likes?: unknown, dislikes?: unknown}} rating */
  setRating(rating) {
    if (!this.game) return;
    this.game.rating = {
      likes: isWhole(rating.likes) ? rating.likes : 0,
      dislikes: isWhole(rating.dislikes) ? rating.dislikes : 0,
    };
  }

  /** @param {GameFrame} frame */
  onKickVote(frame) {
    if (typeof frame.user !== "string") return;
    const ms = isNumber(frame.ms_left) ? frame.ms_left : PROTOCOL.game.kick_vote_ms;
    this.votes.set(frame.user, {
      votes: isWhole(frame.votes) ? frame.votes : 0,
      needed: isWhole(frame.needed) ? frame.needed : 0,
      until: performance.now() + ms,
    });
  }

  /** @param {GameFrame} frame */
  onKicked(frame) {
    if (typeof frame.user !== "string") return;
    this.votes.delete(frame.user);
    this.view.kickDone(frame.user);
    const who = frame.user === this.me ? "You were" : `${frame.user} was`;
    this.notice(`${who} removed from the game.`, "kicked");
  }

  /** @param {GameFrame & {scores: {user: string, points: number}[]}} frame */
  setOver(frame) {
    const scores = frame.scores.filter((entry) => entry && typeof entry.user === "string");
    let winners = Array.isArray(frame.winners) ? strings(frame.winners) : null;
    if (winners === null) {
      // An older server: everyone on the best score above 0.
      const best = scores[0]?.points ?? 0;
      winners = best > 0 ? scores.filter((e) => e.points === best).map((e) => e.user) : [];
    }
    this.over = { game: isWhole(frame.game) ? frame.game : 0, scores, winners };
    return this.over;
  }

  /** @param {GameFrame} frame */
  onOver(frame) {
    const scores = frame.scores;
    if (!Array.isArray(scores)) return;
    const first = !this.over || this.over.game !== frame.game;
    const over = this.setOver({ ...frame, scores });
    this.showStart = false;
    if (this.game && this.game.game === frame.game) this.game.phase = "finished";
    this.deadline = null;
    this.awayUntil = null;
    if (first) this.notice(overText(over), "game-over");
  }

  onReady() {
    this.readyConnection = this.socket.connection;
    if (this.stateConnection !== this.socket.connection && this.running()) {
      // No game.state in this connection's catch-up: the game ended while we were away.
      this.game = null;
      this.deadline = null;
      this.awayUntil = null;
    }
    this.pen.outbox.flushSoon();
  }

  /** @param {ErrorFrame} frame */
  onError(frame) {
    const text =
      (frame.error === ERRORS.BAD_SETTINGS && frame.detail) ||
      ERROR_TEXT[frame.error] ||
      frame.detail ||
      "That was refused.";
    if (frame.error === ERRORS.NOT_DRAWER && this.isDrawer() && this.phase !== "drawing") {
      return; // strokes sent just before the turn ended: nothing to tell
    }
    if (RESYNC.includes(frame.error) && this.isDrawer()) {
      // The server's drawing and this page's may differ now: take the server's.
      this.requestSync();
    }
    this.view.showError(text, frame.error);
  }

  /**
   * @param {unknown} players
   * @param {unknown} [spectators]
   */
  setPlayers(players, spectators) {
    if (!this.game) return;
    if (Array.isArray(players)) {
      this.game.players = players
        .filter((player) => player && typeof player.user === "string")
        .map((player) => ({
          user: player.user,
          score: Number(player.score) || 0,
          guessed: Boolean(player.guessed),
          connected: player.connected !== false,
        }));
    }
    if (Array.isArray(spectators)) {
      this.game.spectators = spectators.filter((user) => typeof user === "string");
    }
  }

  /** A line in the chat's timeline ("bob guessed the word!"). */
  /**
   * @param {string} text
   * @param {string} kind
   * @param {boolean} [only] a notice for this reader only
   */
  notice(text, kind, only = false) {
    this.chatRoot.dispatchEvent(
      new CustomEvent("chat:notice", { detail: { text, kind, private: only } }),
    );
  }

  // -- what the player does -------------------------------------------------------------------

  /** @param {string} user */
  kick(user) {
    if (this.client.send({ type: "game.kick", user })) {
      if (!this.isStarter()) this.myVotes.add(user);
      this.render();
      return true;
    }
    return false;
  }

  /** @param {boolean} like */
  rate(like) {
    if (!this.game || this.client.send({ type: "game.rate", like }) === false) return;
    this.game.rated = like ? "like" : "dislike"; // the counts come back from the server
    this.render();
  }

  // -- time -----------------------------------------------------------------------------------

  tick() {
    const now = performance.now();
    if (this.banner && now >= this.banner.until) {
      this.banner = null;
      this.view.renderBanner(this);
    }
    let expired = false;
    for (const [user, vote] of this.votes) {
      if (now >= vote.until) {
        this.votes.delete(user);
        expired = true;
      }
    }
    if (expired) this.view.renderPlayers(this);
    if (this.running() && this.phase === "drawing" && this.deadline !== null) {
      const seconds = Math.ceil((this.deadline - now) / 1000);
      if (seconds > 0 && seconds <= URGENT_SECONDS && seconds !== this.warned) {
        if (seconds === URGENT_SECONDS || seconds <= 5) this.sounds.play("tick");
        if (seconds === URGENT_SECONDS) this.announce(`${URGENT_SECONDS} seconds left.`);
        this.warned = seconds;
      }
    }
    this.view.renderTimer(this);
  }

  // -- rendering ------------------------------------------------------------------------------

  render() {
    this.pen.setEnabled(this.running() && this.phase === "drawing" && this.isDrawer());
    this.view.render(this);
    // The chat's outbox lets a guess the game refused go once its turn is over.
    const judging = this.running() && (this.phase === "choosing" || this.phase === "drawing");
    const turn = judging && this.game ? `${this.game.game}:${this.game.turn}` : null;
    if (turn !== this.toldTurn) {
      this.toldTurn = turn;
      this.chatRoot.dispatchEvent(new CustomEvent("game:turn", { detail: { turn } }));
    }
  }
}
