// The channel page's one websocket, shared by the features of the page (the chat, the game).
//
// It connects (with the query parameters its users ask for: the chat's ?after= for the
// catch-up), reconnects with backoff, follows the network and the page's visibility, shows the
// connection's state, and hands each frame to the subscribers of its `type`. It knows no
// feature by name: each one subscribes to the frame types it reads, says which error codes are
// its own, and sends through a client of its own so that errors reach the right feature (an
// error answering a frame sent with a `ref` goes to the client that sent it).
//
// It tells the truth about the connection: "Retry now" while waiting to reconnect, and when
// the session has ended (the socket is refused, or opens as a visitor's: the page asks
// GET /session), "Signed out" with a way back instead of retrying forever.
//
// A visitor (no data-user) gets a socket too, which reads only: the server refuses every
// frame a visitor sends, so this page sends none (``send`` says it could not).
// The protocol is docs/protocol.md.

import { maybe } from "./dom.js";
import { getJson } from "./http.js";
import { PROTOCOL } from "./protocol.js";

/**
 * A frame from the server: a JSON object with a string ``type`` (docs/protocol.md). Each
 * feature's frames are typedefs of its own (chat/message-row.js, game/game-panel.js...); what
 * comes from the network is still checked where it is read.
 * @typedef {{type: string, ref?: string}} Frame
 */

/**
 * ``{"type": "error", "error": CODE, "detail": ..., "ref": ...}``: a frame was refused.
 * @typedef {Frame & {type: "error", error: string, detail?: string}} ErrorFrame
 */

/**
 * ``{"type": "ready", ...}``: the catch-up is over, what follows is live. Features add the
 * positions of their streams (``last_id``, ``changes``, ``pins``...).
 * @typedef {Frame & {user: string | null}} ReadyFrame
 */

/**
 * What a feature sends with (``ChannelSocket.client``).
 * @typedef {object} SocketClient
 * @property {(frame: ErrorFrame) => void} onError
 * @property {(frame: {type: string, [key: string]: unknown}) => boolean} send
 */

/** @typedef {"connecting" | "live" | "reconnecting" | "offline" | "signed-out" | "removed"} SocketState */

const BACKOFF_FIRST_MS = 500;
const SIGNED_OUT = PROTOCOL.socket.signed_out_close; // the session has ended
const REMOVED = PROTOCOL.socket.removed_close; // no longer a member of this private channel
const BACKOFF_MAX_MS = 10000;
const SESSION_URL = "/session";
const REFS_KEPT = 500; // refs of frames sent, remembered to route their errors

/** @type {Record<SocketState, string>} */
const STATE_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  "signed-out": "Signed out",
  removed: "Removed",
};

/**
 * Calls ``fn`` once every deferred and module script of the page has run (so every feature
 * has subscribed before the first frame can arrive).
 * @param {() => void} fn
 */
function afterPageScripts(fn) {
  const navigation = /** @type {PerformanceNavigationTiming | undefined} */ (
    performance.getEntriesByType("navigation")[0]
  );
  if (
    document.readyState === "complete" ||
    (navigation && navigation.domContentLoadedEventStart > 0)
  ) {
    setTimeout(fn, 0);
  } else {
    document.addEventListener("DOMContentLoaded", () => fn(), { once: true });
  }
}

export class ChannelSocket {
  /**
   * @param {HTMLElement} root the element with data-ws-url and data-user; its data-state and
   *   the [data-role=status] element in it show the connection's state.
   */
  constructor(root) {
    this.root = root;
    this.wsUrl = root.dataset.wsUrl || "";
    this.user = root.dataset.user || "";
    this.status = maybe(root, "[data-role=status]");
    this.statusText = maybe(root, "[data-role=status-text]");
    this.retryButton = maybe(root, "[data-role=retry-now]");

    /** @type {Map<string, ((frame: any) => void)[]>} frame type -> its handlers */
    this.handlers = new Map();
    /** @type {((state: SocketState) => void)[]} */
    this.stateHandlers = [];
    /** @type {[string, () => unknown][]} [name, () => value] */
    this.params = [];
    /** @type {(() => Promise<void>)[]} awaited before each connection attempt */
    this.beforeHooks = [];
    /** @type {SocketClient[]} */
    this.clients = [];
    /** @type {Map<string, SocketClient>} error code -> client */
    this.errorOwners = new Map();
    /** @type {Map<string, SocketClient>} ref of a frame sent -> the client that sent it */
    this.refOwners = new Map();
    /** @type {SocketClient | null} */
    this.lastSender = null;
    /** @type {Map<string, Record<string, unknown>>} frame type -> the last one sent */
    this.lastFrames = new Map();

    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {SocketState} */
    this.state = "connecting";
    this.connection = 0; // grows with each socket: tells apart what was sent on an older one
    this.attempts = 0;
    /** @type {number | undefined} */
    this.retryTimer = undefined;
    this.wasLive = false;
    this.leaving = false;
    this.preparing = false;
    this.started = false;
  }

