// Ctrl+K (⌘K on a Mac) on every page of a signed-in user: a dialog to go to a channel or to
// write to a person by name. Channels come from GET /channels (the ones the reader may read,
// conversations by their people), people from GET /users?q= (names that begin so); choosing a
// person opens the conversation with them (POST /dm) and goes there. Names go in with
// textContent only.

import { channelName, fetchChannels } from "../chat/channel-list.js";
import { element, find } from "../lib/dom.js";
import { getJson, sendJson } from "../lib/http.js";

/** @typedef {import("../chat/channel-list.js").ChannelSummary} ChannelSummary */
/** @typedef {{kind: "channel", channel: ChannelSummary} | {kind: "person", username: string, online: boolean}} Choice */

const MAX_CHANNELS = 8;

class Switcher {
  /** @param {HTMLDialogElement} dialog */
  constructor(dialog) {
    this.dialog = dialog;
    this.input = /** @type {HTMLInputElement} */ (find(dialog, "[data-role=switcher-input]"));
    this.list = find(dialog, "[data-role=switcher-list]");
    /** @type {ChannelSummary[]} */
    this.channels = [];
    /** @type {Choice[]} */
    this.choices = [];
    this.selected = 0;
    this.asked = 0; // the latest question, so that a slow answer to an older one is dropped
  }

  start() {
    document.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "k") {
        event.preventDefault();
        this.open();
      }
    });
    this.input.addEventListener("input", () => this.update());
    this.input.addEventListener("keydown", (event) => this.onKey(event));
    this.list.addEventListener("click", (event) => {
      const item = event.target instanceof Element ? event.target.closest("li[data-index]") : null;
      if (item instanceof HTMLElement) this.go(Number(item.dataset.index));
    });
  }

  async open() {
    if (this.dialog.open) return;
    this.input.value = "";
    this.dialog.showModal();
    this.input.focus();
    try {
      this.channels = (await fetchChannels(this.dialog.dataset.channelsUrl || "")) || [];
    } catch {
      this.channels = [];
    }
    this.update();
  }

  async update() {
    const asked = ++this.asked;
    const text = this.input.value.trim().replace(/^[#@]/, "").toLowerCase();
    /** @type {Choice[]} */
    const choices = this.channels
      .filter((channel) => channelName(channel).label.toLowerCase().includes(text))
      .slice(0, MAX_CHANNELS)
      .map((channel) => ({ kind: "channel", channel }));
    this.show(choices);
    if (!text) return;
    try {
      const url = `${this.dialog.dataset.usersUrl}?q=${encodeURIComponent(text)}`;
      const found = await getJson(url);
      if (asked !== this.asked || !Array.isArray(found.users)) return;
      for (const user of found.users) {
        if (typeof user.username === "string") {
          choices.push({ kind: "person", username: user.username, online: Boolean(user.online) });
        }
      }
      this.show(choices);
    } catch {
      // Channels only, then.
    }
  }

  /** @param {Choice[]} choices */
  show(choices) {
    this.choices = choices;
    this.selected = Math.min(this.selected, Math.max(0, choices.length - 1));
    const items = choices.map((choice, index) => {
      const item = element("li", "switcher-item");
      item.dataset.index = String(index);
      item.setAttribute("role", "option");
      if (choice.kind === "channel") {
        const named = channelName(choice.channel);
        item.append(element("span", "switcher-mark", named.mark), element("span", "", named.label));
        item.dataset.kind = "channel";
      } else {
        item.append(element("span", "switcher-mark", "@"), element("span", "", choice.username));
        if (choice.online) item.append(element("span", "switcher-online", "online"));
        item.dataset.kind = "person";
      }
      item.setAttribute("aria-selected", String(index === this.selected));
      return item;
    });
    if (!items.length) items.push(element("li", "switcher-empty", "Nothing by that name"));
    this.list.replaceChildren(...items);
  }

  /** @param {KeyboardEvent} event */
  onKey(event) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      const count = this.choices.length;
      if (count) this.selected = (this.selected + step + count) % count;
      this.show(this.choices);
    } else if (event.key === "Enter") {
      event.preventDefault();
      this.go(this.selected);
    }
  }

  /** @param {number} index */
  async go(index) {
    const choice = this.choices[index];
    if (!choice) return;
    const base = this.dialog.dataset.channelsUrl || "";
    if (choice.kind === "channel") {
      window.location.href = `${base}/${encodeURIComponent(choice.channel.name)}`;
      return;
    }
    try {
      const answer = await sendJson("POST", this.dialog.dataset.dmUrl || "", {
        username: choice.username,
      });
      window.location.href = `${base}/${encodeURIComponent(answer.channel.name)}`;
    } catch (error) {
      this.list.replaceChildren(
        element("li", "switcher-empty", error instanceof Error ? error.message : "Refused."),
      );
    }
  }
}

const dialog = document.getElementById("switcher");
if (dialog instanceof HTMLDialogElement) new Switcher(dialog).start();
