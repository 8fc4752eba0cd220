// The channel page: its chat (with its pins), its draw-and-guess game and the list of
// channels, the chat and the game on the page's one websocket.

import { ChannelChat } from "../chat/channel-chat.js";
import { ChannelSidebar } from "../chat/channel-sidebar.js";
import { GamePanel } from "../game/game-panel.js";
import { MembersPanel } from "../chat/members.js";
import { channelSocket } from "../lib/socket.js";

const chatRoot = document.getElementById("chat");
if (chatRoot) {
  const socket = channelSocket(chatRoot);
  new ChannelChat(chatRoot, socket).start();
  const gameRoot = document.getElementById("game");
  if (gameRoot) new GamePanel(gameRoot, chatRoot, socket).start();
  const nav = document.getElementById("sidebar");
  if (nav) new ChannelSidebar(nav, chatRoot).start();
  const members = document.getElementById("members-panel");
  if (members) new MembersPanel(members, chatRoot.dataset.user || "").start();
}
