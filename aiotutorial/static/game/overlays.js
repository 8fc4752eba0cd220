// The game's overlays on the board (channel.jinja2, [data-panel]): the start form and its
// settings, the drawer's choice of words, "alice is choosing", the end of a turn (why, the
// word, everyone's points), the podium, and the visitor's invitation to log in. One shows at
// a time, chosen from the game's state.

import { element, find, findAs, plural } from "../lib/dom.js";
import { ERRORS, PROTOCOL } from "../lib/protocol.js";
import { names, reasonText, winnersText } from "./sentences.js";

/** @typedef {import("./game-panel.js").GamePanel} GamePanel */

/**
 * What the overlays' controls do (GamePanel's).
 * @typedef {object} OverlayActions
 * @property {(settings: Record<string, unknown>) => boolean} start false when not sent
 * @property {(index: number) => void} choose
 * @property {() => void} newGame the start form over the last podium
 * @property {(text: string) => void} announce said to screen readers
 */

// The server's bounds (aiotutorial/game/settings.py, through the protocol's island): lowest,
// highest, default, of the settings the form has as numbers.
const BOUNDS = PROTOCOL.game.settings;
/** @type {Record<string, [number, number, number]>} */
export const SETTINGS = {};
const NUMBERS = /** @type {const} */ (["rounds", "draw_seconds", "max_players", "word_choices"]);
for (const name of NUMBERS) {
  const [low, high, fallback] = BOUNDS[name];
  SETTINGS[name] = [low, high, fallback ?? low];
}
const LANGUAGES = Object.keys(PROTOCOL.game.languages);
const CUSTOM_WORDS_MAX = PROTOCOL.game.custom_words_max;
const WORD_MAX_CHARS = PROTOCOL.game.word_max_chars;
const WORD_PATTERN = /^[\p{L} -]+$/u;

/**
 * The words of the start form's field: one per line or comma-separated; or an error.
 * @param {string} text
 * @returns {{words: string[], error?: undefined} | {error: string, words?: undefined}}
 */
export function parseCustomWords(text) {
  /** @type {string[]} */
  const words = [];
  for (const raw of text.split(/[\n,]/)) {
    const word = raw.split(/\s+/).filter(Boolean).join(" ").toLowerCase();
    if (!word) continue;
    if (word.length > WORD_MAX_CHARS || !WORD_PATTERN.test(word) || !/\p{L}/u.test(word)) {
      return { error: `"${word}": a word has 1 to ${WORD_MAX_CHARS} letters, spaces or hyphens.` };
    }
    if (!words.includes(word)) words.push(word);
  }
  if (words.length > CUSTOM_WORDS_MAX) return { error: `At most ${CUSTOM_WORDS_MAX} words.` };
  return { words };
}

