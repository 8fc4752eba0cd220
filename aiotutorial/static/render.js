// A chat message as a row of the timeline: author, time, text (links and mentions as DOM
// nodes, never HTML), "(edited)" or "message deleted", a fold for long messages, and the
// author's edit and delete buttons. ``renderMessage`` makes a row, ``updateMessage`` brings it
// to a newer state of the same message (an edit, a delete); the row keeps its id.

import { element } from "./dom.js";
import { appendRichText } from "./text.js";
import { fullTime, shortTime } from "./time.js";

const FOLD_LINES = 12; // longer messages fold, with "Show more"
const FOLD_CHARS = 900; // a message this long may pass 12 lines: measure it

export function isMessage(frame) {
  return (
    frame !== null &&
    typeof frame === "object" &&
    Number.isSafeInteger(frame.id) &&
    typeof frame.user === "string" &&
    typeof frame.content === "string" &&
    typeof frame.time === "string"
  );
}

function fillBody(body, message, me) {
  body.replaceChildren();
  if (message.deleted) {
    body.append(element("em", "msg-deleted", "message deleted"));
    return false;
  }
  return appendRichText(body, message.content, message.mentions, me);
}

function editedMark(iso) {
  const mark = element("span", "msg-edited", "(edited)");
  mark.title = `Edited ${fullTime(iso)}`;
  return mark;
}

/** A new row for ``message`` as ``me`` reads it. */
export function renderMessage(message, me) {
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
  if (message.user === me) {
    const actions = element("div", "msg-actions");
    const edit = element("button", "msg-action", "Edit");
    edit.type = "button";
    edit.dataset.action = "edit";
    edit.setAttribute("aria-label", "Edit message");
    const remove = element("button", "msg-action", "Delete");
    remove.type = "button";
    remove.dataset.action = "delete";
    remove.setAttribute("aria-label", "Delete message");
    actions.append(edit, remove);
    item.append(actions);
  }
  updateMessage(item, message, me);
  return item;
}

/** Show ``message``'s current state in its row. */
export function updateMessage(item, message, me) {
  const body = item.querySelector(".msg-body");
  const mentionsMe = fillBody(body, message, me);
  item.classList.toggle("mentions-me", mentionsMe);
  item.classList.toggle("deleted", Boolean(message.deleted));
  item.querySelector(".msg-edited")?.remove();
  if (message.edited && !message.deleted) body.after(editedMark(message.edited));
  const actions = item.querySelector(".msg-actions");
  if (actions && message.deleted) actions.remove();
  item.querySelector(".msg-more")?.remove();
  body.classList.remove("folded");
  item.dataset.foldable = String(
    !message.deleted &&
      (message.content.length > FOLD_CHARS || message.content.split("\n").length > FOLD_LINES),
  );
  return mentionsMe;
}

/** Fold a long message once its row is in the page (measuring needs the layout). */
export function foldIfLong(item) {
  if (item.dataset.foldable !== "true" || item.querySelector(".msg-more")) return;
  const body = item.querySelector(".msg-body");
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
