// What the reader has read in this channel: the server's read marker moved forward as messages
// are seen (visible tab, scrolled to the bottom, socket live), the count in the tab's title
// while it is hidden, and the "New since you left" line where the unread messages begin.

import { element } from "../lib/dom.js";

/**
 * What the read state needs of the chat (``ChannelChat`` is one).
 * @typedef {object} ReadHost
 * @property {string} me
 * @property {string} [kind] the channel's: "public", "private" or "dm"
 * @property {number} highestId the newest message shown
 * @property {() => boolean} atBottom
 * @property {(id: number) => boolean} sendRead false when it could not be sent
 */

const SEND_EVERY_MS = 1000; // the server writes markers every 2 s anyway

export class ReadState {
  /** @param {ReadHost} host the chat */
  constructor(host) {
    this.host = host;
    /** @type {number | null} the last id sent in a read frame */
    this.sent = null;
    this.unseen = 0; // messages by others that arrived since the reader last saw the bottom
    this.baseTitle = document.title;
    /** what counts in the title: "all", "mentions" or "nothing" (the reader's choice) */
    this.level = "all";
    /** @type {number | null} */
    this.timer = null;
  }

  start() {
    document.addEventListener("visibilitychange", () => this.seen());
  }

  canSee() {
    return document.visibilityState === "visible" && this.host.atBottom();
  }

  /**
   * A message that arrived live: unseen unless the reader is looking at the bottom.
   * @param {{user: string, deleted?: boolean, mentions?: string[]}} message
   */
  arrived(message) {
    if (message.user !== this.host.me && !message.deleted && !this.canSee() && this.counts(message)) {
      this.unseen += 1;
      this.updateTitle();
    }
    this.seen();
  }

  /**
   * Whether ``message`` counts for the reader's level (in a conversation, every message is
   * meant for them, as a mention is).
   * @param {{mentions?: string[]}} message
   */
  counts(message) {
    if (this.level === "nothing") return false;
    if (this.level === "mentions") {
      return this.host.kind === "dm" || Boolean(message.mentions?.includes(this.host.me));
    }
    return true;
  }

  /**
   * The reader chose another level: the title follows from now on.
   * @param {string} level
   */
  setLevel(level) {
    this.level = level;
    if (level !== "all") this.unseen = 0;
    this.updateTitle();
  }

  /** The reader may have seen the newest messages: say so to the server (soon, once). */
  seen() {
    if (this.canSee()) {
      this.unseen = 0;
      if (this.timer === null) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.send();
        }, SEND_EVERY_MS);
      }
    }
    this.updateTitle();
  }

  send() {
    if (!this.canSee()) return;
    const id = this.host.highestId;
    if (this.sent !== null && id <= this.sent) return;
    if (this.host.sendRead(id)) this.sent = id;
  }

  updateTitle() {
    const hidden = document.visibilityState === "hidden";
    document.title = hidden && this.unseen > 0 ? `(${this.unseen}) ${this.baseTitle}` : this.baseTitle;
  }

  /**
   * After the first page of history: the "New since you left" line before the first message
   * by someone else after ``lastRead`` (the server's marker), if there is one. Returns it.
   * @param {unknown} lastRead
   * @param {HTMLElement} list
   */
  placeLine(lastRead, list) {
    if (typeof lastRead !== "number" || !Number.isSafeInteger(lastRead)) return null;
    /** @type {HTMLElement | null} */
    let first = null;
    let unread = 0;
    for (const item of list.querySelectorAll(":scope > li.msg")) {
      if (!(item instanceof HTMLElement)) continue;
      if (Number(item.dataset.id) <= lastRead || item.dataset.user === this.host.me) continue;
      if (item.classList.contains("deleted")) continue;
      first = first || item;
      const mention = this.host.kind === "dm" || item.classList.contains("mentions-me");
      if (this.level === "all" || (this.level === "mentions" && mention)) {
        unread += 1;
      }
    }
    if (first === null) return null;
    const line = element("li", "unread-line");
    line.setAttribute("role", "separator");
    line.dataset.id = String(lastRead + 0.5);
    line.append(element("span", "unread-line-text", "New since you left"));
    first.before(line);
    this.unseen = unread;
    this.updateTitle();
    return line;
  }
}
