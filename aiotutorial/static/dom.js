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
