// The channel's gallery: its last finished turns as thumbnails (GET /channels/{name}/gallery),
// and one of them replayed batch by batch, as it was drawn (GET /channels/{name}/gallery/{id}),
// in a dialog. Words and names go in with textContent only.

import { element, find, findAs, icon, plural } from "../lib/dom.js";
import { HttpError, getJson } from "../lib/http.js";
import { fullTime, shortTime } from "../lib/time.js";
import { wholeOr } from "../lib/values.js";
import { Board, boardCanvas, isOp } from "./board.js";

/** @typedef {import("./board.js").Op} Op */

/**
 * A finished turn of ``GET /channels/{name}/gallery``.
 * @typedef {object} Turn
 * @property {number} id
 * @property {string} word
 * @property {string} drawer
 * @property {string} [ended]
 * @property {number} [strokes]
 * @property {number} [likes]
 * @property {number} [dislikes]
 */

/**
 * A finished turn with its drawing (``gallery/{id}``): ``batches`` of operations.
 * @typedef {Turn & {batches?: unknown}} TurnDrawing
 */

const REPLAY_STEP_MS = 40; // as the drawer sent them
const REPLAY_LONGEST_MS = 6000; // a long drawing is replayed faster
const THUMB_FETCHES = 4; // at once

const THUMB =
  "M7 11v9H3.5v-9z M7 11l4.2-7.5c1.4 0 2.3 1 2.3 2.4V9.5h5.3a2 2 0 012 2.4l-1.4 6.5a2 2 0 01-2 1.6H7";

/**
 * A thumb up (or down), and a count.
 * @param {string} className
 * @param {number} count
 * @param {boolean} down
 */
function thumb(className, count, down) {
  const node = element("span", className);
  node.append(icon(THUMB, down ? "down" : ""), String(count));
  return node;
}

/**
 * Thumbs up and down with their counts, as the players rated the drawing.
 * @param {Turn} turn
 */
function ratingView(turn) {
  const likes = wholeOr(turn.likes, 0);
  const dislikes = wholeOr(turn.dislikes, 0);
  const view = element("span", "gallery-rating");
  view.dataset.likes = String(likes);
  view.dataset.dislikes = String(dislikes);
  view.setAttribute(
    "aria-label",
    `${plural(likes, "like", "likes")}, ${plural(dislikes, "dislike", "dislikes")}`,
  );
  view.append(thumb("gallery-likes", likes, false), thumb("gallery-dislikes", dislikes, true));
  for (const part of view.children) part.setAttribute("aria-hidden", "true");
  return view;
}

/**
 * The drawing's batches, each of the operations that follow the protocol.
 * @param {TurnDrawing} turn
 * @returns {Op[][]}
 */
function batchesOf(turn) {
  /** @type {unknown[]} */
  const batches = Array.isArray(turn?.batches) ? turn.batches : [];
  return batches.map((ops) => (Array.isArray(ops) ? ops.filter(isOp) : []));
}

export class GalleryDialog {
  /**
   * @param {HTMLDialogElement} dialog
   * @param {string} url the gallery's JSON address
   */
  constructor(dialog, url) {
    this.dialog = dialog;
    this.url = url;
    const $ = (/** @type {string} */ name) => find(dialog, `[data-gallery=${name}]`);
    this.el = {
      title: $("title"),
      status: $("status"),
      list: $("list"),
      replay: $("replay"),
      canvas: findAs(dialog, "[data-gallery=canvas]", HTMLCanvasElement),
      caption: $("caption"),
      back: $("back"),
      again: $("again"),
      close: $("close"),
    };
    this.board = new Board(this.el.canvas);
    /** @type {Map<number, Promise<TurnDrawing>>} turn id -> its drawing */
    this.details = new Map();
    /** @type {number | undefined} */
    this.timer = undefined;
    /** @type {Turn | null} */
    this.current = null;
    /** @type {HTMLElement | null} */
    this.opener = null;
  }

  /** @param {HTMLElement | null} button what opens the gallery */
  bind(button) {
    if (!button || !this.dialog) return;
    button.addEventListener("click", () => this.open(button));
    this.el.close.addEventListener("click", () => this.dialog.close());
    this.el.back.addEventListener("click", () => this.showList());
    this.el.again.addEventListener("click", () => this.replay(this.current));
    this.dialog.addEventListener("close", () => {
      this.stopReplay();
      this.opener?.focus();
    });
    // A click on the backdrop (the dialog element itself, outside its content) closes it.
    this.dialog.addEventListener("click", (event) => {
      if (event.target === this.dialog) this.dialog.close();
    });
  }

  /**
   * @param {string} state
   * @param {string} text
   */
  setStatus(state, text) {
    this.el.status.dataset.state = state;
    this.el.status.textContent = text;
    this.el.status.hidden = !text;
  }

