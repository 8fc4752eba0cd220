// The reader's notification level for this channel (channel.jinja2's select): all messages,
// mentions only, or nothing. Kept on the server (PUT /channels/{name}/notifications) for
// every device; the title's count follows it at once, the sidebar's and the lobby's counts
// (made by the server) at their next refresh.

import { sendJson } from "../lib/http.js";

/**
 * @param {HTMLSelectElement} select with ``data-url``
 * @param {(level: string) => void} onChange the chat's title count follows
 * @param {(text: string) => void} say a line for the timeline
 */
export function bindNotifyLevel(select, onChange, say) {
  let current = select.value;
  select.addEventListener("change", async () => {
    const level = select.value;
    select.disabled = true;
    try {
      await sendJson("PUT", select.dataset.url || "", { level });
      current = level;
      onChange(level);
    } catch (error) {
      select.value = current;
      say(error instanceof Error ? error.message : "The server refused.");
    } finally {
      select.disabled = false;
    }
  });
}
