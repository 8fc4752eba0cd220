// "alice is typing…": who in the channel is typing now. The server relays a user's typing at
// most every 3 s and says how long to show it (``ms``, 5 s); a message from them ends it.

const MAX_NAMES = 3;

export class TypingLine {
  constructor(node, me) {
    this.node = node;
    this.me = me;
    this.timers = new Map(); // user -> timeout
  }

  /** ``{"type": "typing", "user", "ms"}`` from the socket. */
  typing(frame) {
    if (!this.node || typeof frame.user !== "string" || frame.user === this.me) return;
    const ms = Number.isFinite(frame.ms) ? Math.min(Math.max(frame.ms, 1000), 15000) : 5000;
    clearTimeout(this.timers.get(frame.user));
    this.timers.set(
      frame.user,
      setTimeout(() => this.stopped(frame.user), ms),
    );
    this.render();
  }

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
