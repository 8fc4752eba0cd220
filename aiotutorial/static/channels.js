// The channel list as GET /channels gives it, shared by the lobby (lobby.js) and the channel
// page's sidebar (sidebar.js): fetching it, and how unread messages and mentions read.

/** The channels, or null when the list could not be read. */
export async function fetchChannels(url) {
  const response = await fetch(url, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
    cache: "no-store",
  });
  if (!response.ok) return null;
  const body = await response.json();
  if (!Array.isArray(body.channels)) return null;
  return body.channels.filter((channel) => channel && typeof channel.name === "string");
}

/** How many unread ("3", "100+"; "" for none, or a channel never opened). */
export function unreadCount(unread) {
  const count = Number(unread?.count);
  if (!Number.isInteger(count) || count <= 0) return "";
  return unread.more ? `${count}+` : String(count);
}

export function mentionCount(unread) {
  const count = Number(unread?.mentions);
  return Number.isInteger(count) && count > 0 ? count : 0;
}

/** "3 unread", "1 mention" ... for screen readers and the lobby. */
export function unreadLabel(unread) {
  const parts = [];
  const count = unreadCount(unread);
  if (count) parts.push(`${count} unread`);
  const mentions = mentionCount(unread);
  if (mentions) parts.push(mentions === 1 ? "1 mention" : `${mentions} mentions`);
  return parts.join(", ");
}
