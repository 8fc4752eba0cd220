// A chat message as a row of the timeline: author (and their avatar), time, the message it
// answers (a quote the chat fills in), text (links and mentions as DOM nodes, never HTML), "(edited)" or
// "message deleted", its reactions, a fold for long messages, and the reader's buttons
// (reply, react, pin; the author's edit and delete). ``renderMessage`` makes a row, ``updateMessage`` brings it
// to a newer state of the same message (an edit, a delete); the row keeps its id.

import { avatarElement } from "../lib/avatar.js";
import { element, find } from "../lib/dom.js";
import { appendMarkdown } from "../lib/markdown.js";
import { renderUploads } from "./uploads.js";
import { fullTime, shortTime } from "../lib/time.js";

const FOLD_LINES = 12; // longer messages fold, with "Show more"
const FOLD_CHARS = 900; // a message this long may pass 12 lines: measure it

/**
 * A message, in HTTP answers and on the websocket alike (docs/protocol.md), as it is now.
 * @typedef {object} Message
 * @property {number} id
 * @property {string} user
 * @property {string} time ISO
 * @property {string} content "" once deleted
 * @property {string} [type] "message"
 * @property {string} [channel]
 * @property {string[]} [mentions]
 * @property {string} [edited] ISO, once edited
 * @property {boolean} [deleted]
 * @property {boolean} [removed] deleted by a moderator, not its author
 * @property {number} [prev] live frames: the id of the message before it everyone may read
 * @property {number} [reply_to] the id of the message it answers
 * @property {Record<string, string[]>} [reactions] emoji -> who gave it, in order
 * @property {import("./uploads.js").Upload[]} [uploads] the files it carries
 * @property {string} [ref] on its author's sockets: the ref it was sent with
 */

/**
 * ``message.changed``: the whole message as it is now, and its position in the stream of
 * changes.
 * @typedef {Message & {change?: number}} ChangedFrame
 */

/**
 * Is ``frame`` a message (the fields every message has, of the right types)?
 * @param {unknown} frame
 * @returns {frame is Message}
 */
export function isMessage(frame) {
  if (frame === null || typeof frame !== "object") return false;
  const message = /** @type {Record<string, unknown>} */ (frame);
  return (
    Number.isSafeInteger(message.id) &&
    typeof message.user === "string" &&
    typeof message.content === "string" &&
    typeof message.time === "string"
  );
}

/**
 * @param {HTMLElement} body
 * @param {Message} message
 * @param {string} me
 */
function fillBody(body, message, me) {
  body.replaceChildren();
  if (message.deleted) {
    const text = message.removed ? "removed by a moderator" : "message deleted";
    body.append(element("em", "msg-deleted", text));
    return false;
  }
  const mentionsMe = appendMarkdown(body, message.content, message.mentions, me);
  if (message.uploads?.length) body.append(renderUploads(message.uploads));
  return mentionsMe;
}

/** @param {string} iso */
function editedMark(iso) {
  const mark = element("span", "msg-edited", "(edited)");
  mark.title = `Edited ${fullTime(iso)}`;
  return mark;
}

/**
 * A new row for ``message`` as ``me`` reads it.
 * @param {Message} message
 * @param {string} me
 * @param {{pinnable?: boolean, moderator?: boolean, bannable?: boolean}} [options]
 *   ``pinnable``: a signed-in reader, who may pin it (and report others' messages);
 *   ``moderator``: the reader moderates the channel (removes and mutes; ``bannable``: bans)
 */