  // -- what features use ----------------------------------------------------------------------

  /**
   * ``handler(frame)`` for every frame of ``type``; returns a function that unsubscribes.
   * ``F`` is the frame the protocol says comes with that type (its fields are still to be
   * checked: they come from the network).
   * @template {object} F
   * @param {string} type
   * @param {(frame: F) => void} handler
   * @returns {() => void}
   */
  on(type, handler) {
    let list = this.handlers.get(type);
    if (!list) this.handlers.set(type, (list = []));
    list.push(handler);
    return () => {
      const list = this.handlers.get(type) || [];
      const index = list.indexOf(handler);
      if (index >= 0) list.splice(index, 1);
    };
  }

  /**
   * ``handler(state)`` whenever the state (connecting, live, reconnecting, offline) changes.
   * @param {(state: SocketState) => void} handler
   */
  onState(handler) {
    this.stateHandlers.push(handler);
  }

  /**
   * A query parameter of every connection, read when connecting (null: left out).
   * @param {string} name
   * @param {() => unknown} read
   */
  param(name, read) {
    this.params.push([name, read]);
  }

  /**
   * ``await hook()`` before each connection attempt; a hook that throws puts it off.
   * @param {() => Promise<void>} hook
   */
  before(hook) {
    this.beforeHooks.push(hook);
  }

  /**
   * A feature's way to send. Error frames with one of ``codes`` go to its ``onError``; those
   * with a code several features share (rate_limited, unavailable, ...) go to the feature that
   * sent last, as the server answers a socket's frames in the order they came.
   * @param {{codes?: string[], onError?: (frame: ErrorFrame) => void}} [options]
   * @returns {SocketClient}
   */
  client({ codes = [], onError = () => {} } = {}) {
    /** @type {SocketClient} */
    const client = {
      onError,
      send: (frame) => this.send(frame, client),
    };
    for (const code of codes) this.errorOwners.set(code, client);
    this.clients.push(client);
    return client;
  }

  isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * The last frame of ``type`` sent on any connection (the game's "close" notice names it).
   * @param {string} type
   */
  lastSent(type) {
    return this.lastFrames.get(type) || null;
  }

  /**
   * Send ``frame`` now: false when it cannot be (not connected, or a visitor's socket).
   * @param {{type: string, ref?: unknown, [key: string]: unknown}} frame
   * @param {SocketClient | null} client the feature that sends it
   */
  send(frame, client = null) {
    if (this.ws === null || !this.isOpen() || !this.user) return false;
    this.ws.send(JSON.stringify(frame));
    this.lastSender = client;
    this.lastFrames.set(frame.type, frame);
    if (typeof frame.ref === "string" && client) {
      this.refOwners.set(frame.ref, client);
      const oldest = this.refOwners.keys().next();
      if (this.refOwners.size > REFS_KEPT && !oldest.done) this.refOwners.delete(oldest.value);
    }
    return true;
  }

  /** Connect once the page's scripts have subscribed. */
  start() {
    if (this.started) return;
    this.started = true;
    window.addEventListener("online", () => this.networkBack());
    window.addEventListener("offline", () => this.setState("offline"));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
    window.addEventListener("pagehide", () => {
      this.leaving = true;
      clearTimeout(this.retryTimer);
      if (this.ws) this.ws.close(1000, "leaving");
    });
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) {
        // Back from the back-forward cache: the socket was closed when the page was hidden.
        this.leaving = false;
        if (this.ws && this.ws.readyState >= WebSocket.CLOSING) this.ws = null;
        this.reconnectNow();
      }
    });
    if (this.retryButton) {
      this.retryButton.addEventListener("click", () => this.retryNow());
    }
    this.setState("connecting");
    afterPageScripts(() => this.connect());
  }

  // -- the connection -----------------------------------------------------------------------

  /**
   * @param {SocketState} state
   * @param {string} [text] what the status says, when not the state's usual words
   */
  setState(state, text) {
    this.state = state;
    if (this.status) this.status.dataset.state = state;
    this.root.dataset.state = state;
    if (this.statusText) this.statusText.textContent = text || STATE_TEXT[state];
    if (this.retryButton) {
      this.retryButton.hidden = !(state === "reconnecting" || state === "offline");
    }
    for (const handler of this.stateHandlers) handler(state);
  }

  socketUrl() {
    const url = new URL(this.wsUrl, window.location.href);
    url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
    for (const [name, read] of this.params) {
      const value = read();
      if (value !== null && value !== undefined) url.searchParams.set(name, String(value));
    }
    return url;
  }

  async connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.leaving || this.ws || this.preparing) return;
    this.preparing = true;
    try {
      for (const hook of this.beforeHooks) await hook();
    } catch {
      this.preparing = false;
      this.scheduleReconnect();
      return;
    }
    this.preparing = false;
    if (this.leaving || this.ws) return;
    let socket;
    try {
      socket = new WebSocket(this.socketUrl());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = socket;
    this.connection += 1;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
    });
    socket.addEventListener("message", (event) => {
      if (this.ws === socket) this.onFrame(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (this.ws !== socket) return;
      this.ws = null;
      if (event.code === SIGNED_OUT) {
        this.signedOut();
      } else if (event.code === REMOVED) {
        this.removed();
      } else if (!this.leaving) {
        this.scheduleReconnect();
        // Refused before it opened: the server is away, or the session has ended (403).
        if (!opened) this.checkSession();
      }
    });
  }

  /** Is the session still this page's user's? If the server says no one is signed in (or
   * someone else), the page is signed out; if it cannot be asked, the server is away. */
  async checkSession() {
    let body;
    try {
      body = await getJson(SESSION_URL);
    } catch {
      return;
    }
    if (body && "user" in body && (body.user || "") !== this.user && !this.leaving) {
      this.signedOut();
    }
  }

  /** The session ended (logged out here or elsewhere): no more reconnecting; say so, with
   * a way back that returns to this page. */
  signedOut() {
    const here = window.location.pathname + window.location.search;
    this.giveUp("signed-out", "You have been signed out. ", {
      href: `/login?next=${encodeURIComponent(here)}`,
      text: "Log in again",
    });
  }

  /** Removed from this private channel: no more reconnecting; say so, with the way back to
   * the lobby. */
  removed() {
    this.giveUp("removed", "You are no longer a member of this channel. ", {
      href: "/",
      text: "Back to the channels",
    });
  }

  /**
   * This page's socket is over for good: no more reconnecting; a notice says why (once),
   * with a link onwards.
   * @param {"signed-out" | "removed"} state
   * @param {string} why
   * @param {{href: string, text: string}} onwards
   */
  giveUp(state, why, onwards) {
    this.leaving = true;
    clearTimeout(this.retryTimer);
    this.setState(state, STATE_TEXT[state]);
    if (this.root.querySelector(`[data-role=${state}]`)) return;
    const notice = document.createElement("p");
    notice.className = "signed-out";
    notice.dataset.role = state;
    notice.setAttribute("role", "alert");
    const link = document.createElement("a");
    link.href = onwards.href;
    link.textContent = onwards.text;
    notice.append(why, link, ".");
    this.root.prepend(notice);
  }

  scheduleReconnect() {
    clearTimeout(this.retryTimer);
    if (this.leaving) return;
    if (navigator.onLine === false) {
      this.setState("offline");
    } else {
      this.setState(this.wasLive || this.attempts > 0 ? "reconnecting" : "connecting");
    }
    // 0.5 s doubling up to 10 s, each delay drawn in [75 %, 125 %] so that a restarted
    // server is not hit by every page at the same instant.
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempts);
    const delay = base * (0.75 + Math.random() * 0.5);
    this.attempts += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Try again now, from the first delay (the reader asked: "Retry now"). */
  retryNow() {
    this.attempts = 0;
    this.reconnectNow();
  }

  /** The network is back: the socket we have may have died with the old one unnoticed, so
   * replace it now; the new one catches up. */
  networkBack() {
    if (this.leaving) return;
    const old = this.ws;
    if (old) {
      this.ws = null;
      old.close(4000, "network changed");
      this.setState("reconnecting");
    }
    this.reconnectNow();
  }

  /** Try at once (the tab is visible again, the network is back) rather than wait. */
  reconnectNow() {
    if (this.leaving || !this.started) return;
    if (this.ws || this.preparing) return;
    this.attempts = 0;
    this.connect();
  }

  /** @param {unknown} data a text frame */
  onFrame(data) {
    let frame;
    try {
      frame = JSON.parse(String(data));
    } catch {
      return;
    }
    if (frame === null || typeof frame !== "object" || typeof frame.type !== "string") return;
    if (frame.type === "ready") {
      if (this.user && frame.user !== this.user) {
        // The session ended while the page was away: the socket is a visitor's now.
        this.ws?.close(1000, "signed out");
        this.ws = null;
        this.signedOut();
        return;
      }
      this.attempts = 0;
      this.wasLive = true;
      this.setState("live", this.user ? undefined : "Live · read only");
    }
    if (frame.type === "error") {
      const owner =
        this.refOwners.get(frame.ref) ||
        this.errorOwners.get(frame.error) ||
        this.lastSender ||
        this.clients[0];
      if (owner) owner.onError(frame);
    }
    if (typeof frame.ref === "string") this.refOwners.delete(frame.ref);
    for (const handler of [...(this.handlers.get(frame.type) || [])]) handler(frame);
  }
}

/** @type {WeakMap<HTMLElement, ChannelSocket>} */
const sockets = new WeakMap();

/**
 * The page's socket for the channel element ``root`` (one per page, whoever asks first).
 * @param {HTMLElement} root
 */
export function channelSocket(root) {
  let socket = sockets.get(root);
  if (!socket) {
    socket = new ChannelSocket(root);
    sockets.set(root, socket);
  }
  return socket;
}
