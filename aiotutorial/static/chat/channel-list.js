// The channel list as GET /channels gives it, shared by the lobby (pages/lobby.js) and the
// channel page's sidebar (channel-sidebar.js): fetching it, and how unread messages and
// mentions read.

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
