// Small helpers for building the page's elements and finding the ones the templates have. Text
// goes in with textContent only: what users write is never parsed as HTML.

/**
 * A new ``tag`` element with a class and text (both optional).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * "1 point", "3 points".
 * @param {number} count
 * @param {string} one
 * @param {string} many
 */
export function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

const SVG = "http://www.w3.org/2000/svg";

/**
 * An icon: an SVG of one path on a 24 x 24 grid, hidden from screen readers (the button that
 * holds it has the label).
 * @param {string} d the path
 * @param {string} [className]
 */
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

/**
 * The element of ``root`` that ``selector`` finds, of class ``type``: one the template always
 * has, so its absence is a bug said at once (not a null read later).
 * @template {Element} T
 * @param {ParentNode} root
 * @param {string} selector
 * @param {new () => T} type
 * @returns {T}
 */
export function findAs(root, selector, type) {
  const found = root.querySelector(selector);
  if (!(found instanceof type)) throw new Error(`the page has no ${type.name} ${selector}`);
  return found;
}

/**
 * The HTML element of ``root`` that ``selector`` finds (there must be one).
 * @param {ParentNode} root
 * @param {string} selector
 * @returns {HTMLElement}
 */
export function find(root, selector) {
  return findAs(root, selector, HTMLElement);
}

/**
 * The HTML element of ``root`` that ``selector`` finds, or null (a part of the page only some
 * readers have, such as the composer of a signed-in one).
 * @param {ParentNode} root
 * @param {string} selector
 * @returns {HTMLElement | null}
 */
export function maybe(root, selector) {
  const found = root.querySelector(selector);
  return found instanceof HTMLElement ? found : null;
}

/**
 * The element an event happened on, if it is one (not a text node, a window...).
 * @param {Event} event
 * @returns {Element | null}
 */
export function targetOf(event) {
  return event.target instanceof Element ? event.target : null;
}
