// The tutorial's first chapter: open a websocket to /echo, send a message, print what comes
// back. The echo URL comes from the page (data-echo-url), so that the page has no inline script.

import { find } from "../lib/dom.js";

const output = find(document, "#output");
const echoUrl = new URL(output.dataset.echoUrl || "/echo", window.location.href);
echoUrl.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";

/**
 * @param {string} label
 * @param {string} [text]
 * @param {string} [cssClass]
 */
function writeToScreen(label, text, cssClass) {
  const line = document.createElement("p");
  line.className = cssClass || "";
  const strong = document.createElement("strong");
  strong.textContent = label;
  line.append(strong, text ? " " + text : "");
  output.append(line);
}

const socket = new WebSocket(echoUrl);
socket.addEventListener("open", () => {
  writeToScreen("CONNECTED");
  const message = "WebSocket rocks";
  writeToScreen("SENT:", message);
  socket.send(message);
});
socket.addEventListener("message", (event) => {
  writeToScreen("RESPONSE:", event.data, "response");
  socket.close();
});
socket.addEventListener("error", () => writeToScreen("ERROR:", "the websocket failed", "error"));
socket.addEventListener("close", () => writeToScreen("DISCONNECTED"));
