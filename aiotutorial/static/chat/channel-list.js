// The channel list as GET /channels gives it, shared by the lobby (pages/lobby.js) and the
// channel page's sidebar (channel-sidebar.js): fetching it, and how unread messages and
// mentions read.

import { element } from "../lib/dom.js";
import { HttpError, getJson } from "../lib/http.js";

/**
 * What is unread in a channel for the signed-in reader (docs/protocol.md, ``unread``).
 * @typedef {object} Unread
 * @property {number | null} [count]
 * @property {boolean} [more]
 * @property {number} [mentions]
 * @property {number | null} [last_read]
 */

/**
 * A channel of ``GET /channels``.
 * @typedef {object} ChannelSummary
 * @property {string} name
 * @property {number} [online]
 * @property {string | null} [last_message_at]
 * @property {{players: number} | null} [game]
 * @property {Unread | null} [unread]
 * @property {"public" | "private" | "dm"} [kind]
 * @property {string[]} [members] a conversation's other members
 * @property {"all" | "mentions" | "nothing"} [notify] the reader's level there
 * @property {string[]} [online_members] a conversation's others who are online
 */

/**
 * The channels, or null when the list could not be read.
 * @param {string} url
 * @returns {Promise<ChannelSummary[] | null>}
 */
export async function fetchChannels(url) {
  let body;
  try {
    body = await getJson(url);
  } catch (error) {
    if (error instanceof HttpError) return null;
    throw error;
  }
  if (!Array.isArray(body.channels)) return null;
  return body.channels.filter(
    (/** @type {any} */ channel) => channel && typeof channel.name === "string",
  );
}

/**
 * How many unread ("3", "100+"; "" for none, or a channel never opened).
 * @param {Unread | null | undefined} unread
 */
export function unreadCount(unread) {
  const count = Number(unread?.count);
  if (!Number.isInteger(count) || count <= 0) return "";
  return unread?.more ? `${count}+` : String(count);
}

/** @param {Unread | null | undefined} unread */
export function mentionCount(unread) {
  const count = Number(unread?.mentions);
  return Number.isInteger(count) && count > 0 ? count : 0;
}

/**
 * "3 unread", "1 mention" ... for screen readers and the lobby.
 * @param {Unread | null | undefined} unread
 */
export function unreadLabel(unread) {
  const parts = [];
  const count = unreadCount(unread);
  if (count) parts.push(`${count} unread`);
  const mentions = mentionCount(unread);
  if (mentions) parts.push(mentions === 1 ? "1 mention" : `${mentions} mentions`);
  return parts.join(", ");
}

/**
 * How a channel is named on screen: its mark ("#", a lock for a private channel, "@" for a
 * conversation) and its label (a conversation's other members).
 * @param {ChannelSummary} channel
 * @returns {{mark: string, label: string, spoken: string}}
 */
export function channelName(channel) {
  if (channel.kind === "dm") {
    const label = (channel.members || []).join(", ") || channel.name;
    return { mark: "@", label, spoken: `Conversation with ${label}` };
  }
  if (channel.kind === "private") {
    return { mark: "\u{1F512}", label: channel.name, spoken: `#${channel.name} (private)` };
  }
  return { mark: "#", label: channel.name, spoken: `#${channel.name}` };
}

/**
 * A conversation's dot: green when one of the others is online anywhere.
 * @param {ChannelSummary} channel
 */
export function presenceDot(channel) {
  const here = channel.online_members || [];
  const dot = element("span", here.length ? "presence-dot online" : "presence-dot");
  dot.title = here.length ? `Online: ${here.join(", ")}` : "Away";
  return dot;
}
