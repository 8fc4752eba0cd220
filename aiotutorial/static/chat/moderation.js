// A reader's and a moderator's actions on a message of the timeline (message-row.js's buttons):
// report it to the site's administrators, mute its author for a while, ban its author from a
// public channel. Each is one JSON request (views/moderation.py); removing a message is a
// ``message.delete`` frame (message-editing.js). The answer is a line for the timeline.

import { sendJson } from "../lib/http.js";

/** @typedef {{id: number, user: string}} Target */

const MUTE_CHOICES = "10";

/**
 * Do ``action`` ("report", "mute" or "ban") on ``message`` of the channel at ``base``
 * (``/channels/NAME``); what to tell the reader, or null when they cancelled.
 * @param {string} action
 * @param {string} base
 * @param {Target} message
 * @returns {Promise<string | null>}
 */
export async function moderate(action, base, message) {
  try {
    if (action === "report") {
      const reason = window.prompt("Report this message to the administrators. Why?", "");
      if (reason === null) return null;
      const url = `${base}/messages/${message.id}/report`;
      await sendJson("POST", url, { reason });
      return "Reported. Thank you: the administrators will look at it.";
    }
    if (action === "mute") {
      const answer = window.prompt(`Mute ${message.user} here for how many minutes?`, MUTE_CHOICES);
      if (answer === null) return null;
      const minutes = Number(answer.trim());
      if (!Number.isInteger(minutes) || minutes < 1) return "Give a whole number of minutes.";
      await sendJson("POST", `${base}/mutes`, { username: message.user, minutes });
      return `${message.user} is muted here for ${minutes} minute${minutes === 1 ? "" : "s"}.`;
    }
    if (action === "ban") {
      if (!window.confirm(`Ban ${message.user} from this channel? It will vanish for them.`)) {
        return null;
      }
      await sendJson("POST", `${base}/bans`, { username: message.user });
      return `${message.user} is banned from this channel.`;
    }
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : "The server refused.";
  }
}
