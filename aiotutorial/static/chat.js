// The channel page's chat: history over HTTP, then the page's websocket (channel.js, shared
// with the game) for live messages, edits and deletes, who is online and who is typing.
//
// The protocol is docs/protocol.md. Everything users write is put in the page as text or as
// DOM nodes built for it (links, mentions: text.js), never parsed as HTML. Messages are keyed
// by id: each one is shown once, in id order, whatever way it came (history, catch-up after a
// reconnection, live, the answer to a resend), always in its latest state.
//
// The parts: the history (history.js), the rows (render.js), what this page sent and has not
// seen stored (outbox.js), the message box (composer.js), editing one's own messages
// (editing.js), what was read (unread.js), who is typing (typing.js), the channel list
// (sidebar.js).
//
// Other features of the page talk to the chat with DOM events on its root element:
// "chat:notice" ({detail: {text, kind, private}}) shows a notice in the timeline.

import { channelSocket } from "./channel.js";
import { Composer } from "./composer.js";
import { element } from "./dom.js";
import { MessageEditing } from "./editing.js";
import { History } from "./history.js";
import { notifyHidden } from "./notify.js";
import { ERROR_TEXT, Outbox } from "./outbox.js";
import { foldIfLong, isMessage, renderMessage, updateMessage } from "./render.js";
import { Sidebar } from "./sidebar.js";
import { TypingLine } from "./typing.js";
import { ReadState } from "./unread.js";

export { fullTime, shortTime } from "./time.js";

const BOTTOM_SLACK_PX = 48; // "at the bottom" within this distance
const TOP_LOAD_PX = 120; // load older messages when scrolled this close to the top
const GROUP_GAP_MS = 5 * 60 * 1000; // one author's messages this close share one header
// Codes only a chat message gets; shared ones (rate_limited, ...) come back with their ref.
const CHAT_ERRORS = ["bad_content", "empty", "too_long", "word_in_chat", "not_yours", "deleted"];

class ChatPage {
  constructor(root) {
    this.root = root;
    this.channel = root.dataset.channel;
    this.me = root.dataset.user || "";

    this.scroller = root.querySelector("[data-role=scroller]");
    this.list = root.querySelector("[data-role=messages]");
    this.pill = root.querySelector("[data-role=new-pill]");
    this.members = root.querySelector("[data-role=members]");
    this.memberCounts = root.querySelectorAll("[data-role=member-count]");
    this.membersToggle = root.querySelector("[data-role=members-toggle]");
    this.form = root.querySelector("[data-role=composer]");

    this.shown = new Map(); // message id -> its <li>
    this.messages = new Map(); // message id -> the message as it is now
    this.highestId = 0;
    this.lowestId = null;
    this.changes = null; // position in the channel's stream of changes (edits, deletes)
    this.unseen = 0;
    this.stuck = true; // at the bottom as of the last scroll: stay there when the view resizes

    this.socket = channelSocket(root);
    this.read = new ReadState(this);
    this.typing = new TypingLine(root.querySelector("[data-role=typing]"), this.me);
    this.editing = new MessageEditing(this);
    this.history = new History(
      this,
      root.dataset.messagesUrl,
      root.querySelector("[data-role=history]"),
    );
  }

  start() {
    this.bindScrolling();
    this.bindMembersToggle();
    this.bindNotices();
    const socket = this.socket;
    this.client = socket.client({ codes: CHAT_ERRORS, onError: (frame) => this.onError(frame) });
    if (this.form) {
      this.composer = new Composer(this.form, {
        onSend: (content) => this.outbox.add(content),
        onTyping: () => socket.isOpen() && this.client.send({ type: "typing" }),
      });
      this.outbox = new Outbox(this.root.querySelector("[data-role=outbox]"), {
        channel: this.channel,
        me: this.me,
        send: (frame) => this.client.send(frame),
        isLive: () => socket.state === "live" && socket.isOpen(),
        reconnect: () => {
          socket.attempts = 0;
          socket.reconnectNow();
        },
        onEdit: (text) => this.composer.putBack(text),
        onChange: () => this.stuck && this.scrollToBottom(),
      });
      this.composer.start();
      this.editing.bind(this.list);
    }
    // The history first, then the socket with ?after= its last id (and ?changes= its place
    // in the stream of edits and deletes): nothing falls between.
    socket.before(() => this.history.loadOnce());
    socket.param("after", () => this.highestId);
    socket.param("changes", () => this.changes);
    socket.on("message", (frame) => this.onMessage(frame));
    socket.on("message.changed", (frame) => this.onChanged(frame));
    socket.on("ack", (frame) => this.answer(frame));
    socket.on("typing", (frame) => this.typing.typing(frame));
    socket.on("presence", (frame) => {
      if (Array.isArray(frame.users)) this.setMembers(frame.users);
    });
    socket.on("ready", (frame) => this.onReady(frame));
    socket.onState((state) => {
      if (state !== "live") {
        this.outbox?.disconnected();
        this.typing.clear();
      }
    });
    socket.start();
    this.read.start();
    const nav = document.getElementById("sidebar");
    if (nav) new Sidebar(nav, this.root).start();
  }