  /** @param {HTMLElement} opener */
  async open(opener) {
    this.opener = opener;
    this.showList();
    if (!this.dialog.open) this.dialog.showModal();
    this.setStatus("loading", "Loading the gallery…");
    this.el.list.replaceChildren();
    let body;
    try {
      body = await getJson(this.url);
    } catch (error) {
      this.setStatus(
        "error",
        error instanceof HttpError && error.status === 404
          ? "The gallery is not available on this server yet."
          : "The gallery could not be loaded. Try again in a moment.",
      );
      return;
    }
    /** @type {Turn[]} */
    const turns = (Array.isArray(body.turns) ? body.turns : []).filter(
      (/** @type {any} */ turn) =>
        turn && Number.isInteger(turn.id) && typeof turn.word === "string",
    );
    if (turns.length === 0) {
      this.setStatus("empty", "No finished drawings yet: play a game!");
      return;
    }
    this.setStatus("ready", "");
    const items = turns.map((turn) => this.item(turn));
    this.el.list.replaceChildren(...items.map(([item]) => item));
    this.drawThumbnails(items.map(([, canvas, turn]) => [canvas, turn]));
  }

  /**
   * @param {Turn} turn
   * @returns {[HTMLElement, HTMLCanvasElement, Turn]}
   */
  item(turn) {
    const item = element("li", "gallery-item");
    item.dataset.turn = String(turn.id);
    const open = element("button", "gallery-open");
    open.type = "button";
    const canvas = element("canvas", "gallery-thumb");
    canvas.width = 200;
    canvas.height = 150;
    canvas.setAttribute("aria-hidden", "true");
    const caption = element("span", "gallery-caption");
    caption.append(element("strong", "gallery-word", turn.word));
    caption.append(element("span", "gallery-drawer", `by ${turn.drawer}`));
    if (typeof turn.ended === "string") {
      const time = element("time", "gallery-time", shortTime(turn.ended));
      time.dateTime = turn.ended;
      time.title = fullTime(turn.ended);
      caption.append(time);
    }
    const rating = ratingView(turn);
    caption.append(rating);
    open.setAttribute(
      "aria-label",
      `Replay "${turn.word}" by ${turn.drawer} (${rating.getAttribute("aria-label")})`,
    );
    open.append(canvas, caption);
    open.addEventListener("click", () => this.replay(turn));
    item.append(open);
    return [item, canvas, turn];
  }

  /**
   * @param {Turn} turn
   * @returns {Promise<TurnDrawing>}
   */
  async detail(turn) {
    let detail = this.details.get(turn.id);
    if (!detail) {
      detail = getJson(`${this.url}/${turn.id}`);
      this.details.set(turn.id, detail);
    }
    try {
      return await detail;
    } catch (error) {
      this.details.delete(turn.id);
      throw error;
    }
  }

  /** @param {[HTMLCanvasElement, Turn][]} pairs */
  async drawThumbnails(pairs) {
    const board = new Board(boardCanvas());
    const queue = [...pairs];
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [canvas, turn] = next;
        let detail;
        try {
          detail = await this.detail(turn);
        } catch {
          canvas.classList.add("failed");
          continue;
        }
        // One board for every thumbnail: each is drawn whole, then copied, in one task.
        board.reset(batchesOf(detail).flat());
        board.flush();
        const context = canvas.getContext("2d");
        if (!context) continue;
        context.imageSmoothingQuality = "high";
        context.drawImage(board.canvas, 0, 0, canvas.width, canvas.height);
        canvas.dataset.drawn = "true";
      }
    };
    await Promise.all(Array.from({ length: THUMB_FETCHES }, worker));
  }

  showList() {
    this.stopReplay();
    this.el.replay.hidden = true;
    this.el.list.hidden = false;
    this.el.title.textContent = "Gallery";
  }

  stopReplay() {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** @param {Turn | null} turn */
  async replay(turn) {
    if (!turn) return;
    this.stopReplay();
    this.current = turn;
    this.el.list.hidden = true;
    this.el.replay.hidden = false;
    this.el.title.textContent = `"${turn.word}" by ${turn.drawer}`;
    this.el.canvas.setAttribute("aria-label", `The drawing of "${turn.word}" by ${turn.drawer}`);
    this.el.replay.dataset.state = "loading";
    this.el.caption.textContent = "Loading the drawing…";
    this.board.reset();
    this.board.flush();
    let batches;
    try {
      batches = batchesOf(await this.detail(turn));
    } catch {
      this.el.replay.dataset.state = "error";
      this.el.caption.textContent = "This drawing could not be loaded.";
      return;
    }
    if (this.current !== turn || this.el.replay.hidden) return;
    this.el.replay.dataset.state = "playing";
    // A batch a tick, as they were sent; a long drawing takes a few a tick.
    const perTick = Math.max(1, Math.ceil((batches.length * REPLAY_STEP_MS) / REPLAY_LONGEST_MS));
    let next = 0;
    const play = () => {
      for (let n = 0; n < perTick && next < batches.length; n += 1, next += 1) {
        for (const op of batches[next]) this.board.apply(op);
      }
      this.board.flush();
      this.el.caption.textContent = `Stroke batch ${next} of ${batches.length}`;
      if (next < batches.length) {
        this.timer = setTimeout(play, REPLAY_STEP_MS);
      } else {
        this.el.replay.dataset.state = "done";
        this.el.caption.textContent =
          batches.length === 0 ? "Nothing was drawn." : "Replay finished.";
      }
    };
    play();
  }
}
