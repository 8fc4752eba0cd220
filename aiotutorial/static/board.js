// The drawing board of the game: an 800 x 600 grid of palette indexes that the drawing
// operations of docs/protocol.md ("Drawing") paint, and its rendering on a canvas.
//
// Every client must end up with the same pixels from the same operations (a flood fill reads
// the pixels, so a one-pixel difference in a stroke's edge could fill another region). So
// strokes are rasterized here, without anti-aliasing, with arithmetic only (+ - * /, exact in
// IEEE doubles on every engine), and fills compare palette indexes, not blended colours. The
// canvas only ever receives finished pixels (putImageData), however the browser scales it.

export const BOARD_WIDTH = 800;
export const BOARD_HEIGHT = 600;
// The server's aiotutorial/game/drawing.py: index 0 is the background, the eraser's colour.
export const PALETTE = [
  "#ffffff",
  "#000000",
  "#7f7f7f",
  "#c1c1c1",
  "#ef130b",
  "#ff7100",
  "#ffe400",
  "#00cc00",
  "#00b2ff",
  "#231fd3",
  "#a300ba",
  "#d37caa",
  "#a0522d",
  "#592f2a",
  "#ecbcb4",
  "#005510",
];
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
export const WIDTHS = [3, 8, 16, 32];
export const MAX_OPS = 32;
export const MAX_POINTS = 256;

const SIZE = BOARD_WIDTH * BOARD_HEIGHT;
// Long segments are painted in pieces this long (in board pixels, along the longer axis), so
// that each piece's bounding box stays small.
const PIECE = 8;
const RGB = PALETTE.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));

function isIndex(value, size) {
  return Number.isInteger(value) && value >= 0 && value < size;
}

function isPoints(p) {
  if (!Array.isArray(p) || p.length === 0 || p.length % 2 !== 0) return false;
  for (let i = 0; i < p.length; i += 1) {
    if (!isIndex(p[i], i % 2 === 0 ? BOARD_WIDTH : BOARD_HEIGHT)) return false;
  }
  return true;
}

