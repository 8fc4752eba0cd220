// The message box: Enter sends, Shift+Enter is a new line; it grows with its text; near the
// limit a counter shows, and past it the message is refused here, visibly, with how many
// characters are too many (never cut short). While someone types, the channel hears it (at
// most as often as the server relays it).

import { find, findAs } from "../lib/dom.js";
import { PROTOCOL } from "../lib/protocol.js";

export const MAX_LENGTH = PROTOCOL.chat.message_max_chars;
const COUNTER_FROM = Math.floor(MAX_LENGTH * 0.9);
const TYPING_EVERY_MS = PROTOCOL.chat.typing_every_ms;
const numbers = new Intl.NumberFormat();

/**
 * @typedef {object} ComposerHooks
 * @property {(content: string, replyTo?: number, uploads?: number[]) => void} onSend a
 *   trimmed message, not too long (and the id of the message it answers, the files it carries:
 *   then its text may be empty)
 * @property {() => boolean} onTyping tell the channel; false if it could not be told
 */

export class Composer {
  /**
   * @param {HTMLFormElement} form the composer
   * @param {ComposerHooks} hooks
   */
  constructor(form, { onSend, onTyping }) {
    this.form = form;
    this.input = findAs(form, "[data-role=input]", HTMLTextAreaElement);
    this.counter = find(form, "[data-role=counter]");
    this.notice = find(form, "[data-role=notice]");
    this.noticeText = find(form, "[data-role=notice-text]");
    this.onSend = onSend;
    this.onTyping = onTyping;
    this.typedAt = -Infinity;
    this.replyBar = form.querySelector("[data-role=reply-bar]");
    this.replyText = form.querySelector("[data-role=reply-text]");
    /** @type {number | undefined} the message the next one answers */
    this.replyTo = undefined;
    /** @type {import("./uploads.js").Attachments | null} the files the next one carries */
    this.attachments = null;
  }

  /**
   * The next message answers message ``id`` (shown over the box: who, and its first line).
   * @param {number} id
   * @param {string} quote
   */
  setReply(id, quote) {
    this.replyTo = id;
    if (this.replyBar instanceof HTMLElement && this.replyText) {
      this.replyText.textContent = quote;
      this.replyBar.hidden = false;
    }
    this.input.focus();
  }

  clearReply() {
    this.replyTo = undefined;
    if (this.replyBar instanceof HTMLElement) this.replyBar.hidden = true;
  }

  start() {
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
    this.input.addEventListener("input", () => {
      this.update();
      if (this.input.value.trim() && performance.now() - this.typedAt > TYPING_EVERY_MS) {
        if (this.onTyping()) this.typedAt = performance.now();
      }
    });
    find(this.notice, "[data-role=dismiss]").addEventListener("click", () => this.hideNotice());
    this.form
      .querySelector("[data-role=reply-cancel]")
      ?.addEventListener("click", () => this.clearReply());
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.replyTo !== undefined) this.clearReply();
    });
    this.update();
  }

  /** The length as the server counts it (code points, after trimming). */
  length() {
    return [...this.input.value.trim()].length;
  }

  update() {
    const input = this.input;
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
    const length = this.length();
    const over = length - MAX_LENGTH;
    this.counter.hidden = length < COUNTER_FROM;
    this.counter.textContent =
      over > 0
        ? `${numbers.format(length)} / ${numbers.format(MAX_LENGTH)}: ${numbers.format(over)} too many`
        : `${numbers.format(length)} / ${numbers.format(MAX_LENGTH)}`;
    this.counter.classList.toggle("over", over > 0);
    input.setAttribute("aria-invalid", String(over > 0));
    if (over <= 0 && this.notice.dataset.kind === "too-long") this.hideNotice();
  }

  send() {
    const content = this.input.value.trim();
    const uploads = this.attachments?.ids() ?? [];
    if (this.attachments?.busy) {
      this.showNotice("Wait a moment: the files are still uploading.", "uploading");
      return;
    }
    if (!content && !uploads.length) return;
    const over = this.length() - MAX_LENGTH;
    if (over > 0) {
      this.showNotice(
        `Your message is ${numbers.format(over)} characters too long: a message has at most ` +
          `${numbers.format(MAX_LENGTH)}. Shorten it, or send it in parts.`,
        "too-long",
      );
      return;
    }
    if (uploads.length) {
      this.onSend(content, this.replyTo, uploads);
      this.attachments?.clear();
    } else {
      this.onSend(content, this.replyTo);
    }
    this.clearReply();
    this.input.value = "";
    this.typedAt = -Infinity;
    this.hideNotice();
    this.update();
    this.input.focus();
  }

  /**
   * Put ``text`` back in the box (a failed message to edit), before what is typed there.
   * @param {string} text
   */
  putBack(text) {
    const typed = this.input.value;
    this.input.value = typed.trim() ? `${text}\n${typed}` : text;
    this.update();
    this.input.focus();
  }

  /**
   * @param {string} text
   * @param {string} [kind] "too-long": goes once the text is short enough
   */
  showNotice(text, kind = "") {
    this.noticeText.textContent = text;
    this.notice.dataset.kind = kind;
    this.notice.hidden = false;
  }

  hideNotice() {
    this.notice.hidden = true;
    this.notice.dataset.kind = "";
  }
}
