// Refs: the page's own ids for the frames it sends (docs/protocol.md, "ref"); the server's
// answer to a frame carries its ref.

import { PROTOCOL } from "./protocol.js";

// 128 random bits as hex, or as many as the server's longest ref holds.
const REF_BYTES = Math.min(16, Math.floor(PROTOCOL.socket.ref_max_chars / 2));

/** A fresh ref (also on http:, where crypto.randomUUID is missing). */
export function newRef() {
  const bytes = crypto.getRandomValues(new Uint8Array(REF_BYTES));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
