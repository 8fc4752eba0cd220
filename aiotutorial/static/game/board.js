// The drawing board of the game: an 800 x 600 grid of colours that the drawing operations of
// docs/protocol.md ("Drawing") paint, and its rendering on a canvas.
//
// Every client must end up with the same pixels from the same operations (a flood fill reads
// the pixels, so a one-pixel difference in a stroke's edge could fill another region). So
// strokes are rasterized here, without anti-aliasing, with arithmetic only (+ - * /, exact in
// IEEE doubles on every engine), and fills compare exact colours, never blended ones. The
// pixels live in the canvas's own ImageData (one 32-bit word a pixel): the canvas only ever
// receives finished pixels (putImageData), however the browser scales it.
//
// A drawer may send fills and undos as fast as the server relays them, and every viewer's
// tab paints them, so the work is bounded: an undo does not repaint the drawing from the
// start but from the nearest checkpoint (a copy of the pixels kept every so much painting),
// several undos in a row repaint once, and a repaint can be done in parts; a fill visits each
// pixel of its area a bounded number of times; and what arrives from the network is painted
// in slices of a few milliseconds (``Painter``), so the page keeps answering whatever the
// flood.

import { PROTOCOL } from "../lib/protocol.js";

/**
 * A colour: an index into the palette, or "#rrggbb" (lowercase hex).
 * @typedef {number | string} Colour
 */

/**
 * A drawing operation (docs/protocol.md, "Drawing"), as checked by ``isOp``.
 * @typedef {{op: "line", c: Colour, w: number, p: number[]}
 *   | {op: "more", p: number[]}
 *   | {op: "fill", c: Colour, x: number, y: number}
 *   | {op: "undo"}
 *   | {op: "clear"}} Op
 */

/**
 * What the board keeps of the drawing: each stroke (its points so far) or fill that shows.
 * @typedef {{op: "line", c: Colour, w: number, p: number[]}
 *   | {op: "fill", c: Colour, x: number, y: number}} Shape
 */

// The server's aiotutorial/game/drawing.py, through the protocol's island.
const GAME = PROTOCOL.game;
export const BOARD_WIDTH = GAME.board_width;
export const BOARD_HEIGHT = GAME.board_height;
// Index 0 is the background, the eraser's colour.
export const PALETTE = GAME.palette;
// The palette's colours named, for the swatches' labels (as many as the palette has).
/** @type {string[]} */
export const COLOUR_NAMES = [
  "White",
  "Black",
  "Grey",
  "Light grey",
  "Red",
  "Orange",
  "Yellow",
  "Green",
  "Sky blue",
  "Blue",
  "Purple",
  "Pink",
  "Brown",
  "Dark brown",
  "Peach",
  "Dark green",
];
// Okabe and Ito's eight colours, told apart with every common colour-vision deficiency; sent
// as "#rrggbb" colours (the protocol's palette indexes are the classic palette's).
/** @type {[string, string][]} */
export const COLOUR_BLIND_PALETTE = [
  ["#000000", "Black"],
  ["#e69f00", "Orange"],
  ["#56b4e9", "Sky blue"],
  ["#009e73", "Bluish green"],
  ["#f0e442", "Yellow"],
  ["#0072b2", "Blue"],
  ["#d55e00", "Vermilion"],
  ["#cc79a7", "Reddish purple"],
  ["#ffffff", "White"],
];
// Indexes of the protocol: the first four of the first protocol, then the sizes added.
export const WIDTHS = GAME.widths;
export const MAX_OPS = GAME.max_ops;
export const MAX_POINTS = GAME.max_points;
export const MAX_FILLS = GAME.max_fills;

const SIZE = BOARD_WIDTH * BOARD_HEIGHT;
// Long segments are painted in pieces this long (in board pixels, along the longer axis), so
// that each piece's bounding box stays small.
const PIECE = 8;
const HEX = /^#[0-9a-f]{6}$/;
// A checkpoint (a copy of the pixels, 1.9 MB) is kept once this much painting (pixels
// written) has been done since the last one, so that an undo repaints at most about this
// much: a fill of the whole board, or so. At most CHECKPOINTS are kept, spread over the
// drawing (closer together near its end); their buffers are used again rather than left to
// the garbage collector.
const CHECKPOINT_WORK = SIZE;
const CHECKPOINT_SHAPES = 64;
const CHECKPOINTS = 6;
// What arrives from the network is painted this many milliseconds at a time.
const SLICE_MS = 8;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** @type {Map<string, number>} */
const packedColours = new Map();

