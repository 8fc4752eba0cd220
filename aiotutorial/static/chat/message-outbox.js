// The messages this page has sent and not yet seen stored: each shown at once as "sending",
// then gone when the server's answer (the message itself, carrying the same ref) arrives, or
// "failed" with the reason and a way out (retry, edit, discard), in one short line. A guess
// the game refused (too many guesses, the word given away, the game ending just then) is
// only worth a moment: it says why, and goes by itself after a few seconds, or when its
// turn ends (the game tells the chat's root with a "game:turn" event).
//
// Every message gets a ref, the page's own id for it. The server remembers refs, so sending a
// message again with its ref never stores it twice: messages whose answer was lost with the
// socket are sent again, automatically, once the socket is live again; they are kept in
// sessionStorage, so a reload sends them again too. Sends are paced below the server's rate
// (its burst and rate per second: the island's, from the server's settings) so that a burst
// of typing ends stored rather than refused.

import { avatarElement } from "../lib/avatar.js";
import { element } from "../lib/dom.js";
import { ERRORS, PROTOCOL } from "../lib/protocol.js";
import { newRef } from "../lib/refs.js";
import { appendRichText } from "../lib/text.js";

/**
 * A message of the outbox. ``state``: queued (to send), sending (sent, not answered),
 * failed (refused: Retry, Edit, Discard), refused (by the game, during a turn: goes by itself).
 * @typedef {object} Entry
 * @property {string} ref
 * @property {string} content
 * @property {number} [replyTo] the id of the message it answers
 * @property {number[]} [uploads] the ids of the files it carries
 * @property {"queued" | "sending" | "failed" | "refused"} state
 * @property {string} reason
 * @property {string} [code] the error code it was refused with
 * @property {string | null} [turn] the game's turn it was sent in
 * @property {number} [timer]
 * @property {HTMLElement} [item]
 * @property {HTMLElement} [status]
 */

/**
 * @typedef {object} OutboxOptions
 * @property {string} channel
 * @property {string} me
 * @property {(frame: {type: string, content: string, ref: string, reply_to?: number, uploads?: number[]}) => boolean} send
 * @property {() => boolean} isLive
 * @property {() => void} reconnect try the connection now
 * @property {(text: string) => void} onEdit put a failed message back into the composer
 * @property {() => void} [onChange]
 */

// A little under the server's limits: its rate per second, and its burst.
const PER_SECOND = PROTOCOL.chat.rate_per_second * 0.8;
const BURST = Math.max(1, PROTOCOL.chat.rate_burst - 2);
const STORE_PREFIX = "aiotutorial.outbox.";
const numbers = new Intl.NumberFormat();
const MAX_CHARS = PROTOCOL.chat.message_max_chars;

/** @type {Record<string, string>} */
export const ERROR_TEXT = {
  [ERRORS.RATE_LIMITED]: "Sent too fast: the server refused it.",
  [ERRORS.TOO_LONG]: `Too long: at most ${numbers.format(MAX_CHARS)} characters.`,
  [ERRORS.EMPTY]: "The message is empty.",
  [ERRORS.BAD_CONTENT]: "The server could not read it.",
  [ERRORS.UNAVAILABLE]: "The server could not store it right now.",
  [ERRORS.INTERNAL]: "Something went wrong on the server.",
  [ERRORS.BAD_REPLY]: "The message it answers is not there any more.",
  [ERRORS.WORD_IN_CHAT]: "You cannot give the word away in the chat.",
  [ERRORS.TOO_MANY_GUESSES]: "Too many guesses: wait a moment.",
};
// Refusals that sending the same text again cannot fix: the text needs changing.
const FINAL = new Set([ERRORS.TOO_LONG, ERRORS.EMPTY, ERRORS.BAD_CONTENT, ERRORS.WORD_IN_CHAT]);
// Refusals of the game's: they go by themselves.
const GAME_REFUSALS = new Set([ERRORS.TOO_MANY_GUESSES, ERRORS.WORD_IN_CHAT]);
const REFUSED_SHOWN_MS = 5000;

