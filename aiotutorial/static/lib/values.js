// Checking what comes from the network (frames, JSON answers) before it is used: these narrow
// the checker's types as they check the values.

/**
 * A whole number (a safe integer)?
 * @param {unknown} value
 * @returns {value is number}
 */
export function isWhole(value) {
  return typeof value === "number" && Number.isSafeInteger(value);
}

/**
 * ``value`` if it is a whole number, else ``fallback``.
 * @template F
 * @param {unknown} value
 * @param {F} fallback
 * @returns {number | F}
 */
export function wholeOr(value, fallback) {
  return isWhole(value) ? value : fallback;
}

/**
 * A finite number?
 * @param {unknown} value
 * @returns {value is number}
 */
export function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/**
 * The strings of ``value`` (an array, else none).
 * @param {unknown} value
 * @returns {string[]}
 */
export function strings(value) {
  return Array.isArray(value) ? value.filter((item) => typeof item === "string") : [];
}
