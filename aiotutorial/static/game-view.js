// What the game looks like, drawn from its state (game.js holds the state): the bar with the
// round, the word or its mask and the time left; the players with their scores; the overlays
// (game-panels.js); the refusals the server sends.

import { element, plural } from "./dom.js";
import { Panels } from "./game-panels.js";

const ERROR_SHOWN_MS = 6000;

/** The characters of a mask ("_ p _ _ _": the i-th character is mask[2 * i]). */
export function maskCharacters(mask) {
  const characters = [];
  for (let i = 0; i < mask.length; i += 2) characters.push(mask[i]);
  return characters;
}

/** Letter boxes, with spaces as gaps and hyphens shown; a sentence for screen readers. */
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

export class GameView {
  /**
   * @param {HTMLElement} root the game's section
   * @param {object} actions what the controls do: kick(user), and Panels' start, choose, newGame
   */
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    const $ = (name) => root.querySelector(`[data-game=${name}]`);
    this.round = $("round");
    this.word = $("word");
    this.timer = $("timer");
    this.players = $("players");
    this.canvas = $("canvas");
    this.error = $("error");
    this.errorText = $("error-text");
    this.panels = new Panels(root, actions);
    this.playerItems = new Map(); // kept across renders: a focused button stays focused
    this.errorTimer = null;
    $("dismiss").addEventListener("click", () => {
      this.error.hidden = true;
    });
  }

  render(model) {
    const running = model.running();
    const game = model.game;
    this.root.dataset.phase = game ? game.phase : "idle";
    this.root.dataset.turn = running ? String(game.turn) : "";
    this.root.dataset.drawer = running && game.drawer ? game.drawer : "";
    this.panels.render(model);
    this.renderBar(model);
    this.renderPlayers(model);
    this.renderTimer(model);
    const drawer = running ? game.drawer : null;
    this.canvas.setAttribute(
      "aria-label",
      drawer
        ? `The drawing board: ${drawer === model.me ? "your" : `${drawer}'s`} drawing`
        : "The drawing board",
    );
  }

  /** The time left, counted down on the monotonic clock from the server's ``ms_left``. */
  renderTimer(model) {
    const timer = this.timer;
    if (model.deadline === null || !model.running()) {
      timer.hidden = true;
      return;
    }
    const seconds = Math.max(0, Math.ceil((model.deadline - performance.now()) / 1000));
    timer.hidden = false;
    if (timer.textContent !== String(seconds)) timer.textContent = String(seconds);
    timer.classList.toggle("urgent", model.game.phase === "drawing" && seconds <= 10);
    timer.setAttribute("aria-label", `${plural(seconds, "second", "seconds")} left`);
    this.panels.renderTime(model, seconds);
  }

  showError(text) {
    if (this.panels.showError(text)) return;
    this.errorText.textContent = text;
    this.error.hidden = false;
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => {
      this.error.hidden = true;
    }, ERROR_SHOWN_MS);
  }

  renderBar(model) {
    const game = model.running() ? model.game : null;
    this.round.textContent = game ? `Round ${game.round} of ${game.rounds}` : "Draw & guess";
    let key;
    let build;
    if (!game) {
      const text = !model.me ? "Log in to play" : model.over ? "Game over" : "No game running";
      key = `note:${text}`;
      build = () => [element("span", "word-note", text)];
    } else if (game.phase === "choosing") {
      const text = `${model.isDrawer() ? "You are" : `${game.drawer} is`} choosing a word`;
      key = `note:${text}`;
      build = () => [element("span", "word-note", text)];
    } else if (model.word && (model.isDrawer() || game.phase !== "drawing")) {
      const label = game.phase === "drawing" ? "Draw: " : "The word was ";
      key = `word:${label}${model.word}`;
      build = () => [
        element("span", "word-note", label),
        element("strong", "word-plain", model.word),
      ];
    } else if (game.mask) {
      key = `mask:${game.mask}`;
      build = () => [maskView(game.mask)];
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

  renderPlayers(model) {
    const list = this.players;
    const players = model.game ? model.game.players : [];
    list.hidden = players.length === 0;
    const turnOn = model.game?.phase === "choosing" || model.game?.phase === "drawing";
    const canKick = model.running() && model.isPlayer();
    const items = players.map((player) => {
      let item = this.playerItems.get(player.user);
      if (!item) {
        item = this.playerItem(player.user, model.me);
        this.playerItems.set(player.user, item);
      }
      const drawing = turnOn && player.user === model.game.drawer;
      item.toggleAttribute("data-drawing", drawing);
      item.toggleAttribute("data-guessed", player.guessed);
      item.toggleAttribute("data-away", !player.connected);
      // Ties share a rank: one more than the number of players ahead.
      const rank = 1 + players.filter((other) => other.score > player.score).length;
      item.querySelector(".player-rank").textContent = `#${rank}`;
      item.querySelector(".player-score").textContent = String(player.score);
      let status = "";
      if (drawing) status = "drawing";
      else if (player.guessed) status = "guessed";
      else if (!player.connected) status = "away";
      const statusNode = item.querySelector(".player-status");
      statusNode.textContent = status;
      statusNode.hidden = !status;
      const votes = model.votes.get(player.user);
      const votesNode = item.querySelector(".player-votes");
      votesNode.hidden = !votes || !model.running();
      if (votes) votesNode.textContent = `${votes.votes}/${votes.needed} votes`;
      const kick = item.querySelector(".player-kick");
      if (kick) {
        kick.hidden = !canKick;
        kick.disabled = model.myVotes.has(player.user);
      }
      return item;
    });
    const same =
      list.children.length === items.length && items.every((item, i) => list.children[i] === item);
    if (!same) list.replaceChildren(...items);
  }

  playerItem(user, me) {
    const item = element("li", "player");
    item.dataset.user = user;
    const name = element("span", "player-name", user);
    if (user === me) name.append(element("span", "you", " (you)"));
    item.append(
      element("span", "player-rank"),
      name,
      element("span", "player-score"),
      element("span", "player-status"),
      element("span", "player-votes"),
    );
    if (user !== me) {
      const kick = element("button", "player-kick", "✕");
      kick.type = "button";
      kick.setAttribute("aria-label", `Vote to remove ${user} from the game`);
      kick.title = `Vote to remove ${user}`;
      kick.addEventListener("click", () => this.actions.kick(user));
      item.append(kick);
    }
    return item;
  }
}