export function renderMessage(message, me, { pinnable = false, moderator = false, bannable = false } = {}) {
  const item = element("li", "msg");
  item.dataset.id = String(message.id);
  item.dataset.user = message.user;
  item.dataset.time = String(new Date(message.time).getTime());
  if (message.user === me) item.classList.add("mine");
  const head = element("div", "msg-head");
  const author = element("span", "msg-user", message.user);
  const time = element("time", "msg-time", shortTime(message.time));
  time.dateTime = message.time;
  time.title = fullTime(message.time);
  // The author's avatar: shown by the first of a group of their messages (the others hide
  // their head: channel-chat.js regroup).
  head.append(avatarElement(message.user, "avatar-sm"), author, time);
  const body = element("div", "msg-body");
  item.append(head, body);
  const actions = element("div", "msg-actions");
  if (pinnable) {
    for (const [action, text, label] of [
      ["reply", "Reply", "Reply to this message"],
      ["react", "React", "Add a reaction"],
    ]) {
      const button = element("button", "msg-action", text);
      button.type = "button";
      button.dataset.action = action;
      button.setAttribute("aria-label", label);
      actions.append(button);
    }
    // Pinned or not: chat/pins.js says which on the row (data-pinned) and the button.
    const pin = element("button", "msg-action msg-pin", "Pin");
    pin.type = "button";
    pin.dataset.action = "pin";
    pin.setAttribute("aria-pressed", "false");
    pin.setAttribute("aria-label", "Pin message");
    actions.append(pin);
  }
  if (message.user === me) {
    const edit = element("button", "msg-action", "Edit");
    edit.type = "button";
    edit.dataset.action = "edit";
    edit.setAttribute("aria-label", "Edit message");
    const remove = element("button", "msg-action", "Delete");
    remove.type = "button";
    remove.dataset.action = "delete";
    remove.setAttribute("aria-label", "Delete message");
    actions.append(edit, remove);
  }
  if (message.user !== me) {
    /** @type {[string, string, string][]} */
    const others = [];
    if (moderator) {
      others.push(["remove", "Remove", "Remove this message (as a moderator)"]);
      others.push(["mute", "Mute", `Mute ${message.user} in this channel`]);
      if (bannable) others.push(["ban", "Ban", `Ban ${message.user} from this channel`]);
    }
    if (pinnable) others.push(["report", "Report", "Report this message to the administrators"]);
    for (const [action, text, label] of others) {
      const button = element("button", "msg-action msg-moderation", text);
      button.type = "button";
      button.dataset.action = action;
      button.setAttribute("aria-label", label);
      actions.append(button);
    }
  }
  if (actions.childElementCount > 0) item.append(actions);
  updateMessage(item, message, me);
  return item;
}

/**
 * Show ``message``'s current state in its row; true when it mentions ``me``.
 * @param {HTMLElement} item
 * @param {Message} message
 * @param {string} me
 */
export function updateMessage(item, message, me) {
  const body = find(item, ".msg-body");
  const mentionsMe = fillBody(body, message, me);
  item.classList.toggle("mentions-me", mentionsMe);
  item.classList.toggle("deleted", Boolean(message.deleted));
  item.querySelector(".msg-edited")?.remove();
  if (message.edited && !message.deleted) body.after(editedMark(message.edited));
  showQuote(item, body, message);
  showReactions(item, message, me);
  // A deleted message is neither edited nor pinned any more.
  if (message.deleted) item.querySelector(".msg-actions")?.remove();
  item.querySelector(".msg-more")?.remove();
  body.classList.remove("folded");
  item.dataset.foldable = String(
    !message.deleted &&
      (message.content.length > FOLD_CHARS || message.content.split("\n").length > FOLD_LINES),
  );
  return mentionsMe;
}

/**
 * Fold a long message once its row is in the page (measuring needs the layout).
 * @param {HTMLElement} item
 */
export function foldIfLong(item) {
  if (item.dataset.foldable !== "true" || item.querySelector(".msg-more")) return;
  const body = find(item, ".msg-body");
  body.classList.add("folded");
  if (body.scrollHeight <= body.clientHeight + 2) {
    body.classList.remove("folded");
    return;
  }
  const more = element("button", "msg-more", "Show more");
  more.type = "button";
  more.setAttribute("aria-expanded", "false");
  more.addEventListener("click", () => {
    const open = body.classList.toggle("folded") === false;
    more.textContent = open ? "Show less" : "Show more";
    more.setAttribute("aria-expanded", String(open));
  });
  body.after(more);
}

