// The channel page's chat: history over HTTP, then the page's websocket (lib/socket.js, shared
// with the game) for live messages, edits and deletes, pins, who is online and who is typing.
//
// The protocol is docs/protocol.md. Everything users write is put in the page as text or as
// DOM nodes built for it (links, mentions: lib/text.js), never parsed as HTML. Messages are
// keyed by id: each one is shown once, in id order, whatever way it came (history, catch-up
// after a reconnection, live, the answer to a resend), always in its latest state.
//
// The parts, each given what it needs of the chat (its methods, never its fields): the history
// (history.js), the rows (message-row.js), what this page sent and has not seen stored
// (message-outbox.js), the message box (composer.js), editing one's own messages
// (message-editing.js), what was read (read-state.js), who is typing (typing-line.js), the
// pinned messages (pins.js).
//
// Other features of the page talk to the chat with DOM events on its root element:
// "chat:notice" ({detail: {text, kind, private}}) shows a notice in the timeline.

import { avatarElement } from "../lib/avatar.js";
import { element, find, maybe } from "../lib/dom.js";
import { sendJson } from "../lib/http.js";
import { ERRORS } from "../lib/protocol.js";
import { Composer } from "./composer.js";
import { History } from "./history.js";
import { moderate } from "./moderation.js";
import { MessageEditing } from "./message-editing.js";
import { ERROR_TEXT, MessageOutbox } from "./message-outbox.js";
import {
  fillQuote,
  firstLine,
  foldIfLong,
  isMessage,
  renderMessage,
  updateMessage,
} from "./message-row.js";
import { notifyHidden } from "./notifications.js";
import { PinnedMessages } from "./pins.js";
import { ReactionPicker } from "./reaction-picker.js";
import { ReadState } from "./read-state.js";
import { TypingLine } from "./typing-line.js";
import { Attachments } from "./uploads.js";

/** @typedef {import("../lib/socket.js").ChannelSocket} ChannelSocket */
/** @typedef {import("../lib/socket.js").ErrorFrame} ErrorFrame */
/** @typedef {import("../lib/socket.js").ReadyFrame} ReadyFrame */
/** @typedef {import("../lib/socket.js").SocketClient} SocketClient */
/** @typedef {import("./message-row.js").Message} Message */
/** @typedef {import("./message-row.js").ChangedFrame} ChangedFrame */

/** @typedef {{type: "presence", users?: unknown}} PresenceFrame */
/** @typedef {{type: "ack", ref?: string}} AckFrame */
/** @typedef {{type: "typing", user?: unknown, ms?: unknown}} TypingFrame */

/**
 * What the page's other features may ask of the chat: a notice in the timeline.
 * @typedef {{text: string, kind?: string, private?: boolean}} Notice
 */

const BOTTOM_SLACK_PX = 48; // "at the bottom" within this distance
const TOP_LOAD_PX = 120; // load older messages when scrolled this close to the top
const GROUP_GAP_MS = 5 * 60 * 1000; // one author's messages this close share one header
const FLASH_MS = 2000; // a message jumped to is marked this long
// Codes only a chat message gets; shared ones (rate_limited, ...) come back with their ref.
const CHAT_ERRORS = [
  ERRORS.BAD_CONTENT,
  ERRORS.EMPTY,
  ERRORS.TOO_LONG,
  ERRORS.WORD_IN_CHAT,
  ERRORS.NOT_YOURS,
  ERRORS.DELETED,
  ERRORS.BAD_REPLY,
  ERRORS.BAD_EMOJI,
  ERRORS.TOO_MANY_REACTIONS,
  ERRORS.MUTED,
];

export class ChannelChat {
  /** @type {number | null} position in the channel's stream of changes (edits, deletes) */
  #changes = null;
  /** at the bottom as of the last scroll: stay there when the view resizes */
  #stuck = true;
  #unseen = 0;
  #highestId = 0;
  /** @type {number | null} */
  #lowestId = null;
  /** @type {Map<number, HTMLElement>} message id -> its <li> */
  #shown = new Map();
  /** @type {Map<number, Message>} message id -> the message as it is now */
  #messages = new Map();
  /** @type {Map<number, Promise<Message | null>>} messages answered, read for their quotes */
  #answered = new Map();

