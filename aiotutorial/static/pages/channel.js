// The channel page: its chat (with its pins), its draw-and-guess game and the list of
// channels, the chat and the game on the page's one websocket.

import { ChannelChat } from "../chat/channel-chat.js";
import { ChannelSidebar } from "../chat/channel-sidebar.js";
import { GamePanel } from "../game/game-panel.js";
import { MembersPanel } from "../chat/members.js";
import { bindNotifyLevel } from "../chat/notify-level.js";
import { channelSocket } from "../lib/socket.js";

const chatRoot = document.getElementById("chat");
if (chatRoot) {
  const socket = channelSocket(chatRoot);
  const chat = new ChannelChat(chatRoot, socket);
  chat.start();
  const level = chatRoot.querySelector("[data-role=notify-level]");
  if (level instanceof HTMLSelectElement) {
    bindNotifyLevel(
      level,
      (value) => chat.read.setLevel(value),
      (text) => chat.addNotice({ text }),
    );
  }
  const gameRoot = document.getElementById("game");
  if (gameRoot) new GamePanel(gameRoot, chatRoot, socket).start();
  const nav = document.getElementById("sidebar");
  if (nav) new ChannelSidebar(nav, chatRoot).start();
  const members = document.getElementById("members-panel");
  if (members) new MembersPanel(members, chatRoot.dataset.user || "").start();
}