/**
 * The place of the message ``message`` answers, over its text: filled in by the chat
 * (``fillQuote``), which has the messages (or reads the one answered).
 * @param {HTMLElement} item
 * @param {HTMLElement} body
 * @param {Message} message
 */
function showQuote(item, body, message) {
  const reply = message.reply_to;
  const quote = item.querySelector(".msg-quote");
  if (typeof reply !== "number") {
    quote?.remove();
    return;
  }
  if (quote instanceof HTMLElement && quote.dataset.replyTo === String(reply)) return;
  quote?.remove();
  const button = element("button", "msg-quote");
  button.type = "button";
  button.dataset.replyTo = String(reply);
  button.dataset.action = "quote";
  button.append(element("span", "msg-quote-text", "a message"));
  button.setAttribute("aria-label", "Show the message this answers");
  body.before(button);
}

/**
 * Fill ``item``'s quote with who wrote the message it answers and its first line.
 * @param {HTMLElement} item
 * @param {Message | null} answered null: not there (or not readable)
 */
export function fillQuote(item, answered) {
  const quote = item.querySelector(".msg-quote");
  if (!(quote instanceof HTMLElement)) return;
  const parts = [];
  if (answered === null) {
    parts.push(element("span", "msg-quote-text", "a message that is not shown"));
  } else {
    parts.push(element("span", "msg-quote-user", answered.user));
    const first = answered.deleted ? "message deleted" : firstLine(answered.content);
    parts.push(element("span", "msg-quote-text", first));
  }
  quote.replaceChildren(...parts);
  quote.dataset.filled = "true";
}

/**
 * The first line of ``text``, at most 120 characters.
 * @param {string} text
 */
export function firstLine(text) {
  // As it reads, not as it was typed: the Markdown's marks go (a quote, a list's bullet,
  // bold, italics, code, a link's address).
  const line = (text.split("\n", 1)[0] || "")
    .replace(/^\s*(?:>\s?|[-*+]\s+|\d+[.)]\s+)/, "")
    .replace(/\[([^\]]*)\]\(https?:\/\/[^)\s]*\)/g, "$1")
    .replace(/\*\*(.+?)\*\*/g, "$1")
    .replace(/(^|[^\w*])([*_])(\S(?:.*?\S)?)\2(?=[^\w*]|$)/g, "$1$3")
    .replace(/`([^`]*)`/g, "$1");
  const chars = [...line];
  return chars.length > 120 ? `${chars.slice(0, 119).join("")}…` : line;
}

/**
 * The reactions under the message: one button each (emoji and count; pressed when ``me``
 * gave it; who gave it in its title), a click toggles ``me``'s.
 * @param {HTMLElement} item
 * @param {Message} message
 * @param {string} me
 */
function showReactions(item, message, me) {
  item.querySelector(".msg-reactions")?.remove();
  const reactions = message.reactions;
  if (!reactions || message.deleted) return;
  const entries = Object.entries(reactions).filter(
    ([, users]) => Array.isArray(users) && users.length > 0,
  );
  if (!entries.length) return;
  const box = element("div", "msg-reactions");
  for (const [emoji, users] of entries) {
    const button = element("button", "reaction");
    button.type = "button";
    button.dataset.action = "toggle-reaction";
    button.dataset.emoji = emoji;
    const mine = users.includes(me);
    button.setAttribute("aria-pressed", String(mine));
    button.disabled = !me;
    button.title = users.join(", ");
    button.setAttribute("aria-label", `${emoji} ${users.length}: ${users.join(", ")}`);
    button.append(element("span", "reaction-emoji", emoji), element("span", "reaction-count", String(users.length)));
    box.append(button);
  }
  const actions = item.querySelector(".msg-actions");
  if (actions) actions.before(box);
  else item.append(box);
}