/** Does ``op`` follow the protocol? Operations from the network are checked before use. */
export function isOp(op) {
  if (op === null || typeof op !== "object") return false;
  switch (op.op) {
    case "line":
      return isIndex(op.c, PALETTE.length) && isIndex(op.w, WIDTHS.length) && isPoints(op.p);
    case "more":
      return isPoints(op.p);
    case "fill":
      return (
        isIndex(op.c, PALETTE.length) && isIndex(op.x, BOARD_WIDTH) && isIndex(op.y, BOARD_HEIGHT)
      );
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
    this.context = canvas.getContext("2d");
    this.image = this.context.createImageData(BOARD_WIDTH, BOARD_HEIGHT);
    this.pixels = new Uint8Array(SIZE); // palette indexes; 0, the background, everywhere
    this.shapes = []; // each stroke (its points so far) or fill that still shows, in order
    this.dirty = null; // [x0, y0, x1, y1]: what flush must repaint
    this.markDirty(0, 0, BOARD_WIDTH - 1, BOARD_HEIGHT - 1);
    this.flush();
  }

  /** Apply one operation; false if it is malformed (it is then ignored). */
  apply(op) {
    if (!isOp(op)) return false;
    switch (op.op) {
      case "line": {
        const shape = { op: "line", c: op.c, w: op.w, p: [] };
        this.shapes.push(shape);
        this.extend(shape, op.p);
        break;
      }
      case "more": {
        // As the server compacts a drawing: points continue the last shape if it is a stroke.
        const last = this.shapes[this.shapes.length - 1];
        if (last && last.op === "line") this.extend(last, op.p);
        break;
      }
      case "fill":
        this.shapes.push({ op: "fill", c: op.c, x: op.x, y: op.y });
        this.fill(op.x, op.y, op.c);
        break;
      case "undo":
        if (this.shapes.length > 0) {
          this.shapes.pop();
          this.repaint();
        }
        break;
      case "clear":
        this.shapes = [];
        this.repaint();
        break;
      default:
        break;
    }
    return true;
  }

  /** Replace the drawing with ``ops`` (a snapshot), or empty it. */
  reset(ops = []) {
    this.shapes = [];
    this.pixels.fill(0);
    this.markDirty(0, 0, BOARD_WIDTH - 1, BOARD_HEIGHT - 1);
    for (const op of ops) this.apply(op);
  }

  isBlank() {
    return this.shapes.length === 0;
  }

  /** Paint every shape again from an empty board (after an undo or a clear). */
  repaint() {
    const shapes = this.shapes;
    this.shapes = [];
    this.pixels.fill(0);
    this.markDirty(0, 0, BOARD_WIDTH - 1, BOARD_HEIGHT - 1);
    for (const shape of shapes) {
      if (shape.op === "line") {
        const copy = { op: "line", c: shape.c, w: shape.w, p: [] };
        this.shapes.push(copy);
        this.extend(copy, shape.p);
      } else {
        this.shapes.push(shape);
        this.fill(shape.x, shape.y, shape.c);
      }
    }
  }

  // -- painting -------------------------------------------------------------------------------

  extend(shape, points) {
    const radius = WIDTHS[shape.w] / 2;
    let i = 0;
    if (shape.p.length === 0) {
      this.segment(points[0], points[1], points[0], points[1], radius, shape.c);
      shape.p.push(points[0], points[1]);
      i = 2;
    }
    for (; i < points.length; i += 2) {
      const ax = shape.p[shape.p.length - 2];
      const ay = shape.p[shape.p.length - 1];
      this.segment(ax, ay, points[i], points[i + 1], radius, shape.c);
      shape.p.push(points[i], points[i + 1]);
    }
  }

  /** Every pixel whose centre is within ``radius`` of the segment takes ``colour``. */
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
    this.markDirty(left, top, right, bottom);
  }

  /** Flood fill: the 4-connected region of the seed's colour takes ``colour``. */
  fill(x, y, colour) {
    const pixels = this.pixels;
    const target = pixels[y * BOARD_WIDTH + x];
    if (target === colour) return;
    let [left, top, right, bottom] = [x, y, x, y];
    const stack = [x, y];
    while (stack.length > 0) {
      const sy = stack.pop();
      const sx = stack.pop();
      const row = sy * BOARD_WIDTH;
      if (pixels[row + sx] !== target) continue;
      let x0 = sx;
      while (x0 > 0 && pixels[row + x0 - 1] === target) x0 -= 1;
      let x1 = sx;
      while (x1 < BOARD_WIDTH - 1 && pixels[row + x1 + 1] === target) x1 += 1;
      pixels.fill(colour, row + x0, row + x1 + 1);
      left = Math.min(left, x0);
      right = Math.max(right, x1);
      top = Math.min(top, sy);
      bottom = Math.max(bottom, sy);
      for (const ny of [sy - 1, sy + 1]) {
        if (ny < 0 || ny >= BOARD_HEIGHT) continue;
        const next = ny * BOARD_WIDTH;
        let inside = false;
        for (let nx = x0; nx <= x1; nx += 1) {
          const same = pixels[next + nx] === target;
          if (same && !inside) stack.push(nx, ny);
          inside = same;
        }
      }
    }
    this.markDirty(left, top, right, bottom);
  }

  // -- the canvas -----------------------------------------------------------------------------

  markDirty(x0, y0, x1, y1) {
    const d = this.dirty;
    this.dirty = d
      ? [Math.min(d[0], x0), Math.min(d[1], y0), Math.max(d[2], x1), Math.max(d[3], y1)]
      : [x0, y0, x1, y1];
  }

  /** Put what changed since the last flush on the canvas. */
  flush() {
    if (!this.dirty) return;
    const [x0, y0, x1, y1] = this.dirty;
    this.dirty = null;
    const data = this.image.data;
    const pixels = this.pixels;
    for (let y = y0; y <= y1; y += 1) {
      let i = y * BOARD_WIDTH + x0;
      let o = i * 4;
      for (let x = x0; x <= x1; x += 1) {
        const rgb = RGB[pixels[i]];
        data[o] = rgb[0];
        data[o + 1] = rgb[1];
        data[o + 2] = rgb[2];
        data[o + 3] = 255;
        i += 1;
        o += 4;
      }
    }
    this.context.putImageData(this.image, 0, 0, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
  }
}

/** A new 800 x 600 canvas (not in the document) for a board drawn off screen. */
export function boardCanvas() {
  const canvas = document.createElement("canvas");
  canvas.width = BOARD_WIDTH;
  canvas.height = BOARD_HEIGHT;
  return canvas;
}