  /**
   * @param {HTMLElement} root the chat's section (data-channel, data-user, data-messages-url,
   *   data-pins-url)
   * @param {ChannelSocket} socket the page's socket
   */
  constructor(root, socket) {
    this.root = root;
    this.channel = root.dataset.channel || "";
    this.me = root.dataset.user || "";
    /** the reader moderates the channel (channel.jinja2's data-moderator) */
    this.moderator = Boolean(root.dataset.moderator);
    this.socket = socket;

    this.scroller = find(root, "[data-role=scroller]");
    this.list = find(root, "[data-role=messages]");
    this.pill = find(root, "[data-role=new-pill]");
    this.members = maybe(root, "[data-role=members]");
    this.memberCounts = root.querySelectorAll("[data-role=member-count]");
    this.membersToggle = maybe(root, "[data-role=members-toggle]");
    this.form = root.querySelector("[data-role=composer]");

    this.client = socket.client({
      codes: CHAT_ERRORS,
      onError: (frame) => this.onError(frame),
    });
    /** the channel's kind: "public", "private" or "dm" */
    this.kind = root.dataset.kind || "public";
    this.read = new ReadState(this);
    this.read.level = root.dataset.notify || "all";
    this.typing = new TypingLine(maybe(root, "[data-role=typing]"), this.me);
    this.editing = new MessageEditing({
      send: (frame) => this.client.send(frame),
      message: (/** @type {number} */ id) => this.#messages.get(id),
    });
    this.history = new History(
      this,
      root.dataset.messagesUrl || "",
      find(root, "[data-role=history]"),
    );
    this.pins = new PinnedMessages(find(root, "[data-role=pins]"), {
      url: root.dataset.pinsUrl || "",
      me: this.me,
      socket,
      message: (/** @type {number} */ id) => this.#messages.get(id),
      row: (/** @type {number} */ id) => this.#shown.get(id) ?? null,
      jump: (/** @type {number} */ id) => this.jumpTo(id),
    });
    /** @type {Composer | null} */
    this.composer = null;
    /** @type {MessageOutbox | null} */
    this.outbox = null;
    this.picker = new ReactionPicker();
  }

