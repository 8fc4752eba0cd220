// What the game looks like, drawn from its state (game-panel.js holds it): the bar with the
// round, the word or its mask and the time left; the players with their scores, and who sits
// out; the turn's banner, the drawer's absence and the drawing's ratings over the board; the
// overlays (overlays.js); confirming a player's removal; the refusals the server sends.

import { avatarElement } from "../lib/avatar.js";
import { element, find, findAs, icon, plural } from "../lib/dom.js";
import { Overlays } from "./overlays.js";

/** @typedef {import("./game-panel.js").GamePanel} GamePanel */

/**
 * What the view's controls do (GamePanel's), the overlays' included.
 * @typedef {import("./overlays.js").OverlayActions & {
 *   kick: (user: string) => boolean,
 *   rate: (like: boolean) => void,
 *   spectate: (on: boolean) => boolean,
 * }} ViewActions
 */

const ERROR_SHOWN_MS = 6000;
// An eye: sitting out is watching.
const EYE = "M2 12s3.6-6.5 10-6.5S22 12 22 12s-3.6 6.5-10 6.5S2 12 2 12z M12 9a3 3 0 100 6 3 3 0 000-6z";

/**
 * The characters of a mask ("_ p _ _ _": the i-th character is mask[2 * i]).
 * @param {string} mask
 */
export function maskCharacters(mask) {
  const characters = [];
  for (let i = 0; i < mask.length; i += 2) characters.push(mask[i]);
  return characters;
}

/**
 * Letter boxes, with spaces as gaps and hyphens shown; a sentence for screen readers.
 * @param {string} mask
 */
function maskView(mask) {
  const characters = maskCharacters(mask);
  const letters = characters.filter((ch) => ch !== " " && ch !== "-").length;
  const boxes = element("span", "mask-boxes");
  boxes.setAttribute("aria-hidden", "true");
  for (const ch of characters) {
    if (ch === " ") boxes.append(element("span", "mask-gap"));
    else if (ch === "-") boxes.append(element("span", "mask-hyphen", "-"));
    else boxes.append(element("span", "mask-box", ch === "_" ? "" : ch));
  }
  const count = element("span", "mask-count", String(letters));
  count.setAttribute("aria-hidden", "true");
  const spoken = characters.map((ch) =>
    ch === "_" ? "blank" : ch === " " ? "space" : ch === "-" ? "hyphen" : ch,
  );
  const sentence = `The word: ${plural(letters, "letter", "letters")}: ${spoken.join(", ")}`;
  const view = element("span", "mask");
  view.dataset.mask = mask;
  view.append(boxes, count, element("span", "visually-hidden", sentence));
  return view;
}

/** @param {number} until performance.now() */
function secondsLeft(until) {
  return Math.max(0, Math.ceil((until - performance.now()) / 1000));
}

