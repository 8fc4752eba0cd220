// Editing and deleting one's own messages, in their row: "Edit" opens the text in place (Enter
// or Save sends it, Escape or Cancel leaves it as it was), "Delete" asks first. Each change is
// sent with a ref; the server's answer (the changed message, carrying the ref, to every tab of
// the author; or an error) closes the editor or says what is wrong. On a touch screen a tap on
// one's own message shows its buttons.

import { element, find, maybe, targetOf } from "../lib/dom.js";
import { ERRORS as CODES, PROTOCOL } from "../lib/protocol.js";
import { newRef } from "../lib/refs.js";

/** @typedef {import("./message-row.js").Message} Message */

/**
 * What editing needs of the chat: sending, and the messages shown, by id.
 * @typedef {object} EditingHost
 * @property {(frame: {type: string, [key: string]: unknown}) => boolean} send
 * @property {(id: number) => Message | undefined} message
 */

const numbers = new Intl.NumberFormat();
const MAX_CHARS = PROTOCOL.chat.message_max_chars;

/** @type {Record<string, string>} */
const ERROR_TEXT = {
  [CODES.EDIT_LOCKED]: "Messages cannot be edited while a word is being drawn.",
  [CODES.RATE_LIMITED]: "Too many changes at once: wait a moment.",
  [CODES.DELETED]: "That message was deleted.",
  [CODES.NOT_FOUND]: "That message is gone.",
  [CODES.TOO_LONG]: `Too long: at most ${numbers.format(MAX_CHARS)} characters.`,
  [CODES.EMPTY]: "A message cannot be empty: delete it instead.",
  [CODES.UNAVAILABLE]: "The server could not save it right now: try again.",
};

export class MessageEditing {
  /** @param {EditingHost} host the chat */
  constructor(host) {
    this.host = host;
    /** @type {Map<string, {item: HTMLElement, type: string}>} edits and deletes sent, not answered */
    this.pending = new Map();
  }

  /** @param {HTMLElement} list the timeline */
  bind(list) {
    list.addEventListener("click", (event) => {
      const target = targetOf(event);
      const item = target?.closest("li.msg");
      if (!target || !(item instanceof HTMLElement) || item.classList.contains("deleted")) return;
      const button = target.closest("button[data-action]");
      const action = button instanceof HTMLElement ? button.dataset.action : undefined;
      const mine = item.classList.contains("mine");
      if (action === "edit" && mine) this.open(item);
      else if (action === "delete" && mine) this.remove(item);
      else if (action === "remove" && !mine) this.remove(item, { moderator: true });
      else if (
        !target.closest("a, button, textarea, .msg-editor") &&
        item.querySelector(".msg-actions")
      ) {
        // A tap on a message shows its buttons (there is no hover on touch screens).
        const open = item.toggleAttribute("data-actions-open");
        for (const other of list.querySelectorAll("li[data-actions-open]")) {
          if (other !== item && open) other.removeAttribute("data-actions-open");
        }
      }
    });
  }

  /**
   * @param {{type: string, [key: string]: unknown}} frame
   * @param {HTMLElement} item
   */
  send(frame, item) {
    const ref = newRef();
    if (!this.host.send({ ...frame, ref })) {
      this.say(item, "Not connected right now: try again once live.");
      return null;
    }
    this.pending.set(ref, { item, type: frame.type });
    item.dataset.saving = "true";
    return ref;
  }

  /** @param {HTMLElement} item */
  open(item) {
    if (item.querySelector(".msg-editor")) return;
    const message = this.host.message(Number(item.dataset.id));
    if (!message) return;
    const editor = element("form", "msg-editor");
    const label = element("label", "visually-hidden", "Edit your message");
    const field = element("textarea", "msg-editor-input");
    field.id = `edit-${message.id}`;
    label.htmlFor = field.id;
    field.value = message.content;
    field.rows = Math.min(8, message.content.split("\n").length + 1);
    const save = element("button", "msg-editor-save", "Save");
    save.type = "submit";
    const cancel = element("button", "msg-editor-cancel secondary", "Cancel");
    cancel.type = "button";
    const row = element("div", "msg-editor-row");
    row.append(save, cancel);
    const error = element("p", "msg-editor-error");
    error.setAttribute("role", "alert");
    error.hidden = true;
    editor.append(label, field, row, error);
    find(item, ".msg-body").after(editor);
    item.classList.add("editing");
    field.focus();
    field.setSelectionRange(field.value.length, field.value.length);
    const close = () => this.close(item);
    cancel.addEventListener("click", close);
    field.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        editor.requestSubmit();
      }
    });
    editor.addEventListener("submit", (event) => {
      event.preventDefault();
      const content = field.value.trim();
      if (!content) {
        this.say(item, ERROR_TEXT[CODES.EMPTY]);
        return;
      }
      if (content === message.content) {
        close();
        return;
      }
      this.send({ type: "message.edit", id: message.id, content }, item);
    });
  }

  /** @param {HTMLElement} item */
  close(item) {
    item.querySelector(".msg-editor")?.remove();
    item.classList.remove("editing");
    delete item.dataset.saving;
  }

  /**
   * @param {HTMLElement} item
   * @param {{moderator?: boolean}} [options] someone else's message, removed by a moderator
   */
  remove(item, { moderator = false } = {}) {
    const id = Number(item.dataset.id);
    // A plain confirm(): modal, accessible, and one click away from a mistake.
    const question = moderator
      ? `Remove ${item.dataset.user}'s message? Everyone will see “removed by a moderator”.`
      : "Delete this message? Everyone will see “message deleted”.";
    if (!window.confirm(question)) return;
    this.send({ type: "message.delete", id }, item);
  }

  /**
   * @param {HTMLElement} item
   * @param {string} text
   */
  say(item, text) {
    let error = maybe(item, ".msg-editor-error");
    if (!error) {
      error = element("p", "msg-editor-error");
      error.setAttribute("role", "alert");
      item.append(error);
    }
    error.textContent = text;
    error.hidden = false;
  }

  /**
   * A frame with a ref: true when it answered one of our edits or deletes.
   * @param {{type?: string, ref?: string, error?: string, detail?: string}} frame
   */
  answer(frame) {
    if (typeof frame.ref !== "string") return false;
    const sent = this.pending.get(frame.ref);
    if (!sent) return false;
    this.pending.delete(frame.ref);
    const item = sent.item;
    delete item.dataset.saving;
    // A delete sent again (its answer lost) learns that it is done: nothing to say.
    const done = sent.type === "message.delete" && frame.error === CODES.DELETED;
    if (frame.type === "error" && !done) {
      this.say(item, ERROR_TEXT[frame.error ?? ""] || frame.detail || "The change was refused.");
    } else {
      this.close(item);
      item.querySelector(".msg-editor-error")?.remove();
    }
    return true;
  }
}