export class Overlays {
  /**
   * @param {HTMLElement} root the game's section
   * @param {OverlayActions} actions
   */
  constructor(root, actions) {
    this.actions = actions;
    const $ = (/** @type {string} */ name) => find(root, `[data-game=${name}]`);
    /** @type {Map<string, HTMLElement>} */
    this.nodes = new Map();
    for (const panel of root.querySelectorAll("[data-panel]")) {
      if (panel instanceof HTMLElement) this.nodes.set(panel.dataset.panel || "", panel);
    }
    this.form = findAs(root, "[data-game=start-form]", HTMLFormElement);
    this.submit = findAs(this.form, "button[type=submit]", HTMLButtonElement);
    this.hint = $("start-hint");
    this.error = $("start-error");
    this.choices = $("choices");
    this.chooseTime = $("choose-time");
    this.waiting = $("waiting-text");
    this.revealReason = $("reveal-reason");
    this.revealRating = $("reveal-rating");
    this.revealWord = $("reveal-word");
    this.revealPoints = $("reveal-points");
    this.revealNext = $("reveal-next");
    this.podiumTitle = $("podium-title");
    this.podium = $("podium");
    this.podiumRest = $("podium-rest");
    this.newGame = $("new-game");
    /** @type {string | null} */
    this.shown = null;

    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submitStart();
    });
    this.newGame.addEventListener("click", () => {
      actions.newGame();
      this.form.querySelector("input")?.focus();
    });
  }

  /**
   * Which panel the state calls for (null: the board, uncovered).
   * @param {GamePanel} model
   */
  current(model) {
    const game = model.game;
    if (!game || game.phase === "finished") {
      if (!model.me) return "visitor"; // a visitor watches games, starts none
      return model.over && !model.showStart ? "podium" : "start";
    }
    if (game.phase === "choosing") return model.isDrawer() && model.words ? "choose" : "waiting";
    return game.phase === "turn_end" ? "reveal" : null;
  }

  /** @param {GamePanel} model */
  render(model) {
    const name = this.current(model);
    const before = this.shown;
    this.shown = name;
    for (const [panel, node] of this.nodes) node.hidden = panel !== name;
    if (name === "start") this.renderStart(model);
    if (name === "choose") this.renderChoices(model, before !== "choose");
    const lost = document.activeElement === document.body || !document.activeElement;
    if (before === "choose" && name !== "choose" && (lost || this.choices.contains(document.activeElement))) {
      // The words go: the focus goes back to the message box rather than the page's start.
      document.getElementById("message-input")?.focus();
    }
    if (name === "waiting") {
      this.waiting.textContent = model.isDrawer()
        ? "Getting your words…"
        : `${model.game?.drawer} is choosing a word…`;
    }
    if (name === "reveal") this.renderReveal(model);
    if (name === "podium") this.renderPodium(model);
  }

  /**
   * What counts down in the panels, every tick.
   * @param {GamePanel} model
   * @param {number} seconds
   */
  renderTime(model, seconds) {
    if (this.shown === "choose") {
      this.chooseTime.textContent = `${plural(seconds, "second", "seconds")} left to choose`;
    }
    if (this.shown === "reveal" && model.game) {
      const { round, rounds, players, drawer } = model.game;
      const lastTurn = round >= rounds && players.at(-1)?.user === drawer;
      this.revealNext.textContent = lastTurn
        ? "The results are coming…"
        : `Next turn in ${seconds} s`;
    }
  }

  /**
   * A refusal, where the player looks: true if a panel showed it.
   * @param {string} text
   * @param {string} [code]
   */
  showError(text, code = "") {
    if (this.shown === "start") {
      this.error.textContent = text;
      this.error.dataset.code = code;
      this.error.hidden = false;
      this.submit.disabled = false;
      return true;
    }
    if (this.shown === "choose") {
      for (const choice of this.choices.children) {
        if (choice instanceof HTMLButtonElement) choice.disabled = false;
      }
    }
    return false;
  }

  // -- starting a game ------------------------------------------------------------------------

  /** @param {GamePanel} model */
  renderStart(model) {
    const online = new Set(model.online).size;
    if (online >= 2 && this.error.dataset.code === ERRORS.NOT_ENOUGH_PLAYERS) {
      this.error.hidden = true;
    }
    this.hint.textContent =
      online < 2
        ? `${plural(online, "person is", "people are")} here: a game needs at least 2.`
        : `${online} people are here: everyone connected plays (up to the most players).`;
    if (!model.live) this.submit.disabled = true;
    else if (this.error.hidden) this.submit.disabled = false;
  }

  submitStart() {
    const form = this.form;
    this.error.hidden = true;
    /**
     * @param {string} text
     * @param {HTMLElement} [field]
     */
    const refuse = (text, field) => {
      this.error.textContent = text;
      this.error.dataset.code = "";
      this.error.hidden = false;
      field?.focus();
    };
    /** @param {string} name */
    const input = (name) => findAs(form, `[name=${name}]`, HTMLInputElement);
    /** @type {Record<string, number>} */
    const settings = {};
    for (const [name, [low, high, fallback]] of Object.entries(SETTINGS)) {
      const field = input(name);
      const value = field.value.trim() === "" ? fallback : Number(field.value);
      if (!Number.isInteger(value) || value < low || value > high) {
        const label = (field.labels?.[0]?.firstChild?.textContent ?? name).trim();
        const more = field.closest("details");
        if (more) more.open = true;
        refuse(`${label}: a whole number from ${low} to ${high}.`, field);
        return;
      }
      settings[name] = value;
    }
    const customField = findAs(form, "[name=custom_words]", HTMLTextAreaElement);
    const custom = parseCustomWords(customField.value);
    if (custom.error !== undefined) {
      refuse(custom.error, customField);
      return;
    }
    const hints = findAs(form, "[name=hints]", HTMLSelectElement).value;
    const language = findAs(form, "[name=language]", HTMLSelectElement).value;
    const only = input("custom_words_only").checked;
    if (only && custom.words.length < settings.word_choices) {
      refuse(
        `Only your own words: give at least ${settings.word_choices} (the words offered).`,
        customField,
      );
      return;
    }
    const start = {
      ...settings,
      custom_words: custom.words,
      custom_words_only: only,
      hints: hints === "" ? null : Number(hints),
      language: LANGUAGES.includes(language) ? language : "en",
    };
    if (!this.actions.start(start)) {
      refuse("Not connected right now; try again once live.");
      return;
    }
    this.submit.disabled = true; // until the game starts, or the server says why not
  }

  // -- the turn -------------------------------------------------------------------------------

  /**
   * The drawer's words; when they appear, the first one has the focus and a screen reader is
   * told to choose.
   * @param {GamePanel} model
   * @param {boolean} appearing
   */
  renderChoices(model, appearing) {
    const words = model.words || [];
    const shown = [...this.choices.children].map((node) => node.textContent);
    if (shown.join("\n") === words.join("\n") && !appearing) return;
    if (shown.join("\n") !== words.join("\n")) this.buildChoices(words);
    const first = this.choices.firstElementChild;
    if (appearing && first instanceof HTMLElement) {
      first.focus();
      this.actions.announce(`Your turn: choose a word to draw: ${names(words, "or")}.`);
    }
  }

  /** @param {string[]} words */
  buildChoices(words) {
    this.choices.replaceChildren(
      ...words.map((word, index) => {
        const choice = element("button", "word-choice", word);
        choice.type = "button";
        choice.addEventListener("click", () => {
          for (const other of this.choices.children) {
            if (other instanceof HTMLButtonElement) other.disabled = true;
          }
          this.actions.choose(index);
        });
        return choice;
      }),
    );
  }

  /** The end of a turn: why (time's up is told large), the word, every player's points
   * (the drawer's first), the drawing's ratings. */
  /** @param {GamePanel} model */
  renderReveal(model) {
    if (!model.game) return;
    const drawer = model.game.drawer;
    const reason = model.reason || "";
    this.revealReason.textContent = reasonText(reason, drawer, model.me);
    this.revealReason.dataset.reason = reason;
    this.revealReason.hidden = !this.revealReason.textContent;
    this.revealWord.textContent = model.word || "";
    const entries = Object.entries(model.points)
      .filter(([, points]) => Number.isInteger(points))
      .sort(
        (a, b) =>
          Number(b[0] === drawer) - Number(a[0] === drawer) ||
          b[1] - a[1] ||
          a[0].localeCompare(b[0]),
      );
    this.revealPoints.replaceChildren(
      ...entries.map(([user, points]) => {
        const item = element("li", "reveal-item");
        item.dataset.user = user;
        const name = element("span", "reveal-user", user);
        if (user === drawer) {
          item.classList.add("reveal-drawer");
          name.append(element("span", "reveal-role", " (drew)"));
        }
        item.append(name, element("span", "reveal-points-value", `+${points}`));
        return item;
      }),
    );
    const { likes, dislikes } = model.game.rating;
    this.revealRating.hidden = likes + dislikes === 0;
    this.revealRating.textContent = `The drawing: ${plural(likes, "like", "likes")}, ${plural(dislikes, "dislike", "dislikes")}`;
  }

  // -- the end of the game --------------------------------------------------------------------

  /** @param {GamePanel} model */
  renderPodium(model) {
    const scores = model.over?.scores || [];
    const winners = model.over?.winners || [];
    this.podiumTitle.textContent = winnersText(winners);
    // Ties share a rank (what the step says); the steps keep the server's order.
    const rank = (/** @type {{points: number}} */ entry) => 1 + scores.filter((other) => other.points > entry.points).length;
    const slots = [1, 0, 2]; // second, first, third, from left to right
    this.podium.replaceChildren(
      ...slots
        .filter((slot) => scores[slot])
        .map((slot) => {
          const entry = scores[slot];
          const step = element("div", `podium-step podium-${rank(entry)}`);
          step.dataset.place = String(slot + 1);
          step.dataset.rank = String(rank(entry));
          step.dataset.user = entry.user;
          step.toggleAttribute("data-winner", winners.includes(entry.user));
          step.append(
            element("span", "podium-user", entry.user),
            element("span", "podium-points", plural(entry.points, "point", "points")),
            element("span", "podium-block", String(rank(entry))),
          );
          return step;
        }),
    );
    this.podiumRest.replaceChildren(
      ...scores.slice(3).map((entry) => {
        const item = element("li", "podium-rest-item");
        item.dataset.user = entry.user;
        item.append(
          element("span", "podium-user", entry.user),
          element("span", "podium-points", plural(entry.points, "point", "points")),
        );
        return item;
      }),
    );
  }
}
