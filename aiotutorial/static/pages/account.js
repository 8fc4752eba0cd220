// The account page: the initials of a user without a picture (the page shows a picture it
// has itself, so that the form works without script).

import { initialsElement } from "../lib/avatar.js";

for (const slot of document.querySelectorAll("[data-initials-of]")) {
  if (!(slot instanceof HTMLElement)) continue;
  const shown = initialsElement(slot.dataset.initialsOf || "", "avatar-lg");
  shown.dataset.role = "account-avatar";
  slot.replaceWith(shown);
}
