// The chat's Markdown, a small subset rendered into DOM nodes (never through HTML strings):
// fenced code blocks (```), quotes (> ), lists (- * + or 1.), and inline `code`, **bold**,
// *italic* or _italic_, [text](https://...) links; plain text keeps its line breaks, its
// http(s) addresses as links and its @mentions marked (text.js). Raw HTML in a message is text.
//
// Our own parser rather than a library: the subset is small, the output is built with
// createElement and textContent only (there is no string of HTML anywhere to sanitize), and
// a link's address goes through the same check as the plain addresses (http: and https:
// only: never javascript: or data:). Anything that is not well formed stays as typed.

import { appendRichText, safeHref } from "./text.js";

const FENCE = /^```[\w+-]*\s*$/;
const QUOTE = /^>\s?/;
const LIST_ITEM = /^\s{0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/;
// Inline: `code`, **strong**, *em*, _em_, [text](address). Underscores inside words
// (snake_case) and stars inside words (2*3*4) are left alone.
const INLINE = new RegExp(
  [
    "`([^`\\n]+)`",
    "\\*\\*(?=\\S)([^\\n]*?\\S)\\*\\*",
    "(?<![\\p{L}\\p{N}*])\\*(?=[^\\s*])([^*\\n]*?[^\\s*])\\*(?![\\p{L}\\p{N}*])",
    "(?<![\\p{L}\\p{N}_])_(?=[^\\s_])([^_\\n]*?[^\\s_])_(?![\\p{L}\\p{N}_])",
    "\\[([^\\]\\n]+)\\]\\(([^\\s()]+)\\)",
  ].join("|"),
  "gu",
);

/**
 * @typedef {object} Context
 * @property {unknown} mentions the names the server found in the message
 * @property {string} me the reader
 * @property {{me: boolean}} found whether the reader is mentioned
 */

/**
 * Plain text (addresses, mentions) appended to ``parent``.
 * @param {Element} parent
 * @param {string} text
 * @param {Context} context
 */
function plain(parent, text, context) {
  if (!text) return;
  if (appendRichText(parent, text, context.mentions, context.me)) context.found.me = true;
}

/**
 * ``text`` with its inline marks, appended to ``parent``.
 * @param {Element} parent
 * @param {string} text
 * @param {Context} context
 */
function inline(parent, text, context) {
  let from = 0;
  for (const match of text.matchAll(INLINE)) {
    const start = match.index ?? 0;
    const [whole, code, strong, star, underscore, label, address] = match;
    /** @type {Element | null} */
    let node = null;
    if (code !== undefined) {
      node = document.createElement("code");
      node.textContent = code;
    } else if (strong !== undefined) {
      node = document.createElement("strong");
      inline(node, strong, context);
    } else if (star !== undefined || underscore !== undefined) {
      node = document.createElement("em");
      inline(node, star ?? underscore ?? "", context);
    } else if (label !== undefined) {
      const href = safeHref(address ?? "");
      if (href !== null) {
        const anchor = document.createElement("a");
        anchor.href = href;
        anchor.rel = "noopener noreferrer";
        anchor.target = "_blank";
        anchor.className = "msg-link";
        anchor.textContent = label;
        anchor.title = href;
        node = anchor;
      }
    }
    if (node === null) continue; // (a link to an address we do not open: left as typed)
    plain(parent, text.slice(from, start), context);
    parent.append(node);
    from = start + whole.length;
  }
  plain(parent, text.slice(from), context);
}

/**
 * Lines of text, each with its marks, separated by line breaks.
 * @param {Element} parent
 * @param {string[]} lines
 * @param {Context} context
 */
function lines(parent, lines, context) {
  lines.forEach((line, index) => {
    if (index > 0) parent.append("\n");
    inline(parent, line, context);
  });
}

/**
 * ``content`` as Markdown appended to ``parent``: true when it mentions ``me``.
 * @param {Element} parent
 * @param {string} content
 * @param {unknown} [mentions] the names the server found
 * @param {string} [me] the reader
 */
export function appendMarkdown(parent, content, mentions = [], me = "") {
  /** @type {Context} */
  const context = { mentions, me, found: { me: false } };
  const all = content.split("\n");
  /** @type {string[]} */
  let text = [];
  let lastWasBlock = false;
  const flush = () => {
    if (!text.length) return;
    lines(parent, text, context);
    text = [];
    lastWasBlock = false;
  };
  /** @param {Element} element a block: it begins and ends its own lines */
  const block = (element) => {
    if (text.length && text[text.length - 1] === "") text.pop();
    flush();
    parent.append(element);
    lastWasBlock = true;
  };
  let i = 0;
  while (i < all.length) {
    const line = all[i];
    if (FENCE.test(line)) {
      const end = all.findIndex((other, j) => j > i && other.trim() === "```");
      if (end !== -1) {
        const pre = document.createElement("pre");
        pre.className = "md-code";
        const code = document.createElement("code");
        code.textContent = all.slice(i + 1, end).join("\n");
        pre.append(code);
        block(pre);
        i = end + 1;
        continue;
      }
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < all.length && QUOTE.test(all[i])) {
        quoted.push(all[i].replace(QUOTE, ""));
        i += 1;
      }
      const quote = document.createElement("blockquote");
      quote.className = "md-quote";
      lines(quote, quoted, context);
      block(quote);
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item) {
      const ordered = /\d/.test(item[1]);
      const list = document.createElement(ordered ? "ol" : "ul");
      list.className = "md-list";
      if (ordered) {
        const first = Number.parseInt(item[1], 10);
        if (first !== 1) list.setAttribute("start", String(first));
      }
      while (i < all.length) {
        const next = LIST_ITEM.exec(all[i]);
        if (!next || /\d/.test(next[1]) !== ordered) break;
        const entry = document.createElement("li");
        inline(entry, next[2], context);
        list.append(entry);
        i += 1;
      }
      block(list);
      continue;
    }
    if (lastWasBlock && !text.length && line === "") {
      i += 1; // the blank line after a block: the block ends its line already
      lastWasBlock = false;
      continue;
    }
    text.push(line);
    i += 1;
  }
  flush();
  return context.found.me;
}