export class GameView {
  /**
   * @param {HTMLElement} root the game's section
   * @param {ViewActions} actions what the controls do
   */
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    const $ = (/** @type {string} */ name) => find(root, `[data-game=${name}]`);
    this.round = $("round");
    this.word = $("word");
    this.timer = $("timer");
    this.playersPanel = $("players-panel");
    this.players = $("players");
    this.spectators = $("spectators");
    this.spectate = findAs(root, "[data-game=spectate]", HTMLButtonElement);
    this.announcer = $("announcer");
    this.canvas = $("canvas");
    this.banner = $("banner");
    this.away = $("away");
    this.rating = $("rating");
    this.error = $("error");
    this.errorText = $("error-text");
    this.kickDialog = findAs(root, "[data-game=kick-dialog]", HTMLDialogElement);
    this.panels = new Overlays(root, actions);
    /** @type {Map<string, HTMLElement>} kept across renders: a focused button stays focused */
    this.playerItems = new Map();
    /** @type {number | undefined} */
    this.errorTimer = undefined;
    /** @type {string | null} */
    this.kickTarget = null;
    /** @type {GamePanel | null} */
    this.model = null;
    $("dismiss").addEventListener("click", () => {
      this.error.hidden = true;
    });
    for (const button of this.rating.querySelectorAll("[data-rate]")) {
      if (!(button instanceof HTMLElement)) continue;
      button.addEventListener("click", () => actions.rate(button.dataset.rate === "like"));
    }
    this.spectate.addEventListener("click", () => actions.spectate(false));
    this.kickDialog.addEventListener("close", () => {
      const target = this.kickTarget;
      this.kickTarget = null;
      if (this.kickDialog.returnValue === "kick" && target) this.actions.kick(target);
      const kick = target ? this.playerItems.get(target)?.querySelector(".player-kick") : null;
      if (kick instanceof HTMLElement) kick.focus();
    });
  }

  /** @param {GamePanel} model */
  render(model) {
    this.model = model;
    const running = model.running();
    const game = model.game;
    this.root.dataset.phase = game ? game.phase : "idle";
    this.root.dataset.turn = running && game ? String(game.turn) : "";
    this.root.dataset.drawer = running && game?.drawer ? game.drawer : "";
    this.panels.render(model);
    this.renderBar(model);
    this.renderPlayers(model);
    this.renderBanner(model);
    this.renderRating(model);
    this.renderTimer(model);
    const drawer = running ? game?.drawer : null;
    this.canvas.setAttribute(
      "aria-label",
      drawer
        ? `The drawing board: ${drawer === model.me ? "your" : `${drawer}'s`} drawing`
        : "The drawing board",
    );
  }

  /** @param {string} text */
  announce(text) {
    // The same words twice are spoken twice: the region is emptied first.
    this.announcer.textContent = "";
    requestAnimationFrame(() => {
      this.announcer.textContent = text;
    });
  }

  /** The time left, counted down on the monotonic clock from the server's ``ms_left``. */
  /** @param {GamePanel} model */
  renderTimer(model) {
    this.renderAway(model);
    const timer = this.timer;
    if (model.deadline === null || !model.running() || !model.game) {
      timer.hidden = true;
      return;
    }
    const seconds = secondsLeft(model.deadline);
    timer.hidden = false;
    if (timer.textContent !== String(seconds)) timer.textContent = String(seconds);
    timer.classList.toggle("urgent", model.game.phase === "drawing" && seconds <= 10);
    timer.setAttribute("aria-label", `${plural(seconds, "second", "seconds")} left`);
    this.panels.renderTime(model, seconds);
  }

  /** While the drawer is away in their turn: until when it waits for them. */
  /** @param {GamePanel} model */
  renderAway(model) {
    const away = this.away;
    const drawer = model.game?.drawer;
    if (model.awayUntil === null || !drawer || !model.running()) {
      away.hidden = true;
      return;
    }
    const seconds = secondsLeft(model.awayUntil);
    const text =
      drawer === model.me
        ? `You are away: your turn ends in ${seconds} s unless you come back.`
        : `${drawer} left: the turn ends in ${seconds} s unless they come back.`;
    if (away.textContent !== text) away.textContent = text;
    away.hidden = false;
  }

  /** @param {GamePanel} model */
  renderBanner(model) {
    // The drawer's absence says more than "alice is drawing".
    const banner = model.awayUntil === null ? model.banner : null;
    this.banner.hidden = !banner;
    if (banner && this.banner.textContent !== banner.text) this.banner.textContent = banner.text;
  }

  /** Likes and dislikes: anyone but the drawer rates while the drawing is drawn and shown;
   * everyone, the drawer too, sees the counts. */
  /** @param {GamePanel} model */
  renderRating(model) {
    const game = model.game;
    const shown =
      model.running() &&
      game !== null &&
      (game.phase === "drawing" || game.phase === "turn_end") &&
      !!model.me;
    this.rating.hidden = !shown;
    if (!shown || !game) return;
    const canRate = game.drawer !== model.me && model.live;
    find(this.rating, "[data-game=likes]").textContent = String(game.rating.likes);
    find(this.rating, "[data-game=dislikes]").textContent = String(game.rating.dislikes);
    this.rating.toggleAttribute("data-drawer", game.drawer === model.me);
    for (const button of this.rating.querySelectorAll("[data-rate]")) {
      if (!(button instanceof HTMLButtonElement)) continue;
      button.disabled = !canRate;
      button.setAttribute("aria-pressed", String(game.rated === button.dataset.rate));
    }
  }

  /**
   * @param {string} text
   * @param {string} code
   */
  showError(text, code) {
    if (this.panels.showError(text, code)) return;
    this.errorText.textContent = text;
    this.error.hidden = false;
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => {
      this.error.hidden = true;
    }, ERROR_SHOWN_MS);
  }

  /** @param {GamePanel} model */
  renderBar(model) {
    const game = model.running() ? model.game : null;
    this.round.textContent = game ? `Round ${game.round} of ${game.rounds}` : "Draw & guess";
    /** @type {string} */
    let key;
    /** @type {() => Node[]} */
    let build;
    if (!game) {
      const text = !model.me ? "Log in to play" : model.over ? "Game over" : "No game running";
      key = `note:${text}`;
      build = () => [element("span", "word-note", text)];
    } else if (game.phase === "choosing") {
      const text = `${model.isDrawer() ? "You are" : `${game.drawer} is`} choosing a word`;
      key = `note:${text}`;
      build = () => [element("span", "word-note", text)];
    } else if (model.word) {
      // The drawer's word; a guesser's once guessed (the others keep the mask); everyone's
      // once the turn is over.
      let label = "The word was ";
      if (game.phase === "drawing") label = model.isDrawer() ? "Draw: " : "You guessed it: ";
      const word = model.word;
      key = `word:${label}${word}`;
      build = () => [element("span", "word-note", label), element("strong", "word-plain", word)];
    } else if (game.mask) {
      key = `mask:${game.mask}`;
      const mask = game.mask;
      build = () => [maskView(mask)];
    } else {
      key = "";
      build = () => [];
    }
    // The word is a live region: replaced only when what it says changes.
    if (this.word.dataset.key !== key) {
      this.word.dataset.key = key;
      this.word.replaceChildren(...build());
    }
  }

  /** @param {GamePanel} model */
  renderPlayers(model) {
    const list = this.players;
    const game = model.game;
    const players = game ? game.players : [];
    this.playersPanel.hidden = players.length === 0;
    const turnOn = game?.phase === "choosing" || game?.phase === "drawing";
    const canKick = model.running() && model.isPlayer() && model.live;
    const starter = model.isStarter();
    const items = players.map((player) => {
      let item = this.playerItems.get(player.user);
      if (!item) {
        item = this.playerItem(player.user, model.me);
        this.playerItems.set(player.user, item);
      }
      const drawing = turnOn && player.user === game?.drawer;
      item.toggleAttribute("data-drawing", drawing);
      item.toggleAttribute("data-guessed", player.guessed);
      item.toggleAttribute("data-away", !player.connected);
      // Ties share a rank: one more than the number of players ahead.
      const rank = 1 + players.filter((other) => other.score > player.score).length;
      find(item, ".player-rank").textContent = `#${rank}`;
      find(item, ".player-score").textContent = String(player.score);
      let status = "";
      if (drawing && !player.connected) status = "left";
      else if (drawing) status = "drawing";
      else if (player.guessed) status = "guessed";
      else if (!player.connected) status = "away";
      const statusNode = find(item, ".player-status");
      statusNode.textContent = status;
      statusNode.hidden = !status;
      const votes = model.votes.get(player.user);
      const votesNode = find(item, ".player-votes");
      votesNode.hidden = !votes || !model.running();
      if (votes) votesNode.textContent = `${votes.votes}/${votes.needed} votes`;
      const sit = item.querySelector(".player-sitout");
      if (sit instanceof HTMLButtonElement) {
        // Not in the middle of one's own turn (it would end it).
        sit.hidden = !model.running() || drawing;
        sit.disabled = !model.live;
      }
      const kick = item.querySelector(".player-kick");
      if (kick instanceof HTMLButtonElement) {
        kick.hidden = !canKick;
        kick.disabled = !starter && model.myVotes.has(player.user);
        const label = starter
          ? `Remove ${player.user} from the game`
          : `Vote to remove ${player.user} from the game`;
        kick.setAttribute("aria-label", label);
        kick.title = label;
      }
      return item;
    });
    const same =
      list.children.length === items.length && items.every((item, i) => list.children[i] === item);
    if (!same) list.replaceChildren(...items);

    const spectators = game && model.running() ? game.spectators : [];
    this.spectators.hidden = spectators.length === 0;
    this.spectators.textContent = spectators.length ? `Watching: ${spectators.join(", ")}` : "";
    // Who sits out comes back with this (one sits out with the button on one's card).
    this.spectate.hidden = !model.running() || !model.isSpectator();
    this.spectate.disabled = !model.live;
  }

  /**
   * @param {string} user
   * @param {string} me
   */
  playerItem(user, me) {
    const item = element("li", "player");
    item.dataset.user = user;
    const name = element("span", "player-name", user);
    name.title = user;
    name.prepend(avatarElement(user, "avatar-xs"));
    if (user === me) name.append(element("span", "you", " (you)"));
    item.append(
      element("span", "player-rank"),
      name,
      element("span", "player-score"),
      element("span", "player-status"),
      element("span", "player-votes"),
    );
    if (user !== me) {
      const kick = element("button", "player-action player-kick", "✕");
      kick.type = "button";
      kick.setAttribute("aria-haspopup", "dialog");
      kick.addEventListener("click", () => this.confirmKick(user));
      item.append(kick);
    } else {
      // Where the others' cards have their ✕, one's own has "sit out".
      const sit = element("button", "player-action player-sitout");
      sit.append(icon(EYE));
      sit.type = "button";
      sit.dataset.game = "sit-out";
      sit.setAttribute("aria-label", "Sit out: watch without playing (your points stay)");
      sit.title = "Sit out: watch without playing";
      sit.addEventListener("click", () => this.actions.spectate(true));
      item.append(sit);
    }
    return item;
  }

  /** Removing a player is asked first: what it does (a vote, or at once for the game's
   * starter), and how many have voted. */
  /** @param {string} user */
  confirmKick(user) {
    const model = this.model;
    if (!model || !this.kickDialog || this.kickDialog.open) return;
    const $ = (/** @type {string} */ name) => find(this.kickDialog, `[data-game=${name}]`);
    const votes = model.votes.get(user);
    if (model.isStarter()) {
      $("kick-title").textContent = `Remove ${user} from the game?`;
      $("kick-text").textContent =
        `You started this game: ${user} is removed at once, and is not ranked at the end.`;
      $("kick-confirm").textContent = "Remove now";
    } else {
      $("kick-title").textContent = `Vote to remove ${user}?`;
      const count = votes
        ? `${plural(votes.votes, "vote", "votes")} of ${votes.needed} needed so far.`
        : "";
      $("kick-text").textContent =
        `A majority of the players removes ${user} from the game; a vote counts for a minute. ${count}`.trim();
      $("kick-confirm").textContent = "Vote to remove";
    }
    this.kickTarget = user;
    this.kickDialog.returnValue = "";
    this.kickDialog.showModal();
  }

  /** ``user`` was removed: a question about them is moot. */
  /** @param {string} user */
  kickDone(user) {
    if (this.kickTarget === user && this.kickDialog.open) {
      this.kickTarget = null;
      this.kickDialog.close();
    }
    this.playerItems.delete(user);
  }
}
