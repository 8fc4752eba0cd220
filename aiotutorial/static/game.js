// The channel page's draw-and-guess game: the state the game frames of the page's websocket
// tell, and what the players do, sent back (docs/protocol.md, "The game"). game-view.js and
// game-panels.js draw it; board.js paints the drawing; pen.js is the drawer's input;
// sounds.js makes its sounds.
//
// The server decides everything; this page shows the state it is told (phase, players, the
// mask or the word when this player knows it, the time left, why a turn ended, who won) and
// keeps the turn's drawing in step with the drawer's: it replays the relayed `game.draw`
// batches in order and, on a gap in their numbers, asks for the drawing again (`game.sync`).
// Times come as milliseconds left and are counted down on the monotonic clock; the wall
// clock is never compared with the server's.

import { Board, Painter, isOp } from "./board.js";
import { channelSocket } from "./channel.js";
import { plural } from "./dom.js";
import { GalleryDialog } from "./gallery.js";
import { overText, reasonText } from "./game-text.js";
import { GameView } from "./game-view.js";
import { Pen } from "./pen.js";
import { Sounds } from "./sounds.js";

const TICK_MS = 250;
const SYNC_RETRY_MS = 3000;
const BANNER_MS = 2600;
const URGENT_SECONDS = 10; // the time running out: a sound at 10 s, then each of the last 5
// The error codes only game frames get (docs/protocol.md, "Game error codes").
const GAME_ERRORS = [
  "no_game",
  "game_running",
  "not_enough_players",
  "bad_settings",
  "not_drawer",
  "not_choosing",
  "bad_choice",
  "bad_stroke",
  "drawing_full",
  "bad_kick",
  "not_player",
  "bad_rating",
];
const ERROR_TEXT = {
  no_game: "No game is running in this channel.",
  game_running: "A game is already running in this channel.",
  not_enough_players: "A game needs at least 2 players connected to the channel.",
  not_drawer: "Only the drawer can do that, once the word is chosen.",
  not_choosing: "There is no word to choose right now.",
  bad_choice: "That word is not one of those offered.",
  bad_stroke: "A stroke was refused; the drawing has been reloaded.",
  drawing_full: "This drawing is as large as a drawing may be: undo does not make room.",
  bad_kick: "You cannot remove that player.",
  not_player: "Only the players of this game can do that.",
  bad_rating: "You cannot rate this drawing.",
  rate_limited: "That was too fast: wait a moment and try again.",
  unavailable: "The server could not take that right now; try again.",
  internal: "Something went wrong on our side.",
};

class GamePanel {
  constructor(root, chatRoot) {
    this.root = root;
    this.chatRoot = chatRoot;
    this.me = chatRoot.dataset.user || "";
    this.socket = channelSocket(chatRoot);
    this.game = null; // the last game.state, kept up to date by the frames that follow it
    this.words = null; // the drawer's choice of words
    this.word = null; // the word, once this player knows it (drawing it, guessed it, or ended)
    this.points = {}; // the last ended turn's points, every player's (the drawer's included)
    this.reason = null; // why the last turn ended
    this.over = null; // the last game.over: {game, scores, winners}
    this.showStart = false; // the start form over the last podium
    this.votes = new Map(); // user -> {votes, needed, until}
    this.myVotes = new Set();
    this.online = [];
    this.deadline = null; // performance.now() at which the phase's time runs out
    this.awayUntil = null; // performance.now() at which an away drawer's turn ends
    this.banner = null; // {text, until}
    this.seq = 0; // the last stroke batch of the turn applied
    this.drawTurn = null; // the turn id of the batches applied
    this.syncing = null; // when game.sync was sent, until a snapshot answers it
    this.stateConnection = -1; // the connection that last sent a game.state
    this.readyConnection = -1; // the last connection whose catch-up is over
    this.warned = null; // the last second of the turn the time's running out was told
    this.toldTurn = null; // the turn whose guesses are judged, as the chat was last told
    this.client = null;

    const canvas = root.querySelector("[data-game=canvas]");
    this.board = new Board(canvas);
    this.painter = new Painter(this.board);
    this.pen = new Pen({
      canvas,
      tools: root.querySelector("[data-game=tools]"),
      board: this.board,
      painter: this.painter,
      send: (ops) => this.client.send({ type: "game.draw", ops }),
    });
    this.sounds = new Sounds(root.querySelector("[data-game=mute]"));
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
    this.gallery = new GalleryDialog(document.getElementById("gallery"), root.dataset.galleryUrl);
  }

