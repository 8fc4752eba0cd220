// What the reader has read in this channel: the server's read marker moved forward as messages
// are seen (visible tab, scrolled to the bottom, socket live), the count in the tab's title
// while it is hidden, and the "New since you left" line where the unread messages begin.

import { element } from "./dom.js";

const SEND_EVERY_MS = 1000; // the server writes markers every 2 s anyway

export class ReadState {
  /** ``page``: the ChatPage (its socket, its messages, atBottom(), highestId). */
  constructor(page) {
    this.page = page;
    this.sent = null; // the last id sent in a read frame
    this.unseen = 0; // messages by others that arrived since the reader last saw the bottom
    this.baseTitle = document.title;
    this.timer = null;
  }

  start() {
    document.addEventListener("visibilitychange", () => this.seen());
  }

  canSee() {
    return document.visibilityState === "visible" && this.page.atBottom();
  }

  /** A message that arrived live: unseen unless the reader is looking at the bottom. */
  arrived(message) {
    if (message.user !== this.page.me && !message.deleted && !this.canSee()) {
      this.unseen += 1;
      this.updateTitle();
    }
    this.seen();
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
    const socket = this.page.socket;
    if (!socket.isOpen() || !this.canSee()) return;
    const id = this.page.highestId;
    if (this.sent !== null && id <= this.sent) return;
    if (socket.send({ type: "read", id })) this.sent = id;
  }

  updateTitle() {
    const hidden = document.visibilityState === "hidden";
    document.title = hidden && this.unseen > 0 ? `(${this.unseen}) ${this.baseTitle}` : this.baseTitle;
  }

  /**
   * After the first page of history: the "New since you left" line before the first message
   * by someone else after ``lastRead`` (the server's marker), if there is one. Returns it.
   */
  placeLine(lastRead, list) {
    if (!Number.isSafeInteger(lastRead)) return null;
    let first = null;
    let unread = 0;
    for (const item of list.querySelectorAll(":scope > li.msg")) {
      if (Number(item.dataset.id) <= lastRead || item.dataset.user === this.page.me) continue;
      if (item.classList.contains("deleted")) continue;
      first = first || item;
      unread += 1;
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
