// The drawer's side of the board: the tools, mouse, pen and touch input (Pointer Events); the
// strokes go to everyone else through a StrokeOutbox (stroke-outbox.js).
//
// What the drawer does is painted on their board at once; the server relays the same
// operations to everyone else.

import { find } from "../lib/dom.js";
import {
  BOARD_HEIGHT,
  BOARD_WIDTH,
  COLOUR_BLIND_PALETTE,
  COLOUR_NAMES,
  PALETTE,
  WIDTHS,
  colourHex,
} from "./board.js";
import { StrokeOutbox } from "./stroke-outbox.js";

/** @typedef {import("./board.js").Colour} Colour */
/** @typedef {import("./board.js").Op} Op */
// The sizes from the finest to the largest (the protocol's indexes are in the order they
// were added).
const WIDTH_ORDER = WIDTHS.map((size, index) => [size, index])
  .sort((a, b) => a[0] - b[0])
  .map(([, index]) => index);
const PALETTE_KEY = "aiotutorial.game.palette";

/**
 * @param {string} className
 * @param {string} label
 */
function button(className, label) {
  const node = document.createElement("button");
  node.type = "button";
  node.className = className;
  node.setAttribute("aria-label", label);
  node.title = label;
  return node;
}

function readPalette() {
  try {
    return localStorage.getItem(PALETTE_KEY) === "colour-blind" ? "colour-blind" : "classic";
  } catch {
    return "classic";
  }
}

export class Pen {
  /**
   * @param {object} options
   * @param {HTMLCanvasElement} options.canvas the board's canvas
   * @param {HTMLElement} options.tools the toolbar (see channel.jinja2)
   * @param {import("./board.js").Board} options.board
   * @param {import("./board.js").Painter} options.painter paints on the board, in order
   * @param {(ops: Op[]) => boolean} options.send
   */
  constructor({ canvas, tools, board, painter, send }) {
    this.canvas = canvas;
    this.tools = tools;
    this.board = board;
    this.painter = painter;
    this.outbox = new StrokeOutbox(send);
    this.enabled = false;
    /** @type {Colour} a palette index or a "#rrggbb" */
    this.colour = 1;
    this.width = 1;
    this.tool = "pen";
    this.palette = readPalette();
    /** @type {number | null} the pointer drawing the current stroke */
    this.pointer = null;
    /** @type {[number, number] | null} its last point on the board */
    this.last = null;
    /** @type {HTMLButtonElement[]} */
    this.widthButtons = [];
    /** @type {HTMLButtonElement[]} */
    this.swatches = [];
    /** @type {Colour[]} */
    this.swatchColours = [];
    this.picker = document.createElement("input");
    this.sent = false; // has this page drawn in this turn (its own strokes come back relayed)
    this.buildTools();
    this.bindPointer();
    this.bindKeys();
    this.render();
  }

  // -- the toolbar ----------------------------------------------------------------------------

