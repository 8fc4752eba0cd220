// The members of a private channel or a conversation (channel.jinja2's access panel): its
// owner and moderators add members by name and remove them; a member leaves. Each change is
// a JSON request with the page's CSRF token, then the list is read again
// (GET /channels/{name}/members). Names go in with textContent only.

import { element, find, maybe, targetOf } from "../lib/dom.js";
import { getJson, sendJson as send } from "../lib/http.js";

/** @typedef {{username: string, role: string}} Member */

export class MembersPanel {
  /** @param {HTMLElement} root the access panel (data-members-url, data-kind, data-my-role) */
  constructor(root, user = "") {
    this.root = root;
    this.url = root.dataset.membersUrl || "";
    this.kind = root.dataset.kind || "";
    this.role = root.dataset.myRole || "";
    this.user = user;
    this.list = find(root, "[data-role=access-members]");
    this.total = maybe(root, "[data-role=member-total]");
    this.error = maybe(root, "[data-role=access-error]");
    this.form = maybe(root, "[data-role=access-add]");
  }

  start() {
    this.form?.addEventListener("submit", (event) => {
      event.preventDefault();
      const input = this.form?.querySelector("input[name=username]");
      if (!(input instanceof HTMLInputElement)) return;
      const username = input.value.trim();
      if (!username) return;
      this.change(() => send("POST", this.url, { username })).then((done) => {
        if (done) input.value = "";
      });
    });
    this.root.addEventListener("click", (event) => {
      const button = targetOf(event)?.closest("button");
      if (!button) return;
      if (button.dataset.role === "access-leave") {
        this.change(() => send("DELETE", `${this.url}/${encodeURIComponent(this.user)}`)).then(
          (done) => {
            if (done) window.location.href = "/";
          },
        );
      } else if (button.dataset.role === "access-remove" && button.dataset.username) {
        const who = button.dataset.username;
        this.change(() => send("DELETE", `${this.url}/${encodeURIComponent(who)}`));
      }
    });
    this.decorate();
  }

  /**
   * Run a change, show its refusal if any, then read the members again.
   * @param {() => Promise<void>} action
   * @returns {Promise<boolean>} whether it was done
   */
  async change(action) {
    this.say("");
    try {
      await action();
    } catch (error) {
      this.say(error instanceof Error ? error.message : String(error));
      return false;
    }
    await this.reload();
    return true;
  }

  /** @param {string} text */
  say(text) {
    if (!this.error) return;
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  async reload() {
    let body;
    try {
      body = await getJson(this.url);
    } catch {
      return;
    }
    if (!Array.isArray(body?.members)) return;
    this.show(body.members);
  }

  /** @param {Member[]} members */
  show(members) {
    const items = members.map((member) => {
      const item = element("li", "", member.username);
      item.dataset.username = member.username;
      item.dataset.memberRole = member.role;
      if (member.role !== "member") item.append(" ", element("span", "access-role", member.role));
      return item;
    });
    this.list.replaceChildren(...items);
    if (this.total) this.total.textContent = String(members.length);
    this.decorate();
  }

  /** A remove button beside each member this reader may remove. */
  decorate() {
    if (this.kind !== "private" || (this.role !== "owner" && this.role !== "moderator")) return;
    for (const item of this.list.querySelectorAll("li[data-username]")) {
      if (!(item instanceof HTMLElement) || item.querySelector("button")) continue;
      const who = item.dataset.username || "";
      const role = item.dataset.memberRole || (item.querySelector(".access-role")?.textContent ?? "member");
      const removable =
        who !== this.user && role !== "owner" && (this.role === "owner" || role === "member");
      if (!removable) continue;
      const button = element("button", "secondary access-remove", "Remove");
      button.type = "button";
      button.dataset.role = "access-remove";
      button.dataset.username = who;
      button.setAttribute("aria-label", `Remove ${who}`);
      item.append(" ", button);
    }
  }
}
