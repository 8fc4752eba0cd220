// The channel's history over HTTP: the newest page when the page opens (with where the reader
// left off, and the position of the channel's edits and deletes), older pages as the reader
// scrolls up, and as far back as a pinned message the reader asks for. What comes after,
// visitors included, comes over the page's websocket.

import { getJson } from "../lib/http.js";
import { PROTOCOL } from "../lib/protocol.js";
import { isMessage } from "./message-row.js";

/** @typedef {import("./message-row.js").Message} Message */

/**
 * What the history needs of the chat it fills (``ChannelChat`` is one).
 * @typedef {object} HistoryHost
 * @property {string} channel
 * @property {string} me
 * @property {number | null} lowestId the oldest message shown
 * @property {number} count how many messages are shown
 * @property {(message: Message) => boolean} insert show it in its place (false: shown already)
 * @property {(message: Message) => void} addLive show it as news
 * @property {(position: number) => void} followChanges the stream of edits moves on
 * @property {() => () => void} holdPlace keep the reader's place while the list grows above
 * @property {(lastRead: unknown) => HTMLElement | null} placeUnreadLine
 * @property {(line: HTMLElement | null) => void} showReadingPlace
 * @property {() => boolean} tooShortToScroll
 */

/**
 * ``GET /channels/{name}/messages``.
 * @typedef {{messages: Message[], changes?: unknown, last_read?: unknown}} Page
 */

const PAGE_SIZE = PROTOCOL.chat.history_page;
const UNREAD_PAGES = 4; // older pages loaded, at most, to reach "New since you left"
const LONG_PAGE_SIZE = PROTOCOL.chat.history_max_page; // the largest page the server gives
const GAP_PAGES = 10; // a gap longer than this is left to the next reconnection's catch-up
const GAP_RETRIES = 3;
const REACH_PAGES = 10; // a pinned message further back than this is shown in the pins' list

export class History {
  /**
   * @param {HistoryHost} host the chat
   * @param {string} url the messages' address
   * @param {HTMLElement} marker the line above the messages: loading, more, the beginning
   */
  constructor(host, url, marker) {
    this.host = host;
    this.url = url;
    this.marker = marker;
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

  /**
   * @param {Record<string, number>} params
   * @returns {Promise<Page>}
   */
  async fetch(params) {
    const url = new URL(this.url, window.location.href);
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, String(value));
    const body = await getJson(url);
    const messages = Array.isArray(body.messages) ? body.messages.filter(isMessage) : [];
    return { ...body, messages };
  }

  async loadInitial() {
    const host = this.host;
    this.set("loading", "Loading messages…");
    const first = await this.fetch({ limit: PAGE_SIZE });
    for (const message of first.messages) host.insert(message);
    if (typeof first.changes === "number" && Number.isSafeInteger(first.changes)) {
      host.followChanges(first.changes);
    }
    this.loaded = true;
    this.more = first.messages.length >= PAGE_SIZE;
    this.updateMarker();
    // Where the reader left off: older pages until it is loaded (a few at most), the line.
    const lastRead = first.last_read;
    for (let n = 0; typeof lastRead === "number" && n < UNREAD_PAGES; n += 1) {
      if (!this.more || host.lowestId === null || host.lowestId <= lastRead + 1) break;
      await this.loadOlder({ keepPlace: false });
    }
    host.showReadingPlace(host.placeUnreadLine(lastRead));
    this.fillViewport();
  }

  /**
   * The next page of older messages, above those shown.
   * @param {{keepPlace?: boolean, size?: number}} [options] ``keepPlace``: the reader's view
   *   stays where it is; ``size``: messages in the page
   */
  async loadOlder({ keepPlace = true, size = PAGE_SIZE } = {}) {
    const host = this.host;
    if (this.loadingOlder || !this.more || !this.loaded) return;
    if (host.lowestId === null) {
      this.more = false;
      this.updateMarker();
      return;
    }
    this.loadingOlder = true;
    this.set("loading", "Loading older messages…");
    try {
      const { messages } = await this.fetch({ before: host.lowestId, limit: size });
      // Keep what the reader looks at in place while the list grows above it.
      const restore = host.holdPlace();
      // Newest first, so that each one goes straight to the top of the list.
      for (const message of [...messages].reverse()) host.insert(message);
      if (keepPlace) restore();
      this.more = messages.length >= size;
      this.updateMarker();
    } catch {
      this.set("error", "Could not load older messages. Scroll up to try again.");
      return;
    } finally {
      this.loadingOlder = false;
    }
    if (keepPlace) this.fillViewport();
  }

  /**
   * Load older pages until message ``id`` is shown (a few long pages at most); false when it
   * could not be reached.
   * @param {number} id
   */
  async reach(id) {
    for (let n = 0; n < REACH_PAGES; n += 1) {
      const lowest = this.host.lowestId;
      if (lowest !== null && lowest <= id) return true;
      if (!this.loaded || !this.more) return false;
      while (this.loadingOlder) await new Promise((resolve) => setTimeout(resolve, 50));
      await this.loadOlder({ keepPlace: true, size: LONG_PAGE_SIZE });
    }
    const lowest = this.host.lowestId;
    return lowest !== null && lowest <= id;
  }

  /** Load older pages while the list is too short to scroll (scrolling is what loads more). */
  fillViewport() {
    if (this.more && this.host.tooShortToScroll()) this.loadOlder();
  }

  /**
   * @param {string} state
   * @param {string} text
   * @param {HTMLElement | null} [link]
   */
  set(state, text, link = null) {
    this.marker.dataset.state = state;
    this.marker.textContent = text;
    if (link) this.marker.append(" ", link);
  }

  updateMarker() {
    const channel = this.host.channel;
    if (this.more) {
      this.set("more", "Scroll up for older messages");
    } else if (this.host.count === 0 && this.host.me) {
      this.set("empty", `No messages in #${channel} yet. Say hello!`);
    } else if (this.host.count === 0) {
      // A visitor cannot say hello: the way to it.
      const link = document.createElement("a");
      link.href = `/login?next=${encodeURIComponent(window.location.pathname)}`;
      link.textContent = "Log in to chat.";
      this.set("empty", `No messages in #${channel} yet.`, link);
    } else {
      this.set("start", `This is the beginning of #${channel}.`);
    }
  }

  /**
   * Fetch the messages between ids ``after`` and ``before`` that never arrived live (a live
   * message named one before it that this page has not got), page by page; a failed fetch is
   * tried again a few times.
   * @param {number} after
   * @param {number} before
   * @param {number} [attempt]
   */
  async fillGap(after, before, attempt = 0) {
    let from = after;
    try {
      for (let pages = 0; pages < GAP_PAGES; pages += 1) {
        const { messages } = await this.fetch({ after: from, limit: LONG_PAGE_SIZE });
        for (const message of messages) if (message.id < before) this.host.addLive(message);
        const last = messages.at(-1);
        if (!last || last.id >= before || messages.length < LONG_PAGE_SIZE) return;
        from = last.id;
      }
    } catch {
      if (attempt < GAP_RETRIES) setTimeout(() => this.fillGap(from, before, attempt + 1), 2000);
    }
  }
}