/**
 * ``#rrggbb`` as the 32-bit word of an opaque ImageData pixel.
 * @param {string} hex
 */
function pack(hex) {
  let value = packedColours.get(hex);
  if (value === undefined) {
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    value = LITTLE_ENDIAN
      ? ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0
      : ((r << 24) | (g << 16) | (b << 8) | 255) >>> 0;
    packedColours.set(hex, value);
  }
  return value;
}

const BACKGROUND = pack(PALETTE[0]);

/**
 * @param {unknown} value
 * @param {number} size
 * @returns {value is number}
 */
function isIndex(value, size) {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value < size;
}

/**
 * A palette index or a "#rrggbb" colour (lowercase hex), as the protocol has them.
 * @param {unknown} c
 * @returns {c is Colour}
 */
export function isColour(c) {
  return isIndex(c, PALETTE.length) || (typeof c === "string" && HEX.test(c));
}

/**
 * The "#rrggbb" of a protocol colour.
 * @param {Colour} c
 * @returns {string}
 */
export function colourHex(c) {
  return typeof c === "string" ? c : PALETTE[c];
}

/**
 * @param {unknown} p
 * @returns {p is number[]}
 */
function isPoints(p) {
  if (!Array.isArray(p) || p.length === 0 || p.length % 2 !== 0) return false;
  for (let i = 0; i < p.length; i += 1) {
    if (!isIndex(p[i], i % 2 === 0 ? BOARD_WIDTH : BOARD_HEIGHT)) return false;
  }
  return true;
}

/**
 * Does ``op`` follow the protocol? Operations from the network are checked before use.
 * @param {unknown} value
 * @returns {value is Op}
 */
export function isOp(value) {
  if (value === null || typeof value !== "object") return false;
  const op = /** @type {Record<string, unknown>} */ (value);
  switch (op.op) {
    case "line":
      return isColour(op.c) && isIndex(op.w, WIDTHS.length) && isPoints(op.p);
    case "more":
      return isPoints(op.p);
    case "fill":
      return isColour(op.c) && isIndex(op.x, BOARD_WIDTH) && isIndex(op.y, BOARD_HEIGHT);
    case "undo":
    case "clear":
      return true;
    default:
      return false;
  }
}

export class Board {
  /** @param {HTMLCanvasElement} canvas 800 x 600, where ``flush`` puts the pixels. */
  constructor(canvas) {
    this.canvas = canvas;
    const context = canvas.getContext("2d");
    if (!context) throw new Error("no 2d context for the board's canvas");
    this.context = context;
    this.image = this.context.createImageData(BOARD_WIDTH, BOARD_HEIGHT);
    // The pixels: the image's own bytes, one opaque colour a word.
    this.pixels = new Uint32Array(this.image.data.buffer);
    this.pixels.fill(BACKGROUND);
    /** @type {Shape[]} each stroke (its points so far) or fill that still shows, in order */
    this.shapes = [];
    // How many of `shapes` the pixels show (-1: more than there are, after undos).
    this.painted = 0;
    /** @type {{count: number, pixels: Uint32Array, work: number}[]} the pixels of the first
     * ``count`` shapes */
    this.checkpoints = [];
    /** @type {Uint32Array[]} buffers of checkpoints dropped, for the next ones */
    this.spare = [];
    this.work = 0; // pixels written since the last checkpoint (or the empty board)
    this.repaints = 0; // how many times the pixels were rebuilt (tests read it)
    /** @type {[number, number, number, number] | null} what flush must repaint */
    this.dirty = null;
    this.markDirty(0, 0, BOARD_WIDTH - 1, BOARD_HEIGHT - 1);
    this.flush();
  }

  /** Do the pixels show the drawing as it stands? (Not after undos, until ``settle``.) */
  get settled() {
    return this.painted === this.shapes.length;
  }

