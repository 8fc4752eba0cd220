// The drawer's operations on their way to the server: sent as `game.draw` batches about every
// 40 ms, each within the protocol's bounds (at most MAX_OPS operations, MAX_POINTS points and
// MAX_FILLS fills, the server's own through the protocol's island): a long stroke is cut into
// a "line" and "more"s. What cannot be sent (not connected) waits, in order.

import { MAX_FILLS, MAX_OPS, MAX_POINTS } from "./board.js";

/** @typedef {import("./board.js").Op} Op */

const BATCH_MS = 40;

/** @param {Op} op */
function pointsOf(op) {
  return "p" in op ? op.p.length / 2 : 0;
}

/**
 * A copy of ``op`` whose points can grow without changing the original.
 * @param {Op} op
 * @returns {Op}
 */
function copyOf(op) {
  return "p" in op ? { ...op, p: [...op.p] } : { ...op };
}

/** Operations waiting to be sent, cut into batches the server accepts. */
export class StrokeOutbox {
  /** @param {(ops: Op[]) => boolean} send sends one batch; false if it could not. */
  constructor(send) {
    this.send = send;
    /** @type {Op[]} */
    this.queue = [];
    /** @type {Op | null} the queued op that the stroke being drawn still adds points to */
    this.current = null;
    /** @type {number | undefined} */
    this.timer = undefined;
  }

  /** @param {Op} op */
  add(op) {
    if (op.op === "more" && this.current && "p" in this.current) {
      this.current.p.push(...op.p);
    } else {
      const copy = copyOf(op);
      this.queue.push(copy);
      this.current = op.op === "line" || op.op === "more" ? copy : null;
    }
    this.flushSoon();
  }

  /** The stroke is over: what comes next starts a new operation. */
  endStroke() {
    this.current = null;
  }

  /** What waits, as copies. */
  pending() {
    return this.queue.map(copyOf);
  }

  clear() {
    this.queue = [];
    this.current = null;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  flushSoon() {
    if (this.timer === undefined && this.queue.length > 0) {
      this.timer = setTimeout(() => this.flush(), BATCH_MS);
    }
  }

  flush() {
    this.timer = undefined;
    if (this.queue.length === 0) return;
    const batch = this.take();
    if (!this.send(batch)) {
      // Not connected: kept, in order, for when the socket is back.
      this.queue.unshift(...batch);
      return;
    }
    this.flushSoon();
  }

  /** The next batch: at most MAX_OPS operations, MAX_POINTS points and MAX_FILLS fills. */
  take() {
    /** @type {Op[]} */
    const batch = [];
    let points = 0;
    let fills = 0;
    while (this.queue.length > 0 && batch.length < MAX_OPS) {
      const op = this.queue[0];
      if (op.op === "fill") {
        if (fills === MAX_FILLS) break;
        fills += 1;
      }
      const count = pointsOf(op);
      if (points + count <= MAX_POINTS) {
        batch.push(op);
        this.queue.shift();
        points += count;
        if (op === this.current) this.current = null;
        continue;
      }
      const room = MAX_POINTS - points;
      if (room > 0 && "p" in op) {
        /** @type {Op} */
        const rest = { op: "more", p: op.p.slice(room * 2) };
        batch.push({ ...op, p: op.p.slice(0, room * 2) });
        this.queue[0] = rest;
        if (op === this.current) this.current = rest;
      }
      break;
    }
    return batch;
  }
}
