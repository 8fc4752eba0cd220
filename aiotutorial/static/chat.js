// The channel page's chat: history over HTTP, live messages and presence over the page's
// websocket (channel.js, shared with the game).
//
// The protocol is docs/protocol.md. Everything users write is put in the page with
// textContent, never parsed as HTML. Messages are keyed by id: each one is shown once, in id
// order, whatever way it came (history, catch-up after a reconnection, live).
//
// Other features of the page talk to the chat with DOM events on its root element:
// "chat:notice" ({detail: {text, kind, private}}) shows a notice in the timeline, and
// "chat:taken" says that the server took the last message sent (a correct guess) and that it
// will not come back.

import { channelSocket } from "./channel.js";
import { element } from "./dom.js";

const PAGE_SIZE = 50;
const MAX_LENGTH = 2000;
const COUNTER_FROM = 1800; // show the character counter from this length on
const POLL_MS = 5000; // visitors who are not signed in get no websocket: they poll
const BOTTOM_SLACK_PX = 48; // "at the bottom" within this distance
const TOP_LOAD_PX = 120; // load older messages when scrolled this close to the top
const GROUP_GAP_MS = 5 * 60 * 1000; // one author's messages this close share one header

const ERROR_TEXT = {
  rate_limited: "You are sending messages too fast. Wait a moment, then send again.",
  too_long: `A message can have at most ${MAX_LENGTH} characters.`,
  empty: "The message is empty.",
  unavailable: "The message could not be saved right now. Send it again.",
  word_in_chat: "You cannot give the word away in the chat.",
};
// Codes only a chat message gets; shared ones (rate_limited, ...) come back to whoever sent last.
const CHAT_ERRORS = ["bad_content", "empty", "too_long", "word_in_chat"];

// -- time, in the reader's locale ---------------------------------------------------------------

const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "numeric",
  minute: "2-digit",
});
const yearFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

function sameDay(a, b) {
  return (
    a.getFullYear() === b.getFullYear() &&
    a.getMonth() === b.getMonth() &&
    a.getDate() === b.getDate()
  );
}

/** A short local rendering of an ISO time: the clock today, the date too on other days. */
export function shortTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const now = new Date();
  if (sameDay(date, now)) return clockFormat.format(date);
  if (date.getFullYear() === now.getFullYear()) return dayFormat.format(date);
  return yearFormat.format(date);
}

/** The full local date and time, for tooltips. */
export function fullTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : fullFormat.format(date);
}

function isMessage(frame) {
  return (
    frame !== null &&
    typeof frame === "object" &&
    Number.isSafeInteger(frame.id) &&
    typeof frame.user === "string" &&
    typeof frame.content === "string" &&
    typeof frame.time === "string"
  );
}

// -- the page -------------------------------------------------------------------------------------

class ChatPage {
  constructor(root) {
    this.root = root;
    this.channel = root.dataset.channel;
    this.messagesUrl = root.dataset.messagesUrl;
    this.me = root.dataset.user || "";

    this.scroller = root.querySelector("[data-role=scroller]");
    this.list = root.querySelector("[data-role=messages]");
    this.history = root.querySelector("[data-role=history]");
    this.pill = root.querySelector("[data-role=new-pill]");
    this.members = root.querySelector("[data-role=members]");
    this.memberCounts = root.querySelectorAll("[data-role=member-count]");
    this.membersToggle = root.querySelector("[data-role=members-toggle]");
    this.form = root.querySelector("[data-role=composer]");
    this.input = root.querySelector("[data-role=input]");
    this.counter = root.querySelector("[data-role=counter]");
    this.notice = root.querySelector("[data-role=notice]");
    this.noticeText = root.querySelector("[data-role=notice-text]");

    this.shown = new Map(); // message id -> its <li>
    this.highestId = 0;
    this.lowestId = null;
    this.historyLoaded = false;
    this.moreHistory = true;
    this.loadingOlder = false;
    this.unseen = 0;
    this.stuck = true; // at the bottom as of the last scroll: stay there when the view resizes

    this.socket = channelSocket(root);
    this.pending = null; // {text, content, connection}: sent, not yet seen coming back
    this.pollTimer = null;
  }