  /**
   * Apply one operation; false if it is malformed (it is then ignored).
   * @param {unknown} op
   */
  apply(op) {
    if (!isOp(op)) return false;
    switch (op.op) {
      case "line": {
        this.settle();
        this.beforeShape(this.shapes.length);
        /** @type {Shape & {op: "line"}} */
        const shape = { op: "line", c: op.c, w: op.w, p: [] };
        this.shapes.push(shape);
        this.extend(shape, op.p);
        this.painted = this.shapes.length;
        break;
      }
      case "more": {
        // As the server compacts a drawing: points continue the last shape if it is a stroke.
        const last = this.shapes[this.shapes.length - 1];
        if (last && last.op === "line") {
          this.settle();
          this.forgetCheckpoints(this.shapes.length - 1); // they hold this shape unfinished
          this.extend(last, op.p);
        }
        break;
      }
      case "fill": {
        this.settle();
        this.beforeShape(this.shapes.length);
        /** @type {Shape & {op: "fill"}} */
        const shape = { op: "fill", c: op.c, x: op.x, y: op.y };
        this.shapes.push(shape);
        this.paint(shape);
        this.painted = this.shapes.length;
        break;
      }
      case "undo":
        if (this.shapes.length > 0) {
          // Repainted when the pixels are needed (``settle``): undos in a row cost one.
          this.shapes.pop();
          this.forgetCheckpoints(this.shapes.length);
          if (this.painted > this.shapes.length) this.painted = -1;
        }
        break;
      case "clear":
        this.shapes = [];
        this.forgetCheckpoints(0);
        this.painted = 0;
        this.work = 0;
        this.pixels.fill(BACKGROUND);
        this.markDirty(0, 0, BOARD_WIDTH - 1, BOARD_HEIGHT - 1);
        break;
      default:
        break;
    }
    return true;
  }

  /**
   * Replace the drawing with ``ops`` (a snapshot), or empty it.
   * @param {unknown[]} [ops]
   */
  reset(ops = []) {
    this.apply({ op: "clear" });
    for (const op of ops) this.apply(op);
  }

  isBlank() {
    return this.shapes.length === 0;
  }

  // -- undo: checkpoints ----------------------------------------------------------------------

  /**
   * Shape ``count`` is about to be painted: the ones before it are final; keep their pixels
   * when enough painting has been done since the last checkpoint.
   * @param {number} count
   */
  beforeShape(count) {
    const last = this.checkpoints.at(-1);
    const since = count - (last ? last.count : 0);
    if (count === 0 || (this.work < CHECKPOINT_WORK && since < CHECKPOINT_SHAPES)) return;
    const pixels = this.spare.pop() || new Uint32Array(SIZE);
    pixels.set(this.pixels);
    this.checkpoints.push({ count, pixels, work: this.work });
    this.work = 0;
    if (this.checkpoints.length > CHECKPOINTS) {
      // Drop the one whose two sides together cost least to repaint: the checkpoints stay
      // spread over the drawing, closer together near its end.
      const kept = this.checkpoints;
      let drop = 0;
      for (let i = 1; i < kept.length - 1; i += 1) {
        if (kept[i].work + kept[i + 1].work < kept[drop].work + kept[drop + 1].work) drop = i;
      }
      kept[drop + 1].work += kept[drop].work;
      this.spare.push(kept.splice(drop, 1)[0].pixels);
    }
  }

  /**
   * Checkpoints that hold more than the first ``count`` shapes are wrong from now on.
   * @param {number} count
   */
  forgetCheckpoints(count) {
    let last = this.checkpoints.at(-1);
    while (last && last.count > count) {
      this.spare.push(last.pixels);
      this.checkpoints.pop();
      last = this.checkpoints.at(-1);
    }
    this.spare.length = Math.min(this.spare.length, 1);
  }

  /**
   * After undos: paint the shapes left, from the nearest checkpoint below them, until
   * ``deadline`` (performance.now()); true once the pixels show the drawing. What is not done
   * goes on at the next call, so a long repaint can be spread over several tasks.
   * @param {number} [deadline]
   */
  settle(deadline = Infinity) {
    if (this.painted === this.shapes.length) return true;
    if (this.painted < 0) {
      const from = this.checkpoints.at(-1);
      if (from) this.pixels.set(from.pixels);
      else this.pixels.fill(BACKGROUND);
      this.painted = from ? from.count : 0;
      this.work = 0;
      this.repaints += 1;
    }
    while (this.painted < this.shapes.length) {
      // The same path as when it was drawn, checkpoints included.
      this.beforeShape(this.painted);
      const shape = this.shapes[this.painted];
      if (shape.op === "line") this.extend({ ...shape, p: [] }, shape.p);
      else this.paint(shape);
      this.painted += 1;
      if (this.painted < this.shapes.length && performance.now() >= deadline) return false;
    }
    this.markDirty(0, 0, BOARD_WIDTH - 1, BOARD_HEIGHT - 1);
    return true;
  }