  start() {
    this.bindScrolling();
    this.bindMembersToggle();
    this.bindMemberMessages();
    this.bindNotices();
    const socket = this.socket;
    if (this.form instanceof HTMLFormElement) {
      const composer = new Composer(this.form, {
        onSend: (content, replyTo, uploads) => this.outbox?.add(content, replyTo, uploads),
        onTyping: () => socket.isOpen() && this.client.send({ type: "typing" }),
      });
      this.composer = composer;
      this.outbox = new MessageOutbox(find(this.root, "[data-role=outbox]"), {
        channel: this.channel,
        me: this.me,
        send: (frame) => this.client.send(frame),
        isLive: () => socket.state === "live" && socket.isOpen(),
        reconnect: () => socket.retryNow(),
        onEdit: (text) => composer.putBack(text),
        onChange: () => this.#stuck && this.scrollToBottom(),
      });
      const attachments = new Attachments(this.form, this.channel, {
        onError: (text) => composer.showNotice(text),
      });
      composer.attachments = attachments;
      attachments.start();
      composer.start();
      this.editing.bind(this.list);
    }
    this.list.addEventListener("click", (event) => this.onAction(event));
    // The history (and the pins) first, then the socket with ?after= its last id (and
    // ?changes= its place in the stream of edits and deletes, ?pins= in that of pins):
    // nothing falls between.
    socket.before(() => this.history.loadOnce());
    socket.param("after", () => this.#highestId);
    socket.param("changes", () => this.#changes);
    this.pins.start();
    socket.on("message", (/** @type {Message} */ frame) => this.onMessage(frame));
    socket.on("message.changed", (/** @type {ChangedFrame} */ frame) => this.onChanged(frame));
    socket.on("ack", (/** @type {AckFrame} */ frame) => this.answer(frame));
    socket.on("typing", (/** @type {TypingFrame} */ frame) => this.typing.typing(frame));
    socket.on("presence", (/** @type {PresenceFrame} */ frame) => {
      if (Array.isArray(frame.users)) this.setMembers(frame.users);
    });
    socket.on("ready", (/** @type {ReadyFrame & {changes?: unknown}} */ frame) => {
      this.onReady(frame);
    });
    // A link to one message (a search result's: #message-ID) shows it once the page is live.
    const wanted = /^#message-(\d+)$/.exec(window.location.hash);
    let jump = wanted ? Number(wanted[1]) : null;
    socket.onState((state) => {
      if (state !== "live") {
        this.outbox?.disconnected();
        this.typing.clear();
      } else if (jump !== null) {
        const id = jump;
        jump = null;
        this.jumpTo(id).then((reached) => {
          if (!reached) this.addNotice({ text: "That message is not there any more." });
        });
      }
    });
    socket.start();
    this.read.start();
  }

  // -- what the parts read --------------------------------------------------------------------

  /** The newest message id shown (0: none). */
  get highestId() {
    return this.#highestId;
  }

  /** The oldest message id shown (null: none). */
  get lowestId() {
    return this.#lowestId;
  }

  /** How many messages are shown. */
  get count() {
    return this.#shown.size;
  }

  /**
   * Tell the server the reader has read up to message ``id``; false when it cannot be sent.
   * @param {number} id
   */
  sendRead(id) {
    return this.socket.isOpen() && this.client.send({ type: "read", id });
  }

  /**
   * The position in the stream of edits and deletes moves on to ``position`` (never back).
   * @param {number} position
   */
  followChanges(position) {
    this.#changes = Math.max(this.#changes ?? 0, position);
  }

  // -- frames from the socket -----------------------------------------------------------------

  /** @param {Message} frame */
  onMessage(frame) {
    if (typeof frame.ref === "string") this.outbox?.answer(frame);
    const known = this.#highestId;
    this.addLive(frame);
    // A live message names the one everyone could read before it: if this page never got
    // that one (a delivery lost on the way), it fetches what it missed.
    if (
      typeof frame.prev === "number" &&
      Number.isSafeInteger(frame.prev) &&
      frame.prev > known &&
      this.history.loaded
    ) {
      this.history.fillGap(known, frame.id);
    }
  }

  /** @param {ChangedFrame} frame */
  onChanged(frame) {
    if (typeof frame.ref === "string") this.editing.answer(frame);
    if (typeof frame.change === "number" && Number.isSafeInteger(frame.change)) {
      this.followChanges(frame.change);
    }
    if (!isMessage(frame)) return;
    const message = { ...frame, type: "message" };
    this.pins.changed(message);
    const item = this.#shown.get(frame.id);
    if (!item) return; // not loaded: history has it
    this.#messages.set(frame.id, message);
    updateMessage(item, message, this.me);
    this.pins.mark(item);
    foldIfLong(item);
    this.quote(item, message);
    // Rows that quote it say what it says now.
    for (const row of this.list.querySelectorAll(`.msg-quote[data-reply-to="${frame.id}"]`)) {
      const quoting = row.closest("li.msg");
      if (quoting instanceof HTMLElement) fillQuote(quoting, message);
    }
  }

  // -- replies and reactions ------------------------------------------------------------------

  /**
   * Fill ``item``'s quote of the message ``message`` answers: from the page, else read once.
   * @param {HTMLElement} item
   * @param {Message} message
   */
  quote(item, message) {
    const id = message.reply_to;
    if (typeof id !== "number") return;
    const shown = this.#messages.get(id);
    if (shown) {
      fillQuote(item, shown);
      return;
    }
    let reading = this.#answered.get(id);
    if (!reading) {
      reading = this.readMessage(id);
      this.#answered.set(id, reading);
    }
    reading.then((answered) => fillQuote(item, this.#messages.get(id) ?? answered));
  }

  /**
   * One message by id, from the history (null when it is not there or not readable).
   * @param {number} id
   * @returns {Promise<Message | null>}
   */
  async readMessage(id) {
    try {
      const page = await this.history.fetch({ after: id - 1, limit: 1 });
      const found = page.messages[0];
      return found && found.id === id ? found : null;
    } catch {
      return null;
    }
  }

  /** @param {Event} event */
  onAction(event) {
    const target = event.target instanceof Element ? event.target.closest("button") : null;
    const item = target?.closest("li.msg");
    if (!(target instanceof HTMLElement) || !(item instanceof HTMLElement)) return;
    const id = Number(item.dataset.id);
    const message = this.#messages.get(id);
    const action = target.dataset.action;
    if (action === "reply" && message && this.composer) {
      this.composer.setReply(id, `${message.user}: ${firstLine(message.content)}`);
    } else if (action === "react") {
      this.picker.open(target, (emoji) => this.react(id, emoji));
    } else if (action === "toggle-reaction" && target.dataset.emoji) {
      this.react(id, target.dataset.emoji);
    } else if ((action === "report" || action === "mute" || action === "ban") && message) {
      const base = (this.root.dataset.messagesUrl || "").replace(/\/messages$/, "");
      moderate(action, base, message).then((notice) => {
        if (notice) this.addNotice({ text: notice });
      });
    } else if (action === "quote" && target.dataset.replyTo) {
      this.jumpTo(Number(target.dataset.replyTo)).then((reached) => {
        if (!reached) this.addNotice({ text: "That message is not there any more." });
      });
    }
  }

  /**
   * Toggle the reader's ``emoji`` on message ``id`` (the change comes back to every reader).
   * @param {number} id
   * @param {string} emoji
   */
  react(id, emoji) {
    if (!this.socket.isOpen() || !this.client.send({ type: "react", id, emoji })) {
      this.composer?.showNotice("Not connected: the reaction was not sent.");
    }
  }

  /**
   * An ack (a message taken by the game, an edit that changed nothing) or an error: true when
   * it answered one of ours.
   * @param {{type?: string, ref?: string, error?: string, detail?: string}} frame
   */
  answer(frame) {
    if (typeof frame.ref !== "string") return false;
    return Boolean(this.outbox?.answer(frame) || this.editing.answer(frame));
  }

  /** @param {ErrorFrame} frame */
  onError(frame) {
    if (this.answer(frame)) return;
    this.composer?.showNotice(ERROR_TEXT[frame.error] || frame.detail || "Refused by the server.");
  }

  /** @param {ReadyFrame & {changes?: unknown}} frame */
  onReady(frame) {
    if (typeof frame.changes === "number" && Number.isSafeInteger(frame.changes)) {
      this.followChanges(frame.changes);
    }
    this.composer?.hideNotice();
    this.outbox?.live();
    this.read.seen();
  }

  // -- the timeline ---------------------------------------------------------------------------

  /**
   * Show ``message`` in id order unless it is already shown; true when it was added.
   * @param {Message} message
   */
  insert(message) {
    if (!isMessage(message) || this.#shown.has(message.id)) return false;
    const item = renderMessage(message, this.me, {
      pinnable: Boolean(this.me),
      moderator: this.moderator,
      bannable: this.moderator && this.root.dataset.kind === "public",
    });
    /** @type {Element | null} */
    let before = null;
    if (this.#lowestId !== null && message.id < this.#lowestId) {
      before = this.list.firstElementChild;
    } else if (message.id < this.#highestId) {
      // Rare (older pages go the way above): walk back from the end to its place.
      let node = /** @type {HTMLElement | null} */ (this.list.lastElementChild);
      while (node && Number(node.dataset.id) > message.id) {
        before = node;
        node = /** @type {HTMLElement | null} */ (node.previousElementSibling);
      }
    }
    this.list.insertBefore(item, before);
    this.#shown.set(message.id, item);
    this.#messages.set(message.id, message);
    this.#highestId = Math.max(this.#highestId, message.id);
    this.#lowestId = this.#lowestId === null ? message.id : Math.min(this.#lowestId, message.id);
    this.regroup(item);
    const next = item.nextElementSibling;
    if (next instanceof HTMLElement) this.regroup(next);
    this.pins.mark(item);
    foldIfLong(item);
    this.quote(item, message);
    return true;
  }

  /**
   * Consecutive messages of one author a few minutes apart share the first one's header.
   * @param {HTMLElement} item
   */
  regroup(item) {
    const previous = item.previousElementSibling;
    const follows =
      previous instanceof HTMLElement &&
      previous.dataset.user === item.dataset.user &&
      Number(item.dataset.time) - Number(previous.dataset.time) < GROUP_GAP_MS;
    item.classList.toggle("cont", follows);
  }

  /**
   * Messages that arrived live (or in a catch-up): stick to the bottom or count them.
   * @param {Message} message
   */
  addLive(message) {
    const stick = this.#stuck || this.atBottom();
    if (!this.insert(message)) return;
    this.typing.stopped(message.user);
    if (this.#shown.size === 1 || !this.history.more) this.history.updateMarker();
    if (stick || message.user === this.me) {
      this.scrollToBottom();
    } else {
      this.#unseen += 1;
      this.pill.textContent =
        this.#unseen === 1 ? "1 new message ↓" : `${this.#unseen} new messages ↓`;
      this.pill.hidden = false;
    }
    this.read.arrived(message);
    if (this.#shown.get(message.id)?.classList.contains("mentions-me")) {
      notifyHidden(
        `${message.user} mentioned you in #${this.channel}`,
        message.content.slice(0, 200),
        `mention-${this.channel}-${message.id}`,
      );
    }
  }

  /**
   * Show message ``id`` (a pin's): scroll it into view and mark it for a moment, loading
   * older pages to reach it if need be. False when it could not be reached.
   * @param {number} id
   */
  async jumpTo(id) {
    if (!this.#shown.has(id)) await this.history.reach(id);
    const item = this.#shown.get(id);
    if (!item) return false;
    item.scrollIntoView({ block: "center" });
    this.#stuck = this.atBottom();
    item.classList.add("jumped");
    setTimeout(() => item.classList.remove("jumped"), FLASH_MS);
    return true;
  }

  // -- notices from the page's other features ------------------------------------------------

  bindNotices() {
    this.root.addEventListener("chat:notice", (event) => {
      const detail = event instanceof CustomEvent ? event.detail : null;
      if (detail && typeof detail.text === "string" && detail.text) this.addNotice(detail);
    });
  }

  /**
   * A line in the timeline that is not a message (kept out of the messages, never grouped).
   * Its data-id sits between the last message shown and the next one, so that a message that
   * arrives late still finds its place by id.
   * @param {Notice} notice
   */
  addNotice({ text, kind = "info", private: only = false }) {
    const stick = this.#stuck || this.atBottom();
    const item = element("li", `chat-notice notice-${kind}`);
    item.dataset.id = String(this.#highestId + 0.5);
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

  /** Is the list too short to scroll (so that scrolling up cannot load older messages)? */
  tooShortToScroll() {
    return this.scroller.scrollHeight <= this.scroller.clientHeight + 1;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.#stuck = true;
    this.#unseen = 0;
    this.pill.hidden = true;
  }

  /**
   * Before the list grows above what the reader looks at: returns what puts the view back
   * where it was.
   * @returns {() => void}
   */
  holdPlace() {
    const scroller = this.scroller;
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    return () => {
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
    };
  }

  /**
   * After the first page: the reader sees where they left off (the "New since you left"
   * ``line``, placed by ``placeUnreadLine``), or the bottom.
   * @param {HTMLElement | null} line
   */
  showReadingPlace(line) {
    const scroller = this.scroller;
    if (line && line.offsetTop > scroller.clientHeight / 2) {
      scroller.scrollTop = line.offsetTop - Math.round(scroller.clientHeight / 5);
      this.#stuck = this.atBottom();
    } else {
      this.scrollToBottom();
    }
  }

  /**
   * The "New since you left" line after the server's read marker ``lastRead``, if anything
   * after it is unread; returns it.
   * @param {unknown} lastRead
   */
  placeUnreadLine(lastRead) {
    return this.read.placeLine(lastRead, this.list);
  }

  bindScrolling() {
    this.scroller.addEventListener(
      "scroll",
      () => {
        this.#stuck = this.atBottom();
        if (this.#stuck) {
          this.#unseen = 0;
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
        if (this.#stuck && s.scrollHeight - s.scrollTop - s.clientHeight > 1) {
          this.scrollToBottom();
        }
      }).observe(this.scroller);
    }
  }

  /** A click on Message beside someone online opens the conversation with them. */
  bindMemberMessages() {
    const list = this.members;
    if (!list) return;
    list.addEventListener("click", async (event) => {
      const button = event.target instanceof Element ? event.target.closest(".member-dm") : null;
      if (!(button instanceof HTMLButtonElement) || !button.dataset.username) return;
      button.disabled = true;
      try {
        const answer = await sendJson("POST", list.dataset.dmUrl || "/dm", {
          username: button.dataset.username,
        });
        const base = list.dataset.channelsUrl || "/channels";
        window.location.href = `${base}/${encodeURIComponent(answer.channel.name)}`;
      } catch (error) {
        button.disabled = false;
        this.addNotice({ text: error instanceof Error ? error.message : "Refused." });
      }
    });
  }

  bindMembersToggle() {
    const toggle = this.membersToggle;
    if (!toggle) return;
    toggle.addEventListener("click", () => {
      const open = this.root.toggleAttribute("data-members-open");
      toggle.setAttribute("aria-expanded", String(open));
    });
  }

  /** @param {unknown[]} users */
  setMembers(users) {
    if (!this.members) return;
    const names = [
      ...new Set(users.filter((name) => typeof name === "string").map(String)),
    ].sort((a, b) => a.localeCompare(b));
    const items = names.map((name) => {
      const item = element("li", "member", name);
      // After the name (its text stays the item's first node), shown before it (site.css).
      item.append(avatarElement(name, "avatar-xs"));
      if (name === this.me) {
        item.classList.add("me");
        item.append(element("span", "you", "(you)"));
      } else if (this.me) {
        const write = element("button", "member-dm", "Message");
        write.type = "button";
        write.dataset.username = name;
        write.setAttribute("aria-label", `Message ${name}`);
        item.append(write);
      }
      return item;
    });
    this.members.replaceChildren(...items);
    for (const count of this.memberCounts) count.textContent = String(names.length);
  }
}
