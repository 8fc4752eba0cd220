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
// (bursts of 10, 5 a second) so that a burst of typing ends stored rather than refused.

import { element } from "./dom.js";
import { appendRichText } from "./text.js";

const BURST = 8;
const PER_SECOND = 4;
const STORE_PREFIX = "aiotutorial.outbox.";

export const ERROR_TEXT = {
  rate_limited: "Sent too fast: the server refused it.",
  too_long: "Too long: at most 2,000 characters.",
  empty: "The message is empty.",
  bad_content: "The server could not read it.",
  unavailable: "The server could not store it right now.",
  internal: "Something went wrong on the server.",
  word_in_chat: "You cannot give the word away in the chat.",
  too_many_guesses: "Too many guesses: wait a moment.",
};
// Refusals that sending the same text again cannot fix: the text needs changing.
const FINAL = new Set(["too_long", "empty", "bad_content", "word_in_chat"]);
// Refusals of the game's: they go by themselves.
const GAME_REFUSALS = new Set(["too_many_guesses", "word_in_chat"]);
const REFUSED_SHOWN_MS = 5000;

/** A fresh ref: 128 random bits as hex (also on http:, where crypto.randomUUID is missing). */
export function newRef() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Outbox {
  /**
   * @param {HTMLElement} list the <ol> that shows the entries
   * @param {object} options channel, me, send(frame) -> bool, isLive() -> bool,
   *   reconnect() (try the connection now), onEdit(text) (put a failed message back into
   *   the composer), onChange()
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
    this.entries = new Map(); // ref -> entry, in the order they were written
    this.tokens = BURST;
    this.refilled = performance.now();
    this.timer = null;
    this.turn = null; // the game's turn whose guesses are being judged, if any
    list.closest("[data-ws-url]")?.addEventListener("game:turn", (event) => {
      this.turn = event.detail?.turn ?? null;
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

  /** A new message from the composer: shown at once, sent as soon as pacing allows. */
  add(content) {
    const entry = { ref: newRef(), content, state: "queued", reason: "" };
    this.entries.set(entry.ref, entry);
    this.render(entry);
    this.save();
    this.pump();
    return entry.ref;
  }

  /** A frame with a ref arrived: the message stored, an ack (taken, e.g. a correct guess in
   * the game), or an error. True when it answered one of ours. */
  answer(frame) {
    const entry = this.entries.get(frame.ref);
    if (!entry) return false;
    if (frame.type === "error") {
      entry.code = frame.error;
      if (this.byTheGame(entry)) {
        entry.state = "refused";
        entry.reason =
          (frame.error === "too_many_guesses" && frame.detail) ||
          (frame.error === "unavailable" && "The turn ended just then.") ||
          ERROR_TEXT[frame.error];
        clearTimeout(entry.timer);
        entry.timer = setTimeout(() => this.dismiss(entry), REFUSED_SHOWN_MS);
      } else {
        entry.state = "failed";
        entry.reason = ERROR_TEXT[frame.error] || frame.detail || "The server refused it.";
      }
      this.render(entry);
    } else {
      this.remove(entry);
    }
    this.save();
    this.onChange();
    return true;
  }

  /** Was ``entry`` refused by the game, during a turn (not by the chat)? */
  byTheGame(entry) {
    return (
      GAME_REFUSALS.has(entry.code) || (entry.code === "unavailable" && entry.turn !== null)
    );
  }

  /** A refusal of the game's has been seen: it goes. */
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
    this.timer = null;
    if (!this.isLive()) return;
    for (const entry of this.entries.values()) {
      if (entry.state !== "queued") continue;
      this.refill();
      if (this.tokens < 1) {
        const wait = ((1 - this.tokens) / PER_SECOND) * 1000;
        this.timer = setTimeout(() => this.pump(), Math.ceil(wait));
        return;
      }
      if (!this.sendFrame({ type: "message", content: entry.content, ref: entry.ref })) return;
      this.tokens -= 1;
      entry.state = "sending";
      entry.turn = this.turn;
      this.render(entry);
    }
  }

  retry(entry) {
    entry.state = "queued";
    entry.reason = "";
    this.render(entry);
    this.save();
    this.pump();
  }

  remove(entry) {
    this.entries.delete(entry.ref);
    entry.item?.remove();
    this.save();
  }

  // -- showing --------------------------------------------------------------------------------

  render(entry) {
    if (!entry.item) {
      entry.item = element("li", "msg mine pending");
      entry.item.dataset.ref = entry.ref;
      const head = element("div", "msg-head");
      head.append(element("span", "msg-user", this.me));
      const body = element("div", "msg-body");
      appendRichText(body, entry.content);
      entry.status = element("div", "msg-status");
      entry.item.append(head, body, entry.status);
      this.list.append(entry.item);
    }
    const live = this.isLive();
    let state = entry.state;
    if (state === "queued" && !live) state = "waiting";
    entry.item.dataset.state = state;
    const status = entry.status;
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
      if (!FINAL.has(entry.code)) status.append(this.button("Retry", () => this.retry(entry)));
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
        .map(({ ref, content, state, reason, code }) => ({
          ref,
          content,
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
    let kept = [];
    try {
      kept = JSON.parse(sessionStorage.getItem(this.storeKey) || "[]");
    } catch {
      kept = [];
    }
    if (!Array.isArray(kept)) return;
    for (const saved of kept) {
      if (!saved || typeof saved.ref !== "string" || typeof saved.content !== "string") continue;
      const entry = {
        ref: saved.ref,
        content: saved.content,
        state: saved.failed ? "failed" : "queued",
        reason: typeof saved.reason === "string" ? saved.reason : "",
        code: saved.code,
      };
      this.entries.set(entry.ref, entry);
      this.render(entry);
    }
  }
}