  // -- painting -------------------------------------------------------------------------------

  /**
   * @param {Shape & {op: "line"}} shape
   * @param {number[]} points
   */
  extend(shape, points) {
    const radius = WIDTHS[shape.w] / 2;
    const colour = pack(colourHex(shape.c));
    let i = 0;
    if (shape.p.length === 0) {
      this.segment(points[0], points[1], points[0], points[1], radius, colour);
      shape.p.push(points[0], points[1]);
      i = 2;
    }
    for (; i < points.length; i += 2) {
      const ax = shape.p[shape.p.length - 2];
      const ay = shape.p[shape.p.length - 1];
      this.segment(ax, ay, points[i], points[i + 1], radius, colour);
      shape.p.push(points[i], points[i + 1]);
    }
  }

  /**
   * Every pixel whose centre is within ``radius`` of the segment takes ``colour``.
   * @param {number} ax
   * @param {number} ay
   * @param {number} bx
   * @param {number} by
   * @param {number} radius
   * @param {number} colour
   */
  segment(ax, ay, bx, by, radius, colour) {
    const dx = bx - ax;
    const dy = by - ay;
    const pieces = Math.max(1, Math.ceil(Math.max(Math.abs(dx), Math.abs(dy)) / PIECE));
    for (let k = 0; k < pieces; k += 1) {
      this.capsule(
        ax + (dx * k) / pieces,
        ay + (dy * k) / pieces,
        ax + (dx * (k + 1)) / pieces,
        ay + (dy * (k + 1)) / pieces,
        radius,
        colour,
      );
    }
  }

  /**
   * @param {number} x0
   * @param {number} y0
   * @param {number} x1
   * @param {number} y1
   * @param {number} radius
   * @param {number} colour
   */
  capsule(x0, y0, x1, y1, radius, colour) {
    const left = Math.max(0, Math.floor(Math.min(x0, x1) - radius));
    const right = Math.min(BOARD_WIDTH - 1, Math.ceil(Math.max(x0, x1) + radius));
    const top = Math.max(0, Math.floor(Math.min(y0, y1) - radius));
    const bottom = Math.min(BOARD_HEIGHT - 1, Math.ceil(Math.max(y0, y1) + radius));
    if (left > right || top > bottom) return;
    const vx = x1 - x0;
    const vy = y1 - y0;
    const length2 = vx * vx + vy * vy;
    const r2 = radius * radius;
    const pixels = this.pixels;
    for (let y = top; y <= bottom; y += 1) {
      const wy = y - y0;
      const row = y * BOARD_WIDTH;
      for (let x = left; x <= right; x += 1) {
        const wx = x - x0;
        let t = length2 > 0 ? (wx * vx + wy * vy) / length2 : 0;
        if (t < 0) t = 0;
        else if (t > 1) t = 1;
        const ex = wx - t * vx;
        const ey = wy - t * vy;
        if (ex * ex + ey * ey <= r2) pixels[row + x] = colour;
      }
    }
    this.work += (right - left + 1) * (bottom - top + 1);
    this.markDirty(left, top, right, bottom);
  }

  /** @param {Shape & {op: "fill"}} fill */
  paint(fill) {
    this.fill(fill.x, fill.y, pack(colourHex(fill.c)));
  }

  /** Flood fill (scanlines): the 4-connected area of the seed's colour takes ``colour``.
   * Each run of pixels is filled once and the rows beside it read once: the work is a small
   * multiple of the area, at most the board.
   * @param {number} x
   * @param {number} y
   * @param {number} colour
   */
  fill(x, y, colour) {
    const pixels = this.pixels;
    const target = pixels[y * BOARD_WIDTH + x];
    if (target === colour) return;
    let [left, top, right, bottom] = [x, y, x, y];
    let filled = 0;
    const stack = [x, y];
    while (stack.length > 0) {
      const sy = /** @type {number} */ (stack.pop());
      const sx = /** @type {number} */ (stack.pop());
      const row = sy * BOARD_WIDTH;
      if (pixels[row + sx] !== target) continue;
      let x0 = sx;
      while (x0 > 0 && pixels[row + x0 - 1] === target) x0 -= 1;
      let x1 = sx;
      while (x1 < BOARD_WIDTH - 1 && pixels[row + x1 + 1] === target) x1 += 1;
      pixels.fill(colour, row + x0, row + x1 + 1);
      filled += x1 - x0 + 1;
      if (x0 < left) left = x0;
      if (x1 > right) right = x1;
      if (sy < top) top = sy;
      if (sy > bottom) bottom = sy;
      if (sy > 0) this.seeds(stack, pixels, target, x0, x1, sy - 1);
      if (sy < BOARD_HEIGHT - 1) this.seeds(stack, pixels, target, x0, x1, sy + 1);
    }
    this.work += filled;
    this.markDirty(left, top, right, bottom);
  }

