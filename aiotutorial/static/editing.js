// Editing and deleting one's own messages, in their row: "Edit" opens the text in place (Enter
// or Save sends it, Escape or Cancel leaves it as it was), "Delete" asks first. Each change is
// sent with a ref; the server's answer (the changed message, carrying the ref, to every tab of
// the author; or an error) closes the editor or says what is wrong. On a touch screen a tap on
// one's own message shows its buttons.

import { element } from "./dom.js";
import { newRef } from "./outbox.js";

const ERRORS = {
  edit_locked: "Messages cannot be edited while a word is being drawn.",
  rate_limited: "Too many changes at once: wait a moment.",
  deleted: "That message was deleted.",
  not_found: "That message is gone.",
  too_long: "Too long: at most 2,000 characters.",
  empty: "A message cannot be empty: delete it instead.",
  unavailable: "The server could not save it right now: try again.",
};

export class MessageEditing {
  /** ``page``: the ChatPage (its list, socket client, messages by id). */
  constructor(page) {
    this.page = page;
    this.pending = new Map(); // ref -> {item, type}: edits and deletes sent, not answered
  }

  bind(list) {
    list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      const item = event.target.closest("li.msg.mine");
      if (!item || item.classList.contains("deleted")) return;
      if (button?.dataset.action === "edit") this.open(item);
      else if (button?.dataset.action === "delete") this.remove(item);
      else if (!event.target.closest("a, button, textarea, .msg-editor")) {
        // A tap on one's own message shows its buttons (there is no hover on touch screens).
        const open = item.toggleAttribute("data-actions-open");
        for (const other of list.querySelectorAll("li[data-actions-open]")) {
          if (other !== item && open) other.removeAttribute("data-actions-open");
        }
      }
    });
  }

  send(frame, item) {
    const ref = newRef();
    if (!this.page.client.send({ ...frame, ref })) {
      this.say(item, "Not connected right now: try again once live.");
      return null;
    }
    this.pending.set(ref, { item, type: frame.type });
    item.dataset.saving = "true";
    return ref;
  }

  open(item) {
    if (item.querySelector(".msg-editor")) return;
    const message = this.page.messages.get(Number(item.dataset.id));
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
    item.querySelector(".msg-body").after(editor);
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
        this.say(item, ERRORS.empty);
        return;
      }
      if (content === message.content) {
        close();
        return;
      }
      this.send({ type: "message.edit", id: message.id, content }, item);
    });
  }

  close(item) {
    item.querySelector(".msg-editor")?.remove();
    item.classList.remove("editing");
    delete item.dataset.saving;
  }

  remove(item) {
    const id = Number(item.dataset.id);
    // A plain confirm(): modal, accessible, and one click away from a mistake.
    if (!window.confirm("Delete this message? Everyone will see “message deleted”.")) return;
    this.send({ type: "message.delete", id }, item);
  }

  say(item, text) {
    let error = item.querySelector(".msg-editor-error");
    if (!error) {
      error = element("p", "msg-editor-error");
      error.setAttribute("role", "alert");
      item.append(error);
    }
    error.textContent = text;
    error.hidden = false;
  }

  /** A frame with a ref: true when it answered one of our edits or deletes. */
  answer(frame) {
    const sent = this.pending.get(frame.ref);
    if (!sent) return false;
    this.pending.delete(frame.ref);
    const item = sent.item;
    delete item.dataset.saving;
    // A delete sent again (its answer lost) learns that it is done: nothing to say.
    const done = sent.type === "message.delete" && frame.error === "deleted";
    if (frame.type === "error" && !done) {
      this.say(item, ERRORS[frame.error] || frame.detail || "The change was refused.");
    } else {
      this.close(item);
      item.querySelector(".msg-editor-error")?.remove();
    }
    return true;
  }
}
