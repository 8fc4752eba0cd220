// Pinned messages (docs/protocol.md, "Pinned messages"): a "Pinned (N)" bar at the top of the
// chat lists them, the last pinned first (author, first line); a click shows the message in
// the timeline (older pages are loaded to reach it; one too far back opens in the list). A
// signed-in reader pins and unpins from a message's buttons or the list; visitors see the bar.
//
// The list comes from GET /channels/{name}/pins when the page opens, then lives on the page's
// socket: pin.changed frames, and after a reconnection the changes missed (?pins= the
// position the list or the last frame reached; the ready frame says where the socket is).

import { element, find, maybe, targetOf } from "../lib/dom.js";
import { getJson } from "../lib/http.js";
import { ERRORS, PROTOCOL } from "../lib/protocol.js";
import { newRef } from "../lib/refs.js";
import { appendRichText } from "../lib/text.js";
import { fullTime } from "../lib/time.js";
import { isMessage } from "./message-row.js";

/** @typedef {import("../lib/socket.js").ChannelSocket} ChannelSocket */
/** @typedef {import("../lib/socket.js").ErrorFrame} ErrorFrame */
/** @typedef {import("../lib/socket.js").SocketClient} SocketClient */
/** @typedef {import("./message-row.js").Message} Message */

/**
 * A pinned message, as ``GET /channels/{name}/pins`` lists it.
 * @typedef {{message: Message, by: string, time: string}} Pin
 */

/**
 * ``pin.changed``: a message was pinned or unpinned; ``pin`` is the change's position in the
 * channel's stream of pin changes.
 * @typedef {object} PinChangedFrame
 * @property {"pin.changed"} type
 * @property {unknown} message the message's id
 * @property {unknown} pinned
 * @property {unknown} [by]
 * @property {unknown} [time]
 * @property {unknown} [pin]
 * @property {string} [ref]
 */

/**
 * What the pins need of the chat.
 * @typedef {object} PinsOptions
 * @property {string} url the channel's pins (GET)
 * @property {string} me the reader ("" for a visitor, who cannot pin)
 * @property {ChannelSocket} socket the page's socket
 * @property {(id: number) => Message | undefined} message a message shown, by id
 * @property {(id: number) => HTMLElement | null} row a message's row, by id
 * @property {(id: number) => Promise<boolean>} jump show message ``id`` in the timeline
 */

const PINS_MAX = PROTOCOL.pins.max;
const ERROR_SHOWN_MS = 6000;
const TEXT_CHARS = 140; // of the first line, in the list

/** @type {Record<string, string>} */
const ERROR_TEXT = {
  [ERRORS.NOT_PINNABLE]: "That message cannot be pinned (deleted, or not everyone's to read).",
  [ERRORS.TOO_MANY_PINS]: `A channel has at most ${PINS_MAX} pinned messages: unpin one first.`,
  [ERRORS.RATE_LIMITED]: "Too many pins at once: wait a moment.",
  [ERRORS.UNAVAILABLE]: "The server could not take it right now: try again.",
  [ERRORS.SIGN_IN_REQUIRED]: "Log in to pin messages.",
};

/**
 * A message's first line, shortened for the list.
 * @param {Message} message
 */
function firstLine(message) {
  if (message.deleted) return "message deleted";
  const line = message.content.split("\n", 1)[0].trim();
  return line.length > TEXT_CHARS ? `${line.slice(0, TEXT_CHARS - 1)}…` : line;
}

/**
 * @param {unknown} value
 * @returns {value is number}
 */