  /**
   * Push one seed for each run of ``target`` in row ``y`` between ``x0`` and ``x1``.
   * @param {number[]} stack
   * @param {Uint32Array} pixels
   * @param {number} target
   * @param {number} x0
   * @param {number} x1
   * @param {number} y
   */
  seeds(stack, pixels, target, x0, x1, y) {
    const row = y * BOARD_WIDTH;
    let inside = false;
    for (let x = x0; x <= x1; x += 1) {
      const same = pixels[row + x] === target;
      if (same && !inside) stack.push(x, y);
      inside = same;
    }
  }

  // -- the canvas -----------------------------------------------------------------------------

  /**
   * @param {number} x0
   * @param {number} y0
   * @param {number} x1
   * @param {number} y1
   */
  markDirty(x0, y0, x1, y1) {
    const d = this.dirty;
    this.dirty = d
      ? [Math.min(d[0], x0), Math.min(d[1], y0), Math.max(d[2], x1), Math.max(d[3], y1)]
      : [x0, y0, x1, y1];
  }

  /** Show the drawing as it stands: what changed since the last time, repainted whole if
   * needs be. */
  flush() {
    this.settle();
    this.show();
  }

  /** Put what changed on the canvas, unless a repaint is half done (the canvas then keeps
   * the last finished picture). */
  show() {
    if (!this.dirty || !this.settled) return;
    const [x0, y0, x1, y1] = this.dirty;
    this.dirty = null;
    this.context.putImageData(this.image, 0, 0, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
  }
}

/**
 * Operations painted on a board a slice of time at a time, in order, repaints after undos
 * included: a flood of relayed batches (or a large snapshot) never holds the page for long.
 * ``apply`` paints at once when nothing waits (the drawer's own strokes show under the pen),
 * else after what waits; an undo always waits its turn (it may repaint much).
 */
export class Painter {
  /** @param {Board} board */
  constructor(board) {
    this.board = board;
    /** @type {unknown[]} */
    this.queue = [];
    this.next = 0;
    this.scheduled = false;
    this.longest = 0; // the longest slice, in ms (tests read it)
    const channel = new MessageChannel(); // a task soon, without setTimeout's clamping
    channel.port1.onmessage = () => this.run();
    this.wake = () => channel.port2.postMessage(null);
  }

  get pending() {
    return this.queue.length - this.next;
  }

  /** Nothing waits and the board shows the drawing. */
  get idle() {
    return this.pending === 0 && this.board.settled;
  }

  /**
   * Paint ``ops`` after what waits.
   * @param {unknown[]} ops
   */
  push(ops) {
    for (const op of ops) this.queue.push(op);
    this.schedule();
  }

  /**
   * Paint ``op`` now if nothing waits (and show it), else in its turn.
   * @param {Op} op
   */
  apply(op) {
    if (!this.idle || op.op === "undo") {
      this.push([op]);
      return;
    }
    this.board.apply(op);
    this.board.flush();
  }

  /** Forget what waits (the drawing is replaced). */
  clear() {
    this.queue = [];
    this.next = 0;
  }

  schedule() {
    if (this.scheduled || this.idle) return;
    this.scheduled = true;
    this.wake();
  }

  run() {
    this.scheduled = false;
    const started = performance.now();
    const deadline = started + SLICE_MS;
    const board = this.board;
    while (board.settle(deadline) && this.next < this.queue.length) {
      board.apply(this.queue[this.next]);
      this.next += 1;
      if (performance.now() >= deadline) break;
    }
    board.show();
    this.longest = Math.max(this.longest, performance.now() - started);
    if (this.next >= this.queue.length) this.clear();
    else if (this.next > 4096) {
      this.queue = this.queue.slice(this.next);
      this.next = 0;
    }
    this.schedule();
  }
}

/** A new 800 x 600 canvas (not in the document) for a board drawn off screen. */
export function boardCanvas() {
  const canvas = document.createElement("canvas");
  canvas.width = BOARD_WIDTH;
  canvas.height = BOARD_HEIGHT;
  return canvas;
}
