// The channel page's list of channels: on wide screens a column beside the chat, on narrower
// ones a menu behind the "Channels" button. Each channel with its unread count and mentions,
// the current one marked; kept fresh by polling GET /channels while the tab is visible (and at
// once when it becomes visible). A new mention in another channel raises a notification while
// the tab is hidden (notify.js).

import {
  channelName,
  fetchChannels,
  mentionCount,
  presenceDot,
  unreadCount,
  unreadLabel,
} from "./channel-list.js";
import { element, find, maybe, targetOf } from "../lib/dom.js";
import { notifyHidden, offerNotifications } from "./notifications.js";

const REFRESH_MS = 15000;
const HIDDEN_REFRESH_MS = 60000; // still notice mentions elsewhere, less often

/** @typedef {import("./channel-list.js").ChannelSummary} ChannelSummary */

export class ChannelSidebar {
  /**
   * @param {HTMLElement} nav the sidebar (data-channels-url, data-current)
   * @param {HTMLElement} chatRoot the chat, whose data-sidebar-open opens it on small screens
   */
  constructor(nav, chatRoot) {
    this.nav = nav;
    this.root = chatRoot;
    this.list = find(nav, "[data-role=channel-list]");
    this.url = nav.dataset.channelsUrl || "";
    this.current = nav.dataset.current;
    this.toggle = maybe(chatRoot, "[data-role=sidebar-toggle]");
    /** @type {Map<string, number> | null} channel -> mentions, as of the last refresh */
    this.mentions = null;
    /** @type {number | undefined} */
    this.timer = undefined;
  }

  start() {
    offerNotifications(maybe(this.nav, "[data-role=notify-enable]"));
    const toggle = this.toggle;
    if (toggle) {
      toggle.addEventListener("click", () => this.setOpen(!this.isOpen()));
      this.nav.addEventListener("click", (event) => {
        const target = targetOf(event);
        if (target === this.nav || target?.closest("a")) this.setOpen(false);
      });
      document.addEventListener("keydown", (event) => {
        if (event.key === "Escape" && this.isOpen()) {
          this.setOpen(false);
          toggle.focus();
        }
      });
    }
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.refresh();
    });
    this.refresh();
  }

  isOpen() {
    return this.root.hasAttribute("data-sidebar-open");
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.root.toggleAttribute("data-sidebar-open", open);
    this.toggle?.setAttribute("aria-expanded", String(open));
    if (open) this.list.querySelector("a")?.focus();
  }

  async refresh() {
    clearTimeout(this.timer);
    try {
      const channels = await fetchChannels(this.url);
      if (channels) this.show(channels);
    } catch {
      // The next round tries again.
    }
    const every = document.visibilityState === "visible" ? REFRESH_MS : HIDDEN_REFRESH_MS;
    this.timer = setTimeout(() => this.refresh(), every);
  }

  /** @param {ChannelSummary[]} channels */
  show(channels) {
    const base = this.url;
    const items = channels.map((channel) => {
      const item = element("li", "side-item");
      const link = element("a", "side-link");
      link.href = `${base}/${encodeURIComponent(channel.name)}`;
      const named = channelName(channel);
      const hash = element("span", "hash", named.mark);
      hash.setAttribute("aria-hidden", "true");
      link.append(hash, element("span", "side-name", named.label));
      if (channel.kind === "dm") {
        item.dataset.kind = "dm";
        link.append(presenceDot(channel));
      }
      if (channel.notify === "nothing") item.dataset.notify = "nothing";
      if (channel.name === this.current) {
        link.setAttribute("aria-current", "page");
      } else {
        const count = unreadCount(channel.unread);
        const mentions = mentionCount(channel.unread);
        if (mentions) link.append(element("span", "side-mentions", `@${mentions}`));
        if (count) link.append(element("span", "side-unread", count));
        if (count || mentions) {
          link.classList.add("has-unread");
          link.setAttribute("aria-label", `${named.spoken}: ${unreadLabel(channel.unread)}`);
        }
      }
      item.append(link);
      return item;
    });
    this.list.replaceChildren(...items);
    this.notifyMentions(channels);
  }

  /** @param {ChannelSummary[]} channels */
  notifyMentions(channels) {
    const before = this.mentions;
    this.mentions = new Map(channels.map((c) => [c.name, mentionCount(c.unread)]));
    if (before === null) return;
    const byName = new Map(channels.map((c) => [c.name, c]));
    for (const [name, count] of this.mentions) {
      if (name !== this.current && count > (before.get(name) || 0)) {
        const channel = byName.get(name);
        const title =
          channel?.kind === "dm"
            ? `New message from ${channelName(channel).label}`
            : `You were mentioned in #${name}`;
        notifyHidden(title, "", `mentions-${name}`, () => {
          window.location.href = `${this.url}/${encodeURIComponent(name)}`;
        });
      }
    }
  }
}