  start() {
    const socket = this.socket;
    this.client = socket.client({ codes: GAME_ERRORS, onError: (frame) => this.onError(frame) });
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
        if (Array.isArray(frame.users)) this.online = frame.users;
      },
      ready: () => this.onReady(),
    };
    for (const [type, handler] of Object.entries(frames)) {
      socket.on(type, (frame) => {
        handler(frame);
        // Stroke batches (25 a second) change the board only, which they paint themselves.
        if (type !== "game.draw") this.render();
      });
    }
    socket.onState(() => this.render());
    this.gallery.bind(this.root.querySelector("[data-game=gallery-open]"));
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

  onState(frame) {
    if (!Number.isInteger(frame.game) || typeof frame.phase !== "string") return;
    const previous = this.game;
    const newGame = !previous || previous.game !== frame.game;
    const newTurn = newGame || previous.turn !== frame.turn;
    const newPhase = newTurn || previous.phase !== frame.phase;
    const starter =
      typeof frame.starter === "string" ? frame.starter : (frame.players?.[0]?.user ?? "");
    if (newGame && this.current && frame.phase === "choosing") {
      // Live, not a snapshot on connecting.
      this.notice(
        `${starter || "Someone"} started a game of ${plural(frame.rounds, "round", "rounds")}.`,
        "info",
      );
    }
    this.stateConnection = this.socket.connection;
    this.game = {
      game: frame.game,
      phase: frame.phase,
      round: frame.round,
      rounds: frame.rounds,
      turn: frame.turn,
      drawer: typeof frame.drawer === "string" ? frame.drawer : null,
      starter,
      maxPlayers: Number.isInteger(frame.max_players) ? frame.max_players : null,
      players: [],
      spectators: [],
      mask: typeof frame.mask === "string" ? frame.mask : null,
      rating: { likes: 0, dislikes: 0 },
      rated: frame.rated === "like" || frame.rated === "dislike" ? frame.rated : null,
    };
    if (frame.rating && typeof frame.rating === "object") this.setRating(frame.rating);
    this.setPlayers(frame.players, frame.spectators);
    this.setAway(frame.drawer_away_ms);
    this.deadline = Number.isFinite(frame.ms_left) ? performance.now() + frame.ms_left : null;
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
    if (Array.isArray(frame.scores)) this.setOver(frame);
    if (Array.isArray(frame.strokes)) this.replaceDrawing(frame.strokes, frame.seq);
    if (newPhase && this.current) this.turnBegins();
  }

  /** A phase that began now (not one found on connecting): the banner and the sound. */
  turnBegins() {
    const game = this.game;
    this.banner = null;
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

  showBanner(text) {
    this.banner = { text, until: performance.now() + BANNER_MS };
    this.announce(text);
  }

  /** Said to screen readers (a live region), whatever the eyes are on. */
  announce(text) {
    this.view.announce(text);
  }

  /** A snapshot of the turn's drawing (on connecting, or after game.sync). */
  replaceDrawing(strokes, seq) {
    this.painter.clear();
    this.board.reset();
    this.board.flush();
    this.painter.push(strokes.filter(isOp));
    if (this.isDrawer()) {
      // What this page drew and has not sent yet is still to come: keep showing it.
      this.painter.push(this.pen.outbox.pending());
    }
    this.seq = Number.isInteger(seq) ? seq : 0;
    this.syncing = null;
  }

  onDraw(frame) {
    if (!this.running() || !Array.isArray(frame.ops) || !Number.isInteger(frame.seq)) return;
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
    this.drawTurn = frame.turn;
    if (this.isDrawer() && this.pen.sent) return; // this page's own strokes, painted already
    // Painted a slice of time at a time: a flood of batches does not hold the page.
    this.painter.push(frame.ops);
  }

  requestSync() {
    const now = performance.now();
    if (this.syncing !== null && now - this.syncing < SYNC_RETRY_MS) return;
    if (this.client.send({ type: "game.sync" })) this.syncing = now;
  }

  onGuessed(frame) {
    if (typeof frame.user !== "string" || !this.game) return;
    for (const player of this.game.players) {
      if (player.user === frame.user) {
        player.guessed = true;
        if (Number.isInteger(frame.score)) player.score = frame.score;
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

  onPlayers(frame) {
    this.setPlayers(frame.players, frame.spectators);
    const wasAway = this.awayUntil !== null;
    this.setAway(frame.drawer_away_ms);
    if (!wasAway && this.awayUntil !== null && this.game?.drawer && !this.isDrawer()) {
      const seconds = Math.ceil(frame.drawer_away_ms / 1000);
      this.announce(`${this.game.drawer} left: the turn ends in ${seconds} s unless they come back.`);
    }
  }

  setAway(ms) {
    this.awayUntil = Number.isFinite(ms) && this.running() ? performance.now() + ms : null;
  }

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

  onRating(frame) {
    if (!this.game || (Number.isInteger(frame.turn) && frame.turn !== this.game.turn)) return;
    this.setRating(frame);
  }

  setRating(rating) {
    this.game.rating = {
      likes: Number.isInteger(rating.likes) ? rating.likes : 0,
      dislikes: Number.isInteger(rating.dislikes) ? rating.dislikes : 0,
    };
  }

  onKickVote(frame) {
    if (typeof frame.user !== "string") return;
    const ms = Number.isFinite(frame.ms_left) ? frame.ms_left : 60000;
    this.votes.set(frame.user, {
      votes: frame.votes,
      needed: frame.needed,
      until: performance.now() + ms,
    });
  }

  onKicked(frame) {
    if (typeof frame.user !== "string") return;
    this.votes.delete(frame.user);
    this.view.kickDone(frame.user);
    const who = frame.user === this.me ? "You were" : `${frame.user} was`;
    this.notice(`${who} removed from the game.`, "kicked");
  }

  setOver(frame) {
    const scores = frame.scores.filter((entry) => entry && typeof entry.user === "string");
    let winners = Array.isArray(frame.winners)
      ? frame.winners.filter((user) => typeof user === "string")
      : null;
    if (winners === null) {
      // An older server: everyone on the best score above 0.
      const best = scores[0]?.points ?? 0;
      winners = best > 0 ? scores.filter((e) => e.points === best).map((e) => e.user) : [];
    }
    this.over = { game: frame.game, scores, winners };
  }

  onOver(frame) {
    if (!Array.isArray(frame.scores)) return;
    const first = !this.over || this.over.game !== frame.game;
    this.setOver(frame);
    this.showStart = false;
    if (this.game && this.game.game === frame.game) this.game.phase = "finished";
    this.deadline = null;
    this.awayUntil = null;
    if (first) this.notice(overText(this.over), "game-over");
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

  onError(frame) {
    const text =
      (frame.error === "bad_settings" && frame.detail) ||
      ERROR_TEXT[frame.error] ||
      frame.detail ||
      "That was refused.";
    if (frame.error === "not_drawer" && this.isDrawer() && this.phase !== "drawing") {
      return; // strokes sent just before the turn ended: nothing to tell
    }
    if (
      ["bad_stroke", "rate_limited", "not_drawer", "drawing_full"].includes(frame.error) &&
      this.isDrawer()
    ) {
      // The server's drawing and this page's may differ now: take the server's.
      this.requestSync();
    }
    this.view.showError(text, frame.error);
  }

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
  notice(text, kind, only = false) {
    this.chatRoot.dispatchEvent(
      new CustomEvent("chat:notice", { detail: { text, kind, private: only } }),
    );
  }

  // -- what the player does -------------------------------------------------------------------

  kick(user) {
    if (this.client.send({ type: "game.kick", user })) {
      if (!this.isStarter()) this.myVotes.add(user);
      this.render();
      return true;
    }
    return false;
  }

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
    const turn = judging ? `${this.game.game}:${this.game.turn}` : null;
    if (turn !== this.toldTurn) {
      this.toldTurn = turn;
      this.chatRoot.dispatchEvent(new CustomEvent("game:turn", { detail: { turn } }));
    }
  }
}

const chatRoot = document.getElementById("chat");
const gameRoot = document.getElementById("game");
if (chatRoot && gameRoot) {
  const panel = new GamePanel(gameRoot, chatRoot);
  panel.start();
}