  start() {
    this.bindScrolling();
    this.bindMembersToggle();
    this.bindNotices();
    if (this.form) this.bindComposer();
    const socket = this.socket;
    this.client = socket.client({
      codes: CHAT_ERRORS,
      onError: (frame) => {
        this.restorePending(null);
        this.showNotice(ERROR_TEXT[frame.error] || frame.detail || "The message was refused.");
      },
    });
    // The history first, then the socket with ?after= its last id: nothing falls between.
    socket.before(() => this.loadHistoryOnce());
    socket.param("after", () => this.highestId);
    socket.on("message", (frame) => this.addLive(frame));
    socket.on("presence", (frame) => {
      if (Array.isArray(frame.users)) this.setMembers(frame.users);
    });
    socket.on("ready", () => {
      // The catch-up is over: a message sent on an earlier socket that did not come back
      // in it was lost with that socket.
      if (this.pending && this.pending.connection !== socket.connection) {
        this.restorePending("The connection was lost before your message was sent.");
      }
    });
    socket.start();
    if (!this.me) {
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible") this.poll();
      });
      this.poll();
    }
  }

  async loadHistoryOnce() {
    if (this.historyLoaded) return;
    try {
      await this.loadInitial();
    } catch (error) {
      this.setHistory("error", "Could not load the messages; retrying…");
      throw error;
    }
  }

  // -- history over HTTP ----------------------------------------------------------------------

  async fetchMessages(params) {
    const url = new URL(this.messagesUrl, window.location.href);
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, String(value));
    const response = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`GET ${url.pathname}: ${response.status}`);
    const body = await response.json();
    return Array.isArray(body.messages) ? body.messages.filter(isMessage) : [];
  }

  async loadInitial() {
    this.setHistory("loading", "Loading messages…");
    const messages = await this.fetchMessages({ limit: PAGE_SIZE });
    for (const message of messages) this.insert(message);
    this.historyLoaded = true;
    this.moreHistory = messages.length >= PAGE_SIZE;
    this.updateHistoryMarker();
    this.scrollToBottom();
    this.fillViewport();
  }

  async loadOlder() {
    if (this.loadingOlder || !this.moreHistory || !this.historyLoaded) return;
    if (this.lowestId === null) {
      this.moreHistory = false;
      this.updateHistoryMarker();
      return;
    }
    this.loadingOlder = true;
    this.setHistory("loading", "Loading older messages…");
    try {
      const messages = await this.fetchMessages({ before: this.lowestId, limit: PAGE_SIZE });
      // Keep what the reader looks at in place while the list grows above it.
      const fromBottom = this.scroller.scrollHeight - this.scroller.scrollTop;
      // Newest first, so that each one goes straight to the top of the list.
      for (const message of [...messages].reverse()) this.insert(message);
      this.scroller.scrollTop = this.scroller.scrollHeight - fromBottom;
      this.moreHistory = messages.length >= PAGE_SIZE;
      this.updateHistoryMarker();
    } catch {
      this.setHistory("error", "Could not load older messages. Scroll up to try again.");
      return;
    } finally {
      this.loadingOlder = false;
    }
    this.fillViewport();
  }

  /** Load older pages while the list is too short to scroll (scrolling is what loads more). */
  fillViewport() {
    if (this.moreHistory && this.scroller.scrollHeight <= this.scroller.clientHeight + 1) {
      this.loadOlder();
    }
  }

  setHistory(state, text) {
    this.history.dataset.state = state;
    this.history.textContent = text;
  }

  updateHistoryMarker() {
    if (this.moreHistory) {
      this.setHistory("more", "Scroll up for older messages");
    } else if (this.shown.size === 0) {
      this.setHistory("empty", `No messages in #${this.channel} yet. Say hello!`);
    } else {
      this.setHistory("start", `This is the beginning of #${this.channel}.`);
    }
  }

  // -- rendering messages ---------------------------------------------------------------------

  render(message) {
    const item = element("li", "msg");
    item.dataset.id = String(message.id);
    item.dataset.user = message.user;
    item.dataset.time = String(new Date(message.time).getTime());
    if (message.user === this.me) item.classList.add("mine");
    const head = element("div", "msg-head");
    const author = element("span", "msg-user", message.user);
    const time = element("time", "msg-time", shortTime(message.time));
    time.dateTime = message.time;
    time.title = fullTime(message.time);
    head.append(author, time);
    const body = element("div", "msg-body", message.content);
    item.append(head, body);
    return item;
  }

  /** Show ``message`` in id order unless it is already shown; true when it was added. */
  insert(message) {
    if (!isMessage(message) || this.shown.has(message.id)) return false;
    const item = this.render(message);
    let before = null;
    if (this.lowestId !== null && message.id < this.lowestId) {
      before = this.list.firstElementChild;
    } else if (message.id < this.highestId) {
      // Rare (older pages go the way above): walk back from the end to its place.
      let node = this.list.lastElementChild;
      while (node && Number(node.dataset.id) > message.id) {
        before = node;
        node = node.previousElementSibling;
      }
    }
    this.list.insertBefore(item, before);
    this.shown.set(message.id, item);
    this.highestId = Math.max(this.highestId, message.id);
    this.lowestId = this.lowestId === null ? message.id : Math.min(this.lowestId, message.id);
    this.regroup(item);
    if (item.nextElementSibling) this.regroup(item.nextElementSibling);
    return true;
  }

  /** Consecutive messages of one author a few minutes apart share the first one's header. */
  regroup(item) {
    const previous = item.previousElementSibling;
    const follows =
      previous !== null &&
      previous.dataset.user === item.dataset.user &&
      Number(item.dataset.time) - Number(previous.dataset.time) < GROUP_GAP_MS;
    item.classList.toggle("cont", follows);
  }

  /** Messages that arrived live (or in a catch-up): stick to the bottom or count them. */
  addLive(message) {
    const stick = this.stuck || this.atBottom();
    if (!this.insert(message)) return;
    if (this.pending && message.user === this.me && message.content === this.pending.content) {
      this.pending = null;
    }
    if (this.shown.size === 1 || !this.moreHistory) this.updateHistoryMarker();
    if (stick || message.user === this.me) {
      this.scrollToBottom();
    } else {
      this.unseen += 1;
      this.pill.textContent =
        this.unseen === 1 ? "1 new message ↓" : `${this.unseen} new messages ↓`;
      this.pill.hidden = false;
    }
  }

  // -- notices from the page's other features ------------------------------------------------

  bindNotices() {
    this.root.addEventListener("chat:notice", (event) => {
      const detail = event.detail || {};
      if (typeof detail.text === "string" && detail.text) this.addNotice(detail);
    });
    this.root.addEventListener("chat:taken", () => {
      this.pending = null;
    });
  }

  /** A line in the timeline that is not a message (kept out of ``shown``, never grouped).
   * Its data-id sits between the last message shown and the next one, so that a message
   * that arrives late still finds its place by id. */
  addNotice({ text, kind = "info", private: only = false }) {
    const stick = this.stuck || this.atBottom();
    const item = element("li", `chat-notice notice-${kind}`);
    item.dataset.id = String(this.highestId + 0.5);
    item.append(element("span", "chat-notice-text", text));
    if (only) {
      item.classList.add("private");
      item.append(element("span", "chat-notice-only", "only you see this"));
    }
    this.list.append(item);
    if (stick) this.scrollToBottom();
  }

  // -- scrolling ------------------------------------------------------------------------------

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= BOTTOM_SLACK_PX;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.stuck = true;
    this.unseen = 0;
    this.pill.hidden = true;
  }

  bindScrolling() {
    this.scroller.addEventListener(
      "scroll",
      () => {
        this.stuck = this.atBottom();
        if (this.stuck) {
          this.unseen = 0;
          this.pill.hidden = true;
        }
        if (this.scroller.scrollTop <= TOP_LOAD_PX) this.loadOlder();
      },
      { passive: true },
    );
    this.pill.addEventListener("click", () => this.scrollToBottom());
    // The list gets shorter when the composer grows, the members open or a phone's keyboard
    // shows: a reader who was at the bottom stays there.
    if ("ResizeObserver" in window) {
      new ResizeObserver(() => {
        const s = this.scroller;
        if (this.stuck && s.scrollHeight - s.scrollTop - s.clientHeight > 1) this.scrollToBottom();
      }).observe(this.scroller);
    }
  }

  bindMembersToggle() {
    if (!this.membersToggle) return;
    this.membersToggle.addEventListener("click", () => {
      const open = this.root.toggleAttribute("data-members-open");
      this.membersToggle.setAttribute("aria-expanded", String(open));
    });
  }

  setMembers(users) {
    if (!this.members) return;
    const names = [...new Set(users.filter((name) => typeof name === "string"))].sort((a, b) =>
      a.localeCompare(b),
    );
    const items = names.map((name) => {
      const item = element("li", "member", name);
      if (name === this.me) {
        item.classList.add("me");
        item.append(element("span", "you", "(you)"));
      }
      return item;
    });
    this.members.replaceChildren(...items);
    for (const count of this.memberCounts) count.textContent = String(names.length);
  }

  // -- the composer ---------------------------------------------------------------------------

  bindComposer() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener("input", () => this.updateComposer());
    this.notice
      .querySelector("[data-role=dismiss]")
      .addEventListener("click", () => this.hideNotice());
    this.updateComposer();
  }

  updateComposer() {
    const input = this.input;
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
    const length = input.value.length;
    this.counter.hidden = length < COUNTER_FROM;
    this.counter.textContent = `${length} / ${MAX_LENGTH}`;
    this.counter.classList.toggle("over", length > MAX_LENGTH);
  }

  send() {
    const text = this.input.value;
    const content = text.trim();
    if (!content) return;
    if (content.length > MAX_LENGTH) {
      this.showNotice(ERROR_TEXT.too_long);
      return;
    }
    if (!this.client.send({ type: "message", content })) {
      this.showNotice("Not connected right now. Your message is kept: send it once live.");
      return;
    }
    this.pending = { text, content, connection: this.socket.connection };
    this.input.value = "";
    this.hideNotice();
    this.updateComposer();
    this.input.focus();
  }

  /** Put back the text of a message that was not taken, unless something else was typed. */
  restorePending(reason) {
    const pending = this.pending;
    if (!pending) return;
    this.pending = null;
    if (!this.input) return;
    if (this.input.value.trim() === "") {
      this.input.value = pending.text;
    } else if (this.input.value !== pending.text) {
      this.input.value = `${pending.text}\n${this.input.value}`;
    }
    this.updateComposer();
    if (reason) this.showNotice(reason);
  }

  showNotice(text) {
    if (!this.notice) return;
    this.noticeText.textContent = text;
    this.notice.hidden = false;
  }

  hideNotice() {
    if (this.notice) this.notice.hidden = true;
  }

  // -- visitors who are not signed in ---------------------------------------------------------

  async poll() {
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
    try {
      if (!this.historyLoaded) {
        await this.loadInitial();
      } else if (document.visibilityState === "visible") {
        const messages = await this.fetchMessages({ after: this.highestId, limit: 200 });
        for (const message of messages) this.addLive(message);
      }
    } catch {
      // The next poll tries again.
    }
    this.pollTimer = setTimeout(() => this.poll(), POLL_MS);
  }
}

const root = document.getElementById("chat");
if (root) {
  const page = new ChatPage(root);
  page.start();
}
