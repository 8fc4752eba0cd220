// Reading the server's JSON answers: same origin, never from a cache (counts, pins and pages
// change all the time), with Accept saying JSON.

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
