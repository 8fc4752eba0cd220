// The reaction picker: the common emoji and the reader's recently used ones (kept in
// localStorage), in a small menu by the message's React button. Choosing one calls back with
// it; Escape or a click elsewhere closes it.

import { element } from "../lib/dom.js";

const COMMON = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"];
const RECENT_KEY = "aiotutorial.reactions.recent";
const RECENT_KEPT = 8;

/** The reader's recently used emoji, the latest first. */
export function recentEmoji() {
  try {
    const kept = JSON.parse(localStorage.getItem(RECENT_KEY) || "[]");
    return Array.isArray(kept) ? kept.filter((e) => typeof e === "string").slice(0, RECENT_KEPT) : [];
  } catch {
    return [];
  }
}

/** @param {string} emoji */
function remember(emoji) {
  const recent = [emoji, ...recentEmoji().filter((e) => e !== emoji)].slice(0, RECENT_KEPT);
  try {
    localStorage.setItem(RECENT_KEY, JSON.stringify(recent));
  } catch {
    // Storage refused: the picker shows the common ones.
  }
}

export class ReactionPicker {
  constructor() {
    /** @type {HTMLElement | null} */
    this.menu = null;
    /** @type {((emoji: string) => void) | null} */
    this.onPick = null;
    this.closeOnOutside = (/** @type {Event} */ event) => {
      if (this.menu && event.target instanceof Node && !this.menu.contains(event.target)) {
        this.close();
      }
    };
    this.closeOnEscape = (/** @type {KeyboardEvent} */ event) => {
      if (event.key === "Escape") this.close();
    };
  }

  /**
   * Open the picker after ``anchor`` (a message's React button).
   * @param {HTMLElement} anchor
   * @param {(emoji: string) => void} onPick
   */
  open(anchor, onPick) {
    this.close();
    this.onPick = onPick;
    const menu = element("div", "reaction-picker");
    menu.setAttribute("role", "menu");
    menu.setAttribute("aria-label", "Reactions");
    const recent = recentEmoji();
    const choices = [...recent, ...COMMON.filter((e) => !recent.includes(e))];
    for (const emoji of choices) {
      const button = element("button", "reaction-choice", emoji);
      button.type = "button";
      button.dataset.emoji = emoji;
      button.setAttribute("role", "menuitem");
      button.setAttribute("aria-label", `React with ${emoji}`);
      button.addEventListener("click", () => {
        remember(emoji);
        const pick = this.onPick;
        this.close();
        pick?.(emoji);
      });
      menu.append(button);
    }
    anchor.after(menu);
    this.menu = menu;
    menu.querySelector("button")?.focus();
    // After this click has finished bubbling.
    setTimeout(() => document.addEventListener("click", this.closeOnOutside), 0);
    document.addEventListener("keydown", this.closeOnEscape);
  }

  close() {
    this.menu?.remove();
    this.menu = null;
    this.onPick = null;
    document.removeEventListener("click", this.closeOnOutside);
    document.removeEventListener("keydown", this.closeOnEscape);
  }
}