  // -- frames from the socket -----------------------------------------------------------------

  onMessage(frame) {
    if (typeof frame.ref === "string") this.outbox?.answer(frame);
    const known = this.highestId ?? 0;
    this.addLive(frame);
    // A live message names the one everyone could read before it: if this page never got
    // that one (a delivery lost on the way), it fetches what it missed.
    if (Number.isSafeInteger(frame.prev) && frame.prev > known && this.history.loaded) {
      this.history.fillGap(known, frame.id);
    }
  }

  onChanged(frame) {
    if (typeof frame.ref === "string") this.editing.answer(frame);
    if (Number.isSafeInteger(frame.change)) this.changes = Math.max(this.changes ?? 0, frame.change);
    if (!isMessage(frame) || !this.shown.has(frame.id)) return; // not loaded: history has it
    const message = { ...frame, type: "message" };
    this.messages.set(frame.id, message);
    const item = this.shown.get(frame.id);
    updateMessage(item, message, this.me);
    foldIfLong(item);
  }

  /** An ack (a message taken by the game, an edit that changed nothing) or an error. */
  answer(frame) {
    if (typeof frame.ref !== "string") return false;
    return Boolean(this.outbox?.answer(frame) || this.editing.answer(frame));
  }

  onError(frame) {
    if (this.answer(frame)) return;
    this.composer?.showNotice(ERROR_TEXT[frame.error] || frame.detail || "Refused by the server.");
  }

  onReady(frame) {
    if (Number.isSafeInteger(frame.changes)) this.changes = Math.max(this.changes ?? 0, frame.changes);
    this.composer?.hideNotice();
    this.outbox?.live();
    this.read.seen();
  }

  // -- the timeline ---------------------------------------------------------------------------

  /** Show ``message`` in id order unless it is already shown; true when it was added. */
  insert(message) {
    if (!isMessage(message) || this.shown.has(message.id)) return false;
    const item = renderMessage(message, this.me);
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
    this.messages.set(message.id, message);
    this.highestId = Math.max(this.highestId, message.id);
    this.lowestId = this.lowestId === null ? message.id : Math.min(this.lowestId, message.id);
    this.regroup(item);
    if (item.nextElementSibling) this.regroup(item.nextElementSibling);
    foldIfLong(item);
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
    this.typing.stopped(message.user);
    if (this.shown.size === 1 || !this.history.more) this.history.updateMarker();
    if (stick || message.user === this.me) {
      this.scrollToBottom();
    } else {
      this.unseen += 1;
      this.pill.textContent =
        this.unseen === 1 ? "1 new message ↓" : `${this.unseen} new messages ↓`;
      this.pill.hidden = false;
    }
    this.read.arrived(message);
    if (this.shown.get(message.id).classList.contains("mentions-me")) {
      notifyHidden(
        `${message.user} mentioned you in #${this.channel}`,
        message.content.slice(0, 200),
        `mention-${this.channel}-${message.id}`,
      );
    }
  }

  // -- notices from the page's other features ------------------------------------------------

  bindNotices() {
    this.root.addEventListener("chat:notice", (event) => {
      const detail = event.detail || {};
      if (typeof detail.text === "string" && detail.text) this.addNotice(detail);
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
          this.read.seen();
        }
        if (this.scroller.scrollTop <= TOP_LOAD_PX) this.history.loadOlder();
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

}

const root = document.getElementById("chat");
if (root) {
  const page = new ChatPage(root);
  page.start();
}
