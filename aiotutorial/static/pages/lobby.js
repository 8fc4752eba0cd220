// The lobby: last-message times in the reader's locale, and the list kept fresh by polling
// GET /channels (who is online, where a game runs, what is unread change all the time). Names
// go in with textContent only.

import {
  channelName,
  fetchChannels,
  mentionCount,
  presenceDot,
  unreadCount,
} from "../chat/channel-list.js";
import { element, find } from "../lib/dom.js";
import { fullTime } from "../lib/time.js";

/** @typedef {import("../chat/channel-list.js").ChannelSummary} ChannelSummary */
/** @typedef {import("../chat/channel-list.js").Unread} Unread */

const REFRESH_MS = 15000;
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/**
 * "just now", "5 minutes ago", "3 hours ago", then a date.
 * @param {string} iso
 */
function ago(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 45) return "just now";
  if (seconds < 3600) return relative.format(-Math.round(seconds / 60), "minute");
  if (seconds < 86400) return relative.format(-Math.round(seconds / 3600), "hour");
  if (seconds < 7 * 86400) return relative.format(-Math.round(seconds / 86400), "day");
  return dateFormat.format(date);
}

/** @param {HTMLElement} root */
function localizeTimes(root) {
  for (const time of root.querySelectorAll("time[datetime]")) {
    if (!(time instanceof HTMLTimeElement)) continue;
    const text = ago(time.dateTime);
    if (text) {
      time.textContent = text;
      time.title = fullTime(time.dateTime);
    }
  }
}

/**
 * The badges of what is unread for the reader (as lobby.jinja2 renders them).
 * @param {Unread | null | undefined} unread
 */
function unreadBadges(unread) {
  const badges = [];
  const count = unreadCount(unread);
  if (count) badges.push(element("span", "channel-unread", `${count} unread`));
  const mentions = mentionCount(unread);
  if (mentions) {
    const text = mentions === 1 ? "1 mention" : `${mentions} mentions`;
    badges.push(element("span", "channel-mentions", text));
  }
  return badges;
}

/**
 * @param {string} base the channels' address
 * @param {ChannelSummary} channel
 */
function channelItem(base, channel) {
  const item = element("li", "channel-item");
  const link = element("a", "channel-link");
  link.href = `${base}/${encodeURIComponent(channel.name)}`;
  const named = channelName(channel);
  const hash = element("span", "hash", named.mark);
  hash.setAttribute("aria-hidden", "true");
  link.append(hash, named.label);
  if (channel.kind && channel.kind !== "public") {
    item.dataset.kind = channel.kind;
    link.setAttribute("aria-label", named.spoken);
  }
  if (channel.kind === "dm") link.append(presenceDot(channel));
  if (channel.notify === "nothing") item.classList.add("notify-nothing");
  const online = Number(channel.online) || 0;
  const count = element("span", "channel-online", `${online} online`);
  count.classList.toggle("active", online > 0);
  const last = element("span", "channel-last");
  if (channel.last_message_at) {
    const time = element("time");
    time.dateTime = channel.last_message_at;
    last.append("Last message ", time);
  } else {
    last.textContent = "No messages yet";
  }
  item.append(link, count);
  const badges = unreadBadges(channel.unread);
  if (badges.length) {
    const box = element("span", "channel-badges");
    box.append(...badges);
    item.append(box);
    item.classList.add("has-unread");
  }
  const players = Number(channel.game?.players);
  if (channel.game && Number.isInteger(players)) {
    item.append(element("span", "channel-game", `Game on: ${players} playing`));
  }
  item.append(last);
  return item;
}

/**
 * @param {HTMLElement} lobby
 * @param {HTMLElement} list
 * @param {HTMLElement} empty
 */
async function refresh(lobby, list, empty) {
  const base = lobby.dataset.channelsUrl || "";
  const channels = await fetchChannels(base);
  if (channels === null) return;
  list.replaceChildren(...channels.map((channel) => channelItem(base, channel)));
  list.hidden = channels.length === 0;
  empty.hidden = channels.length > 0;
  localizeTimes(list);
}

const lobby = document.getElementById("lobby");
if (lobby) {
  const list = find(document, "#channel-list");
  const empty = find(document, "#no-channels");
  localizeTimes(list);
  const update = () => refresh(lobby, list, empty).catch(() => {});
  setInterval(() => {
    if (document.visibilityState === "visible") update();
  }, REFRESH_MS);
  // Back to the lobby from a channel (the back-forward cache), or to its tab: fresh counts.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) update();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") update();
  });
}
