// Small helpers for building the page's elements. Text goes in with textContent only: what
// users write is never parsed as HTML.

/** A new ``tag`` element with a class and text (both optional). */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** "1 point", "3 points". */
export function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

const SVG = "http://www.w3.org/2000/svg";

/** An icon: an SVG of one path on a 24 x 24 grid, hidden from screen readers (the button
 * that holds it has the label). */
export function icon(d, className) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  if (className) svg.setAttribute("class", className);
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  svg.append(path);
  return svg;
}
