// A channel's moderation page (moderation.jinja2): its moderators lift mutes and bans there,
// one JSON request each (views/moderation.py); the row goes once the server said yes.

import { targetOf } from "../lib/dom.js";
import { sendJson } from "../lib/http.js";

const page = document.getElementById("moderation");
if (page) {
  const error = page.querySelector("[data-role=moderation-error]");
  page.addEventListener("click", async (event) => {
    const button = targetOf(event)?.closest("button[data-action]");
    if (!(button instanceof HTMLButtonElement) || !button.dataset.url) return;
    button.disabled = true;
    try {
      await sendJson("DELETE", button.dataset.url);
      button.closest("li")?.remove();
    } catch (problem) {
      button.disabled = false;
      if (error instanceof HTMLElement) {
        error.textContent = problem instanceof Error ? problem.message : "The server refused.";
        error.hidden = false;
      }
    }
  });
}