export class MessageOutbox {
  /**
   * @param {HTMLElement} list the <ol> that shows the entries
   * @param {OutboxOptions} options
   */
  constructor(list, { channel, me, send, isLive, reconnect, onEdit, onChange }) {
    this.list = list;
    this.me = me;
    this.sendFrame = send;
    this.isLive = isLive;
    this.reconnect = reconnect;
    this.onEdit = onEdit;
    this.onChange = onChange || (() => {});
    this.storeKey = STORE_PREFIX + channel;
    /** @type {Map<string, Entry>} ref -> entry, in the order they were written */
    this.entries = new Map();
    this.tokens = BURST;
    this.refilled = performance.now();
    /** @type {number | undefined} */
    this.timer = undefined;
    /** @type {string | null} the game's turn whose guesses are being judged, if any */
    this.turn = null;
    list.closest("[data-ws-url]")?.addEventListener("game:turn", (event) => {
      const turn = event instanceof CustomEvent ? event.detail?.turn : null;
      this.turn = typeof turn === "string" ? turn : null;
      for (const entry of [...this.entries.values()]) {
        if (entry.state === "refused" && entry.turn !== this.turn) this.dismiss(entry);
      }
    });
    this.restore();
  }

  get size() {
    return this.entries.size;
  }

  // -- what the chat calls --------------------------------------------------------------------

  /**
   * A new message from the composer: shown at once, sent as soon as pacing allows.
   * @param {string} content
   * @param {number} [replyTo] the id of the message it answers
   * @param {number[]} [uploads] the ids of the files it carries
   */
  add(content, replyTo, uploads) {
    /** @type {Entry} */
    const entry = { ref: newRef(), content, state: "queued", reason: "" };
    if (replyTo !== undefined) entry.replyTo = replyTo;
    if (uploads?.length) entry.uploads = uploads;
    this.entries.set(entry.ref, entry);
    this.render(entry);
    this.save();
    this.pump();
    return entry.ref;
  }

  /**
   * A frame with a ref arrived: the message stored, an ack (taken, e.g. a correct guess in the
   * game), or an error. True when it answered one of ours.
   * @param {{type?: string, ref?: string, error?: string, detail?: string}} frame
   */
  answer(frame) {
    const entry = typeof frame.ref === "string" ? this.entries.get(frame.ref) : undefined;
    if (!entry) return false;
    if (frame.type === "error") {
      const code = frame.error ?? "";
      entry.code = code;
      if (this.byTheGame(entry)) {
        entry.state = "refused";
        entry.reason =
          (code === ERRORS.TOO_MANY_GUESSES && frame.detail) ||
          (code === ERRORS.UNAVAILABLE && "The turn ended just then.") ||
          ERROR_TEXT[code];
        clearTimeout(entry.timer);
        entry.timer = setTimeout(() => this.dismiss(entry), REFUSED_SHOWN_MS);
      } else {
        entry.state = "failed";
        entry.reason = ERROR_TEXT[code] || frame.detail || "The server refused it.";
      }
      this.render(entry);
    } else {
      this.remove(entry);
    }
    this.save();
    this.onChange();
    return true;
  }

  /**
   * Was ``entry`` refused by the game, during a turn (not by the chat)?
   * @param {Entry} entry
   */
  byTheGame(entry) {
    const code = entry.code ?? "";
    return (
      GAME_REFUSALS.has(code) ||
      (code === ERRORS.UNAVAILABLE && entry.turn !== null && entry.turn !== undefined)
    );
  }

  /**
   * A refusal of the game's has been seen: it goes.
   * @param {Entry} entry
   */
  dismiss(entry) {
    if (!this.entries.has(entry.ref)) return;
    clearTimeout(entry.timer);
    this.remove(entry);
    this.onChange();
  }

  /** The socket went away: what was sent without an answer goes again once live. */
  disconnected() {
    for (const entry of this.entries.values()) {
      if (entry.state === "sending") entry.state = "queued";
      if (entry.state === "queued") this.render(entry);
    }
  }

  /** The socket is live (again): send what waits, in order. */
  live() {
    for (const entry of this.entries.values()) {
      if (entry.state === "queued") this.render(entry);
    }
    this.pump();
  }

  // -- sending, paced -------------------------------------------------------------------------

  refill() {
    const now = performance.now();
    this.tokens = Math.min(BURST, this.tokens + ((now - this.refilled) / 1000) * PER_SECOND);
    this.refilled = now;
  }

