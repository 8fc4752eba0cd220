// A chat message as a row of the timeline: author, time, text (links and mentions as DOM
// nodes, never HTML), "(edited)" or "message deleted", a fold for long messages, and the
// author's edit and delete buttons. ``renderMessage`` makes a row, ``updateMessage`` brings it
// to a newer state of the same message (an edit, a delete); the row keeps its id.

import { element, find } from "../lib/dom.js";
import { appendRichText } from "../lib/text.js";
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
 * @property {number} [prev] live frames: the id of the message before it everyone may read
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
    body.append(element("em", "msg-deleted", "message deleted"));
    return false;
  }
  return appendRichText(body, message.content, message.mentions, me);
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
 * @param {{pinnable?: boolean}} [options] ``pinnable``: a signed-in reader, who may pin it
 */
export function renderMessage(message, me, { pinnable = false } = {}) {
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
  head.append(author, time);
  const body = element("div", "msg-body");
  item.append(head, body);
  const actions = element("div", "msg-actions");
  if (pinnable) {
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
