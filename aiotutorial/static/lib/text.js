// A message's text as DOM nodes: http(s) addresses become links, @mentions of users the server
// recognised are marked; everything else stays text. Nothing is ever parsed as HTML: links are
// elements whose href is an address the URL parser accepted with the http: or https: scheme
// (a javascript: or data: address never becomes a link), opened in a new tab without opener
// or referrer.

import { PROTOCOL } from "./protocol.js";

const ADDRESS = /\bhttps?:\/\/[^\s<>"'`]+/gi;
// As the server finds them (aiotutorial/chat/mentions.py): @ and a username's characters (as
// many as a username has), not glued to a word before it.
const { username_min: NAME_MIN, username_max: NAME_MAX } = PROTOCOL.chat;
const MENTION = new RegExp(
  `(?<![\\p{L}\\p{N}_@.-])@([A-Za-z0-9_.-]{${NAME_MIN},${NAME_MAX}})`,
  "gu",
);
/** @type {Record<string, string>} */
const CLOSING = { ")": "(", "]": "[" };

/**
 * @param {string} text
 * @param {string} char
 */
function count(text, char) {
  return text.split(char).length - 1;
}

/**
 * The address without what ends the sentence around it: "see https://x.org/a."
 * @param {string} raw
 */
export function trimAddress(raw) {
  let address = raw;
  while (address.length > 0) {
    const last = address[address.length - 1];
    if (".,;:!?'\"".includes(last)) {
      address = address.slice(0, -1);
    } else if (last in CLOSING && count(address, CLOSING[last]) < count(address, last)) {
      address = address.slice(0, -1);
    } else {
      break;
    }
  }
  return address;
}

/**
 * ``text`` as an http(s) URL the browser would open as a page, or null.
 * @param {string} text
 */
export function safeHref(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
}

/**
 * @param {string} address
 * @param {string} href
 */
function link(address, href) {
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.textContent = address;
  anchor.rel = "noopener noreferrer";
  anchor.target = "_blank";
  anchor.className = "msg-link";
  return anchor;
}

/**
 * Text with the mentions of ``names`` (lowercased) marked; true in ``found.me`` when ``me``
 * is one of them.
 * @param {Element} parent
 * @param {string} text
 * @param {Set<string>} names
 * @param {string} me
 * @param {{me: boolean}} found
 */
function appendMentions(parent, text, names, me, found) {
  let from = 0;
  for (const match of text.matchAll(MENTION)) {
    const token = match[1].toLowerCase();
    const trimmed = token.replace(/[.-]+$/, "");
    const name = names.has(token) ? token : names.has(trimmed) ? trimmed : null;
    if (name === null) continue;
    const start = match.index ?? 0;
    const end = start + 1 + name.length;
    if (start > from) parent.append(text.slice(from, start));
    const mark = document.createElement("span");
    mark.className = "mention";
    mark.textContent = text.slice(start, end);
    if (name === me) {
      mark.classList.add("mention-me");
      found.me = true;
    }
    parent.append(mark);
    from = end;
  }
  if (from < text.length) parent.append(text.slice(from));
}

/**
 * ``content`` as nodes appended to ``parent``: links and marked mentions (``mentions``: the
 * names the server found; ``me``: the reader). Returns whether the reader is mentioned.
 * @param {Element} parent
 * @param {string} content
 * @param {unknown} [mentions]
 * @param {string} [me]
 */
export function appendRichText(parent, content, mentions = [], me = "") {
  /** @type {unknown[]} */
  const listed = Array.isArray(mentions) ? mentions : [];
  const names = new Set(
    listed.filter((n) => typeof n === "string").map((n) => String(n).toLowerCase()),
  );
  const found = { me: false };
  const reader = (me || "").toLowerCase();
  let from = 0;
  for (const match of content.matchAll(ADDRESS)) {
    const address = trimAddress(match[0]);
    const href = safeHref(address);
    if (href === null) continue;
    const start = match.index ?? 0;
    if (start > from) appendMentions(parent, content.slice(from, start), names, reader, found);
    parent.append(link(address, href));
    from = start + address.length;
  }
  if (from < content.length) appendMentions(parent, content.slice(from), names, reader, found);
  return found.me;
}
