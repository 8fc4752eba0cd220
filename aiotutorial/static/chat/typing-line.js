// "alice is typing…": who in the channel is typing now. The server relays a user's typing at
// most every few seconds and says how long to show it (``ms``); a message from them ends it.

import { PROTOCOL } from "../lib/protocol.js";

const MAX_NAMES = 3;

export class TypingLine {
  /**
   * @param {HTMLElement | null} node the line (a visitor's page has none)
   * @param {string} me the reader, whose own typing is not shown
   */
  constructor(node, me) {
    this.node = node;
    this.me = me;
    /** @type {Map<string, number>} user -> timeout */
    this.timers = new Map();
  }

  /**
   * ``{"type": "typing", "user", "ms"}`` from the socket.
   * @param {{user?: unknown, ms?: unknown}} frame
   */
  typing(frame) {
    const user = frame.user;
    if (!this.node || typeof user !== "string" || user === this.me) return;
    const ms =
      typeof frame.ms === "number" && Number.isFinite(frame.ms)
        ? Math.min(Math.max(frame.ms, 1000), 15000)
        : PROTOCOL.chat.typing_shown_ms;
    clearTimeout(this.timers.get(user));
    this.timers.set(
      user,
      setTimeout(() => this.stopped(user), ms),
    );
    this.render();
  }

  /** @param {string} user */
  stopped(user) {
    clearTimeout(this.timers.get(user));
    if (this.timers.delete(user)) this.render();
  }

  clear() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.render();
  }

  render() {
    if (!this.node) return;
    const names = [...this.timers.keys()].sort((a, b) => a.localeCompare(b));
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length <= MAX_NAMES && names.length > 0)
      text = `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`;
    else if (names.length > MAX_NAMES) text = `${names.length} people are typing…`;
    this.node.textContent = text;
    this.node.hidden = text === "";
  }
}