function isPosition(value) {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

export class PinnedMessages {
  /**
   * @param {HTMLElement} root the bar (channel.jinja2, [data-role=pins])
   * @param {PinsOptions} options
   */
  constructor(root, { url, me, socket, message, row, jump }) {
    this.root = root;
    this.url = url;
    this.me = me;
    this.socket = socket;
    this.message = message;
    this.row = row;
    this.jump = jump;
    this.toggle = find(root, "[data-role=pins-toggle]");
    this.count = find(root, "[data-role=pins-count]");
    this.list = find(root, "[data-role=pins-list]");
    this.error = find(root, "[data-role=pins-error]");
    /** @type {Pin[]} the last pinned first */
    this.pins = [];
    /** @type {number | null} the position in the stream of pin changes reached */
    this.position = null;
    /** changes at or before this position are in the list already (it was read after them) */
    this.floor = -1;
    this.loaded = false;
    /** @type {Promise<void> | null} a reload of the list under way */
    this.reloading = null;
    /** @type {Map<string, number>} ref -> id: pins and unpins sent, not answered */
    this.pending = new Map();
    /** @type {number | undefined} */
    this.errorTimer = undefined;
    /** @type {SocketClient | null} */
    this.client = null;
  }

  start() {
    const socket = this.socket;
    this.client = socket.client({
      codes: [ERRORS.NOT_PINNABLE, ERRORS.TOO_MANY_PINS],
      onError: (frame) => this.onError(frame),
    });
    socket.before(() => this.loadOnce());
    socket.param("pins", () => this.position);
    socket.on("pin.changed", (/** @type {PinChangedFrame} */ frame) => this.onChanged(frame));
    socket.on("ack", (/** @type {{ref?: string}} */ frame) => this.answered(frame.ref));
    socket.on("ready", (/** @type {{pins?: unknown}} */ frame) => {
      if (isPosition(frame.pins)) this.reach(frame.pins);
    });
    this.toggle.addEventListener("click", () => this.setOpen(!this.isOpen()));
    this.list.addEventListener("click", (event) => this.onListClick(event));
    // The pin buttons of the messages (message-row.js).
    const timeline = this.root.closest("[data-ws-url]")?.querySelector("[data-role=messages]");
    timeline?.addEventListener("click", (event) => {
      const button = targetOf(event)?.closest("button[data-action=pin]");
      const item = button?.closest("li.msg");
      if (item instanceof HTMLElement) this.setPinned(Number(item.dataset.id), !this.has(item));
    });
    this.render();
  }

  // -- the list -------------------------------------------------------------------------------

  async loadOnce() {
    if (this.loaded) return;
    await this.load();
    this.loaded = true;
  }

  /** The pins now (GET), and the position they stand at. */
  async load() {
    const body = await getJson(this.url);
    const pins = Array.isArray(body.pins) ? body.pins : [];
    this.pins = pins
      .filter((/** @type {any} */ pin) => pin && isMessage(pin.message))
      .map((/** @type {any} */ pin) => ({
        message: pin.message,
        by: typeof pin.by === "string" ? pin.by : "",
        time: typeof pin.time === "string" ? pin.time : "",
      }));
    if (isPosition(body.position)) {
      this.floor = body.position;
      this.reach(body.position);
    }
    this.render();
  }

  /** Read the list again (a message pinned that this page does not have), once at a time. */
  reload() {
    if (!this.reloading) {
      this.reloading = this.load()
        .catch(() => {}) // the next change, or the next page, tries again
        .finally(() => {
          this.reloading = null;
        });
    }
    return this.reloading;
  }

  /** @param {number} position */
  reach(position) {
    this.position = Math.max(this.position ?? 0, position);
  }

  /** @param {number} id */
  pinOf(id) {
    return this.pins.find((pin) => pin.message.id === id);
  }

  // -- frames ---------------------------------------------------------------------------------

  /** @param {PinChangedFrame} frame */
  onChanged(frame) {
    const id = frame.message;
    if (typeof id !== "number" || !Number.isSafeInteger(id) || typeof frame.pinned !== "boolean") {
      return;
    }
    if (typeof frame.ref === "string") this.answered(frame.ref);
    if (isPosition(frame.pin)) {
      this.reach(frame.pin);
      if (frame.pin <= this.floor) return; // the list read after it has it
    }
    const known = this.pinOf(id);
    if (!frame.pinned) {
      this.pins = this.pins.filter((pin) => pin !== known);
    } else if (!known) {
      const message = this.message(id);
      if (!message) {
        // Not loaded here: the list says what it is.
        this.reload();
        return;
      }
      this.pins.unshift({
        message,
        by: typeof frame.by === "string" ? frame.by : "",
        time: typeof frame.time === "string" ? frame.time : "",
      });
    }
    this.render();
  }

  /**
   * A message changed (edited, deleted): a pinned one shows it.
   * @param {Message} message
   */
  changed(message) {
    const pin = this.pinOf(message.id);
    if (!pin) return;
    pin.message = message;
    this.render();
  }

  /** @param {ErrorFrame} frame */
  onError(frame) {
    if (typeof frame.ref === "string") this.answered(frame.ref);
    this.showError(ERROR_TEXT[frame.error] || frame.detail || "The server refused it.");
  }

  /** @param {string | undefined} ref */
  answered(ref) {
    if (typeof ref !== "string") return;
    const id = this.pending.get(ref);
    if (id === undefined) return;
    this.pending.delete(ref);
    const item = this.row(id);
    if (item) delete item.dataset.pinning;
  }

  // -- what the reader does -------------------------------------------------------------------

  /**
   * Pin (or unpin) message ``id`` for everyone in the channel.
   * @param {number} id
   * @param {boolean} pinned
   */
  setPinned(id, pinned) {
    if (!this.me || !this.client || !Number.isSafeInteger(id)) return;
    if (pinned && this.pins.length >= PINS_MAX) {
      this.showError(ERROR_TEXT[ERRORS.TOO_MANY_PINS]);
      return;
    }
    const ref = newRef();
    if (!this.client.send({ type: pinned ? "pin" : "unpin", id, ref })) {
      this.showError("Not connected right now: try again once live.");
      return;
    }
    this.pending.set(ref, id);
    const item = this.row(id);
    if (item) item.dataset.pinning = "true";
  }

  /** @param {Event} event */
  async onListClick(event) {
    const target = targetOf(event);
    const entry = target?.closest("li.pin");
    if (!target || !(entry instanceof HTMLElement)) return;
    const id = Number(entry.dataset.id);
    if (target.closest("[data-action=unpin]")) {
      this.setPinned(id, false);
    } else if (target.closest("[data-action=show]")) {
      // In the timeline if it can be reached there, else here, whole.
      if (await this.jump(id)) this.setOpen(false);
      else this.openInList(entry, id);
    }
  }

  /**
   * Show the whole message in its entry of the list.
   * @param {HTMLElement} entry
   * @param {number} id
   */
  openInList(entry, id) {
    const pin = this.pinOf(id);
    if (!pin || entry.querySelector(".pin-full")) return;
    const full = element("div", "pin-full");
    if (pin.message.deleted) full.append(element("em", "msg-deleted", "message deleted"));
    else appendRichText(full, pin.message.content, pin.message.mentions, this.me);
    entry.append(full);
  }

  isOpen() {
    return this.toggle.getAttribute("aria-expanded") === "true";
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.toggle.setAttribute("aria-expanded", String(open));
    this.list.hidden = !open;
  }

  /** @param {string} text */
  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
    this.root.hidden = false;
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => {
      this.error.hidden = true;
      this.render();
    }, ERROR_SHOWN_MS);
  }

  // -- showing --------------------------------------------------------------------------------

  /**
   * Is the message of ``item`` pinned?
   * @param {HTMLElement} item
   */
  has(item) {
    return this.pinOf(Number(item.dataset.id)) !== undefined;
  }

  /**
   * Show on a message's row whether it is pinned (its button says what a press does).
   * @param {HTMLElement} item
   */
  mark(item) {
    const pinned = this.has(item);
    item.toggleAttribute("data-pinned", pinned);
    const button = maybe(item, "button[data-action=pin]");
    if (!button) return;
    button.textContent = pinned ? "Unpin" : "Pin";
    button.setAttribute("aria-pressed", String(pinned));
    button.setAttribute("aria-label", pinned ? "Unpin message" : "Pin message");
  }

  render() {
    const count = this.pins.length;
    this.count.textContent = String(count);
    this.root.hidden = count === 0 && this.error.hidden;
    this.toggle.hidden = count === 0;
    if (count === 0) this.setOpen(false);
    this.list.replaceChildren(...this.pins.map((pin) => this.entry(pin)));
    // The rows shown say whether they are pinned.
    const timeline = this.root.closest("[data-ws-url]")?.querySelector("[data-role=messages]");
    for (const item of timeline?.querySelectorAll(":scope > li.msg") ?? []) {
      if (item instanceof HTMLElement) this.mark(item);
    }
  }

  /** @param {Pin} pin */
  entry(pin) {
    const message = pin.message;
    const item = element("li", "pin");
    item.dataset.id = String(message.id);
    const show = element("button", "pin-show");
    show.type = "button";
    show.dataset.action = "show";
    show.append(
      element("span", "pin-user", message.user),
      element("span", "pin-text", firstLine(message)),
    );
    const by = pin.by ? `pinned by ${pin.by}` : "pinned";
    show.title = pin.time ? `${by}, ${fullTime(pin.time)}` : by;
    item.append(show);
    if (this.me) {
      const unpin = element("button", "pin-unpin secondary", "Unpin");
      unpin.type = "button";
      unpin.dataset.action = "unpin";
      unpin.setAttribute("aria-label", `Unpin the message of ${message.user}`);
      item.append(unpin);
    }
    return item;
  }
}