  pump() {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.isLive()) return;
    for (const entry of this.entries.values()) {
      if (entry.state !== "queued") continue;
      this.refill();
      if (this.tokens < 1) {
        const wait = ((1 - this.tokens) / PER_SECOND) * 1000;
        this.timer = setTimeout(() => this.pump(), Math.ceil(wait));
        return;
      }
      /** @type {{type: string, content: string, ref: string, reply_to?: number, uploads?: number[]}} */
      const frame = { type: "message", content: entry.content, ref: entry.ref };
      if (entry.replyTo !== undefined) frame.reply_to = entry.replyTo;
      if (entry.uploads) frame.uploads = entry.uploads;
      if (!this.sendFrame(frame)) return;
      this.tokens -= 1;
      entry.state = "sending";
      entry.turn = this.turn;
      this.render(entry);
    }
  }

  /** @param {Entry} entry */
  retry(entry) {
    entry.state = "queued";
    entry.reason = "";
    this.render(entry);
    this.save();
    this.pump();
  }

  /** @param {Entry} entry */
  remove(entry) {
    this.entries.delete(entry.ref);
    entry.item?.remove();
    this.save();
  }

  // -- showing --------------------------------------------------------------------------------

  /** @param {Entry} entry */
  render(entry) {
    let item = entry.item;
    let status = entry.status;
    if (!item || !status) {
      item = element("li", "msg mine pending");
      item.dataset.ref = entry.ref;
      const head = element("div", "msg-head");
      head.append(avatarElement(this.me, "avatar-sm"), element("span", "msg-user", this.me));
      const body = element("div", "msg-body");
      appendRichText(body, entry.content);
      status = element("div", "msg-status");
      item.append(head, body, status);
      this.list.append(item);
      entry.item = item;
      entry.status = status;
    }
    const live = this.isLive();
    /** @type {string} */
    let state = entry.state;
    if (state === "queued" && !live) state = "waiting";
    item.dataset.state = state;
    status.replaceChildren();
    if (state === "refused") {
      status.setAttribute("role", "status");
      status.append(element("span", "msg-status-text", `Not sent. ${entry.reason}`));
      status.append(
        this.button("Edit", () => {
          this.dismiss(entry);
          this.onEdit(entry.content);
        }),
      );
    } else if (state === "failed") {
      status.setAttribute("role", "alert");
      status.append(element("span", "msg-status-text", `Not sent. ${entry.reason}`));
      if (!FINAL.has(entry.code ?? "")) status.append(this.button("Retry", () => this.retry(entry)));
      status.append(
        this.button("Edit", () => {
          this.remove(entry);
          this.onEdit(entry.content);
          this.onChange();
        }),
        this.button("Discard", () => {
          this.remove(entry);
          this.onChange();
        }),
      );
    } else {
      status.removeAttribute("role");
      const text = state === "waiting" ? "Not sent yet: waiting for the connection…" : "Sending…";
      status.append(element("span", "msg-status-text", text));
      // It goes by itself once connected; this is for not waiting.
      if (state === "waiting") status.append(this.button("Retry now", () => this.reconnect()));
    }
  }

  /**
   * @param {string} text
   * @param {() => void} onClick
   */
  button(text, onClick) {
    const button = element("button", "msg-status-button", text);
    button.type = "button";
    button.addEventListener("click", onClick);
    return button;
  }

  // -- kept across a reload -------------------------------------------------------------------

  save() {
    try {
      const kept = [...this.entries.values()]
        .filter((entry) => entry.state !== "refused") // of a turn that will be over
        .map(({ ref, content, replyTo, uploads, state, reason, code }) => ({
          ref,
          content,
          replyTo,
          uploads,
          failed: state === "failed",
          reason,
          code,
        }));
      if (kept.length) sessionStorage.setItem(this.storeKey, JSON.stringify(kept));
      else sessionStorage.removeItem(this.storeKey);
    } catch {
      // Storage full or refused: the entries live as long as the page.
    }
  }

  restore() {
    /** @type {unknown} */
    let kept = [];
    try {
      kept = JSON.parse(sessionStorage.getItem(this.storeKey) || "[]");
    } catch {
      kept = [];
    }
    if (!Array.isArray(kept)) return;
    for (const saved of kept) {
      if (!saved || typeof saved.ref !== "string" || typeof saved.content !== "string") continue;
      /** @type {Entry} */
      const entry = {
        ref: saved.ref,
        content: saved.content,
        state: saved.failed ? "failed" : "queued",
        reason: typeof saved.reason === "string" ? saved.reason : "",
        code: typeof saved.code === "string" ? saved.code : undefined,
      };
      if (Number.isSafeInteger(saved.replyTo)) entry.replyTo = saved.replyTo;
      if (Array.isArray(saved.uploads) && saved.uploads.every(Number.isSafeInteger)) {
        entry.uploads = saved.uploads;
      }
      this.entries.set(entry.ref, entry);
      this.render(entry);
    }
  }
}
