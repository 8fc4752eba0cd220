// Reading the server's JSON answers: same origin, never from a cache (counts, pins and pages
// change all the time), with Accept saying JSON; and sending JSON with the page's CSRF token.

/** A refused answer: its HTTP status. */
export class HttpError extends Error {
  /**
   * @param {string} url
   * @param {number} status
   */
  constructor(url, status) {
    super(`GET ${url}: ${status}`);
    this.status = status;
  }
}

/**
 * The JSON body of ``GET url``; an ``HttpError`` for an answer that is not 2xx.
 * @param {string | URL} url
 * @returns {Promise<any>}
 */
export async function getJson(url) {
  const response = await fetch(url, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
    cache: "no-store",
  });
  if (!response.ok) throw new HttpError(String(url), response.status);
  return response.json();
}

/** The page's CSRF token (layout.jinja2's meta element). */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta instanceof HTMLMetaElement ? meta.content : "";
}

/**
 * Send ``body`` (JSON) with ``method`` and the page's CSRF token; the answer's JSON (or null
 * without a body). A refusal is an Error whose message is the server's ``detail``.
 * @param {string} method
 * @param {string} url
 * @param {object} [body]
 * @returns {Promise<any>}
 */
export async function sendJson(method, url, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json", "X-CSRF-Token": csrfToken() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.ok) {
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }
  let detail = `The server refused (${response.status}).`;
  try {
    const answer = await response.json();
    if (answer && typeof answer.detail === "string") detail = answer.detail;
  } catch {
    // keep the status
  }
  throw new Error(detail);
}