  buildTools() {
    this.buildPalette();

    const widths = find(this.tools, "[data-game=widths]");
    this.widthButtons = WIDTH_ORDER.map((index) => {
      const size = WIDTHS[index];
      const choice = button("tool width", `Brush of ${size} px`);
      choice.dataset.width = String(index);
      const dot = document.createElement("span");
      dot.className = "dot";
      this.sizeDot(dot, index);
      choice.append(dot);
      choice.addEventListener("click", () => {
        this.width = index;
        if (this.tool === "fill") this.tool = "pen";
        this.closePopups();
        this.render();
      });
      return choice;
    });
    widths.replaceChildren(...this.widthButtons);

    for (const toggle of this.tools.querySelectorAll("[data-popup]")) {
      toggle.addEventListener("click", () => {
        const popup = find(this.tools, `#${toggle.getAttribute("aria-controls")}`);
        const open = !popup.hasAttribute("data-open");
        this.closePopups();
        popup.toggleAttribute("data-open", open);
        toggle.setAttribute("aria-expanded", String(open));
      });
    }
    for (const choice of this.tools.querySelectorAll("[data-tool]")) {
      if (!(choice instanceof HTMLElement)) continue;
      choice.addEventListener("click", () => {
        this.tool = choice.dataset.tool || "pen";
        this.closePopups();
        this.render();
      });
    }
    find(this.tools, "[data-action=undo]").addEventListener("click", () => this.undo());
    find(this.tools, "[data-action=clear]").addEventListener("click", () => this.clear());
    this.tools.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.closePopups();
    });
  }

  /** A dot as large as the brush (drawn at the board's scale, within the button). */
  /**
   * @param {HTMLElement} dot
   * @param {number} index a width's
   */
  sizeDot(dot, index) {
    const size = `${Math.max(2, Math.min(28, Math.round(WIDTHS[index] * 0.6)))}px`;
    dot.style.width = size;
    dot.style.height = size;
  }

  /** The swatches of the palette chosen (the classic one, or Okabe-Ito's for colour-blind
   * eyes, sent as "#rrggbb"), a colour picker for any other, and the switch between them. */
  buildPalette() {
    const palette = find(this.tools, "[data-game=palette]");
    /** @type {[Colour, string][]} */
    const colours =
      this.palette === "colour-blind"
        ? COLOUR_BLIND_PALETTE
        : PALETTE.map((hex, index) => [index, COLOUR_NAMES[index]]);
    this.swatchColours = colours.map(([colour]) => colour);
    this.swatches = colours.map(([colour, name]) => {
      const swatch = button("tool swatch", name);
      swatch.style.backgroundColor = colourHex(colour);
      swatch.dataset.colour = String(colour);
      swatch.addEventListener("click", () => this.pick(colour));
      return swatch;
    });
    const extra = document.createElement("div");
    extra.className = "palette-extra";
    const picker = document.createElement("input");
    picker.type = "color";
    picker.className = "tool colour-picker";
    picker.dataset.game = "colour-picker";
    picker.setAttribute("aria-label", "Any colour");
    picker.title = "Any colour";
    picker.value = colourHex(this.colour);
    picker.addEventListener("input", () => this.pick(picker.value.toLowerCase(), false));
    picker.addEventListener("change", () => this.pick(picker.value.toLowerCase()));
    this.picker = picker;
    const blind = this.palette === "colour-blind";
    const toggle = button("tool palette-switch", "Colour-blind friendly colours");
    toggle.dataset.game = "palette-switch";
    toggle.setAttribute("aria-pressed", String(blind));
    toggle.textContent = "◐";
    toggle.addEventListener("click", () => {
      this.palette = blind ? "classic" : "colour-blind";
      try {
        localStorage.setItem(PALETTE_KEY, this.palette);
      } catch {
        // Not kept: the choice lasts as long as the page.
      }
      this.buildPalette();
      this.render();
      find(this.tools, "[data-game=palette-switch]").focus();
    });
    extra.append(picker, toggle);
    palette.replaceChildren(...this.swatches, extra);
  }

  /**
   * @param {Colour} colour
   * @param {boolean} [close] the colour popup closes
   */
  pick(colour, close = true) {
    this.colour = colour;
    if (this.tool === "eraser") this.tool = "pen";
    if (close) this.closePopups();
    this.render();
  }

  closePopups() {
    for (const toggle of this.tools.querySelectorAll("[data-popup]")) {
      toggle.setAttribute("aria-expanded", "false");
      find(this.tools, `#${toggle.getAttribute("aria-controls")}`).removeAttribute("data-open");
    }
  }

  /** @param {Colour} colour */
  colourName(colour) {
    if (typeof colour === "number") return COLOUR_NAMES[colour];
    const named = COLOUR_BLIND_PALETTE.find(([hex]) => hex === colour);
    return named ? named[1] : colour;
  }

  render() {
    const erasing = this.tool === "eraser";
    for (const [i, swatch] of this.swatches.entries()) {
      const pressed = this.swatchColours[i] === this.colour && !erasing;
      swatch.setAttribute("aria-pressed", String(pressed));
    }
    for (const choice of this.widthButtons) {
      choice.setAttribute("aria-pressed", String(Number(choice.dataset.width) === this.width));
    }
    for (const choice of this.tools.querySelectorAll("[data-tool]")) {
      if (!(choice instanceof HTMLElement)) continue;
      choice.setAttribute("aria-pressed", String(choice.dataset.tool === this.tool));
    }
    const hex = colourHex(this.colour);
    if (this.picker.value !== hex) this.picker.value = hex;
    const colourToggle = find(this.tools, "[data-game=colour-toggle]");
    find(colourToggle, ".swatch-now").style.backgroundColor = hex;
    colourToggle.setAttribute("aria-label", `Colour: ${this.colourName(this.colour)}`);
    const widthToggle = find(this.tools, "[data-game=width-toggle]");
    this.sizeDot(find(widthToggle, ".dot"), this.width);
    widthToggle.setAttribute("aria-label", `Brush: ${WIDTHS[this.width]} px`);
    this.canvas.dataset.tool = this.enabled ? this.tool : "none";
  }

  /** Only the drawer, while drawing, has the tools and draws. */
  /** @param {boolean} enabled */
  setEnabled(enabled) {
    if (this.enabled === enabled) return;
    this.enabled = enabled;
    this.tools.hidden = !enabled;
    if (!enabled) {
      // The turn's drawing is over: what is not sent yet would only be refused.
      this.endStroke();
      this.outbox.clear();
      this.closePopups();
    }
    this.render();
  }

  /** A new turn: nothing of the last one is still to be sent. */
  newTurn() {
    this.endStroke();
    this.outbox.clear();
    this.sent = false;
  }

  // -- drawing --------------------------------------------------------------------------------

  /**
   * Paint ``op`` here at once and queue it for everyone else.
   * @param {Op} op
   */
  draw(op) {
    this.painter.apply(op);
    this.outbox.add(op);
    this.sent = true;
  }

  undo() {
    if (!this.enabled) return;
    this.endStroke();
    this.draw({ op: "undo" });
  }

  clear() {
    if (!this.enabled || this.board.isBlank()) return;
    this.endStroke();
    this.draw({ op: "clear" });
  }

  /**
   * @param {PointerEvent} event
   * @returns {[number, number]}
   */
  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = Math.floor(((event.clientX - rect.left) / rect.width) * BOARD_WIDTH);
    const y = Math.floor(((event.clientY - rect.top) / rect.height) * BOARD_HEIGHT);
    return [Math.min(BOARD_WIDTH - 1, Math.max(0, x)), Math.min(BOARD_HEIGHT - 1, Math.max(0, y))];
  }

  endStroke() {
    if (this.pointer !== null && this.canvas.hasPointerCapture(this.pointer)) {
      this.canvas.releasePointerCapture(this.pointer);
    }
    this.pointer = null;
    this.last = null;
    this.outbox.endStroke();
  }

  bindPointer() {
    const canvas = this.canvas;
    canvas.addEventListener("pointerdown", (event) => {
      if (!this.enabled || this.pointer !== null || !event.isPrimary) return;
      if (event.pointerType === "mouse" && event.button !== 0) return;
      event.preventDefault();
      this.closePopups();
      const [x, y] = this.point(event);
      if (this.tool === "fill") {
        this.draw({ op: "fill", c: this.colour, x, y });
        return;
      }
      canvas.setPointerCapture(event.pointerId);
      this.pointer = event.pointerId;
      this.last = [x, y];
      const colour = this.tool === "eraser" ? 0 : this.colour;
      this.draw({ op: "line", c: colour, w: this.width, p: [x, y] });
    });
    canvas.addEventListener("pointermove", (event) => {
      if (event.pointerId !== this.pointer) return;
      const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
      const points = [];
      for (const each of events.length > 0 ? events : [event]) {
        const [x, y] = this.point(each);
        if (this.last && x === this.last[0] && y === this.last[1]) continue;
        points.push(x, y);
        this.last = [x, y];
      }
      if (points.length > 0) this.draw({ op: "more", p: points });
    });
    for (const type of /** @type {const} */ (["pointerup", "pointercancel", "lostpointercapture"])) {
      canvas.addEventListener(type, (event) => {
        if (event.pointerId === this.pointer) this.endStroke();
      });
    }
  }

  bindKeys() {
    document.addEventListener("keydown", (event) => {
      if (!this.enabled || !(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== "z") {
        return;
      }
      const target = event.target;
      if (target instanceof HTMLElement && target.closest("input, textarea, [contenteditable]")) {
        return;
      }
      event.preventDefault();
      this.undo();
    });
  }
}
