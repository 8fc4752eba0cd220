// The channel's history over HTTP: the newest page when the page opens (with where the reader
// left off, and the position of the channel's edits and deletes), and older pages as the reader
// scrolls up. What comes after, visitors included, comes over the page's websocket.

import { isMessage } from "./render.js";

const PAGE_SIZE = 50;
const UNREAD_PAGES = 4; // older pages loaded, at most, to reach "New since you left"
const GAP_PAGE_SIZE = 200;
const GAP_PAGES = 10; // a gap longer than this is left to the next reconnection's catch-up
const GAP_RETRIES = 3;

export class History {
  /** ``page``: the ChatPage (insert, addLive, the scroller, the read state). */
  constructor(page, url, marker) {
    this.page = page;
    this.url = url;
    this.marker = marker; // the line above the messages: loading, more, the beginning
    this.loaded = false;
    this.more = true;
    this.loadingOlder = false;
  }

  async loadOnce() {
    if (this.loaded) return;
    try {
      await this.loadInitial();
    } catch (error) {
      this.set("error", "Could not load the messages; retrying…");
      throw error;
    }
  }

  async fetch(params) {
    const url = new URL(this.url, window.location.href);
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, String(value));
    const response = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`GET ${url.pathname}: ${response.status}`);
    const body = await response.json();
    const messages = Array.isArray(body.messages) ? body.messages.filter(isMessage) : [];
    return { ...body, messages };
  }

  async loadInitial() {
    const page = this.page;
    this.set("loading", "Loading messages…");
    const first = await this.fetch({ limit: PAGE_SIZE });
    for (const message of first.messages) page.insert(message);
    if (Number.isSafeInteger(first.changes)) page.changes = first.changes;
    this.loaded = true;
    this.more = first.messages.length >= PAGE_SIZE;
    this.updateMarker();
    // Where the reader left off: older pages until it is loaded (a few at most), the line.
    const lastRead = first.last_read;
    for (let n = 0; Number.isSafeInteger(lastRead) && n < UNREAD_PAGES; n += 1) {
      if (!this.more || page.lowestId === null || page.lowestId <= lastRead + 1) break;
      await this.loadOlder({ keepPlace: false });
    }
    const line = page.read.placeLine(lastRead, page.list);
    const scroller = page.scroller;
    if (line && line.offsetTop > scroller.clientHeight / 2) {
      scroller.scrollTop = line.offsetTop - Math.round(scroller.clientHeight / 5);
      page.stuck = page.atBottom();
    } else {
      page.scrollToBottom();
    }
    this.fillViewport();
  }

  async loadOlder({ keepPlace = true } = {}) {
    const page = this.page;
    if (this.loadingOlder || !this.more || !this.loaded) return;
    if (page.lowestId === null) {
      this.more = false;
      this.updateMarker();
      return;
    }
    this.loadingOlder = true;
    this.set("loading", "Loading older messages…");
    try {
      const { messages } = await this.fetch({ before: page.lowestId, limit: PAGE_SIZE });
      // Keep what the reader looks at in place while the list grows above it.
      const scroller = page.scroller;
      const fromBottom = scroller.scrollHeight - scroller.scrollTop;
      // Newest first, so that each one goes straight to the top of the list.
      for (const message of [...messages].reverse()) page.insert(message);
      if (keepPlace) scroller.scrollTop = scroller.scrollHeight - fromBottom;
      this.more = messages.length >= PAGE_SIZE;
      this.updateMarker();
    } catch {
      this.set("error", "Could not load older messages. Scroll up to try again.");
      return;
    } finally {
      this.loadingOlder = false;
    }
    if (keepPlace) this.fillViewport();
  }

  /** Load older pages while the list is too short to scroll (scrolling is what loads more). */
  fillViewport() {
    const scroller = this.page.scroller;
    if (this.more && scroller.scrollHeight <= scroller.clientHeight + 1) this.loadOlder();
  }

  set(state, text, link = null) {
    this.marker.dataset.state = state;
    this.marker.textContent = text;
    if (link) this.marker.append(" ", link);
  }

  updateMarker() {
    const channel = this.page.channel;
    if (this.more) {
      this.set("more", "Scroll up for older messages");
    } else if (this.page.shown.size === 0 && this.page.me) {
      this.set("empty", `No messages in #${channel} yet. Say hello!`);
    } else if (this.page.shown.size === 0) {
      // A visitor cannot say hello: the way to it.
      const link = document.createElement("a");
      link.href = `/login?next=${encodeURIComponent(window.location.pathname)}`;
      link.textContent = "Log in to chat.";
      this.set("empty", `No messages in #${channel} yet.`, link);
    } else {
      this.set("start", `This is the beginning of #${channel}.`);
    }
  }

  /** Fetch the messages between ids ``after`` and ``before`` that never arrived live (a
   * live message named one before it that this page has not got), page by page; a failed
   * fetch is tried again a few times. */
  async fillGap(after, before, attempt = 0) {
    let from = after;
    try {
      for (let pages = 0; pages < GAP_PAGES; pages += 1) {
        const { messages } = await this.fetch({ after: from, limit: GAP_PAGE_SIZE });
        for (const message of messages) if (message.id < before) this.page.addLive(message);
        const last = messages.at(-1);
        if (!last || last.id >= before || messages.length < GAP_PAGE_SIZE) return;
        from = last.id;
      }
    } catch {
      if (attempt < GAP_RETRIES) setTimeout(() => this.fillGap(from, before, attempt + 1), 2000);
    }
  }
}
