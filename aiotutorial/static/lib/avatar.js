// A user's avatar: their initials on a colour of their own at once, replaced by their picture
// (GET /users/{name}/avatar, made square and small by the server) once it has loaded. Each
// user's picture is asked for once a page, whatever the number of avatars shown; a user
// without one (404) keeps the initials. DOM nodes only; the initials are the element's
// data-initials, drawn by CSS (site.css, .avatar::after), so that they are not text of the
// row they sit in (the name beside them already is).

/** @type {Map<string, Promise<string | null>>} username -> the picture's URL, or null */
const pictures = new Map();

/**
 * One or two letters for ``username``: the first letters of its first two words
 * ("ann_lee", "ann.lee", "AnnLee": "AL"), else its first letter ("ann": "A").
 * @param {string} username
 */
export function initials(username) {
  const words = username
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .split(/[\s._-]+/)
    .filter(Boolean);
  const letters = words.slice(0, 2).map((word) => [...word][0] || "");
  return (letters.join("") || "?").toUpperCase();
}

/**
 * The background of ``username``'s initials: a hue from a hash of the name (FNV-1a), dark
 * enough that white letters keep a contrast of about 4.5:1 on every hue.
 * @param {string} username
 */
export function avatarColour(username) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < username.length; i += 1) {
    hash ^= username.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `hsl(${hash % 360}, 55%, 30%)`;
}

/**
 * The URL of ``username``'s picture once it has loaded, or null when they have none (or it
 * did not load): asked once a page.
 * @param {string} username
 * @returns {Promise<string | null>}
 */
function pictureOf(username) {
  let found = pictures.get(username);
  if (!found) {
    found = new Promise((resolve) => {
      const url = `/users/${encodeURIComponent(username)}/avatar`;
      const image = new Image();
      image.addEventListener("load", () => resolve(image.naturalWidth > 0 ? url : null), { once: true });
      image.addEventListener("error", () => resolve(null), { once: true });
      image.src = url;
    });
    pictures.set(username, found);
  }
  return found;
}

/**
 * ``username``'s initials only (no picture asked for): the account page of a user without one.
 * @param {string} username
 * @param {string} [sizeClass] avatar-xs, avatar-sm, avatar-lg
 * @returns {HTMLSpanElement}
 */
export function initialsElement(username, sizeClass = "avatar-sm") {
  const node = document.createElement("span");
  node.className = `avatar ${sizeClass}`;
  node.dataset.initials = initials(username);
  node.style.backgroundColor = avatarColour(username);
  node.setAttribute("aria-hidden", "true");
  node.title = username;
  return node;
}

/**
 * ``username``'s avatar: their initials, upgraded to their picture once it has loaded.
 * @param {string} username
 * @param {string} [sizeClass] avatar-xs, avatar-sm, avatar-lg
 * @returns {HTMLSpanElement}
 */
export function avatarElement(username, sizeClass = "avatar-sm") {
  const node = initialsElement(username, sizeClass);
  void pictureOf(username).then((url) => {
    if (url === null) return;
    const image = document.createElement("img");
    image.alt = "";
    image.src = url; // loaded already: the page's image cache answers
    node.classList.add("has-picture");
    node.replaceChildren(image);
  });
  return node;
}
