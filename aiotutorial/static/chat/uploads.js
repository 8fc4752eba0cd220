// Images and files in the chat. ``Attachments``: the composer's attach button, paste and
// drag-and-drop of files; each file is uploaded at once (POST /channels/{name}/uploads, with a
// progress bar) and shown, pending, until the message that carries it is sent.
// ``renderUploads``: what a message carries, as its row shows it: an image's thumbnail, which
// opens the full image, or a file's name and size, a download link. DOM nodes, never HTML.

import { element } from "../lib/dom.js";
import { csrfToken } from "../lib/http.js";
import { PROTOCOL } from "../lib/protocol.js";

export const MAX_FILES = PROTOCOL.uploads.max_per_message;
export const MAX_SIZE = PROTOCOL.uploads.max_size;

/**
 * An upload, as the server describes it (docs/protocol.md).
 * @typedef {object} Upload
 * @property {number} id
 * @property {string} url
 * @property {string} name
 * @property {string} type
 * @property {number} size bytes
 * @property {number} [width] an image's
 * @property {number} [height]
 * @property {string} [thumb] an image's thumbnail
 */

/**
 * A file of the composer: uploading, uploaded, or refused.
 * @typedef {object} Pending
 * @property {HTMLLIElement} item
 * @property {Upload | null} upload
 * @property {XMLHttpRequest | null} request
 */

const units = ["bytes", "kB", "MB", "GB"];

/**
 * ``1536`` -> "1.5 kB".
 * @param {number} bytes
 */
export function formatSize(bytes) {
  let size = bytes;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${size} ${units[0]}` : `${size.toFixed(size < 10 ? 1 : 0)} ${units[unit]}`;
}

/**
 * Is ``value`` an upload as the server describes one?
 * @param {unknown} value
 * @returns {value is Upload}
 */
function isUpload(value) {
  if (value === null || typeof value !== "object") return false;
  const upload = /** @type {Record<string, unknown>} */ (value);
  return (
    Number.isSafeInteger(upload.id) &&
    typeof upload.url === "string" &&
    upload.url.startsWith("/channels/") &&
    typeof upload.name === "string" &&
    typeof upload.size === "number"
  );
}

/**
 * The files a message carries, as its row shows them.
 * @param {unknown[]} uploads
 */
export function renderUploads(uploads) {
  const list = element("div", "msg-uploads");
  for (const upload of uploads) {
    if (!isUpload(upload)) continue;
    if (upload.thumb && upload.thumb.startsWith("/channels/") && upload.width && upload.height) {
      const link = element("a", "msg-image");
      link.href = upload.url;
      link.target = "_blank";
      link.rel = "noopener";
      link.title = `${upload.name} (${upload.width}×${upload.height}, ${formatSize(upload.size)})`;
      const image = element("img");
      image.src = upload.thumb;
      image.alt = upload.name;
      image.loading = "lazy";
      // The thumbnail's size before it loads (at most 400 pixels a side): no jump.
      const scale = Math.min(1, 400 / Math.max(upload.width, upload.height));
      image.width = Math.max(1, Math.round(upload.width * scale));
      image.height = Math.max(1, Math.round(upload.height * scale));
      link.append(image);
      list.append(link);
    } else {
      const link = element("a", "msg-file");
      link.href = upload.url;
      link.download = upload.name;
      link.append(
        element("span", "msg-file-name", upload.name),
        element("span", "msg-file-size", formatSize(upload.size)),
      );
      list.append(link);
    }
  }
  return list;
}

/**
 * @typedef {object} AttachmentHooks
 * @property {(text: string) => void} onError say why a file was refused
 * @property {() => void} [onChange] the files pending changed
 */

export class Attachments {
  /**
   * @param {HTMLFormElement} form the composer
   * @param {string} channel
   * @param {AttachmentHooks} hooks
   */
  constructor(form, channel, { onError, onChange }) {
    this.form = form;
    this.channel = channel;
    this.onError = onError;
    this.onChange = onChange ?? (() => {});
    /** @type {Pending[]} */
    this.pending = [];
    this.list = element("ul", "attachments");
    this.list.dataset.role = "attachments";
    this.list.hidden = true;
    this.input = element("input");
    this.input.type = "file";
    this.input.multiple = true;
    this.input.hidden = true;
    this.input.dataset.role = "file-input";
    this.button = element("button", "attach-button", "Attach");
    this.button.type = "button";
    this.button.dataset.role = "attach";
    this.button.title = "Attach images or files (or paste them, or drop them here)";
    this.button.setAttribute("aria-label", "Attach files");
  }

  start() {
    this.form.prepend(this.list);
    this.form.append(this.input);
    (this.form.querySelector(".composer-row") ?? this.form).prepend(this.button);
    this.button.addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => {
      this.add([...(this.input.files ?? [])]);
      this.input.value = "";
    });
    this.form.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (files.length) {
        event.preventDefault();
        this.add(files);
      }
    });
    this.form.addEventListener("dragover", (event) => {
      if (event.dataTransfer?.types.includes("Files")) {
        event.preventDefault();
        this.form.classList.add("dropping");
      }
    });
    this.form.addEventListener("dragleave", () => this.form.classList.remove("dropping"));
    this.form.addEventListener("drop", (event) => {
      this.form.classList.remove("dropping");
      const files = [...(event.dataTransfer?.files ?? [])];
      if (files.length) {
        event.preventDefault();
        this.add(files);
      }
    });
  }

  /** Are files still on their way? */
  get busy() {
    return this.pending.some((entry) => entry.request !== null);
  }

  /** The ids of the files uploaded, in the order they were added. */
  ids() {
    return this.pending.flatMap((entry) => (entry.upload ? [entry.upload.id] : []));
  }

  /** The message went: the files go with it. */
  clear() {
    for (const entry of this.pending) entry.request?.abort();
    this.pending = [];
    this.list.replaceChildren();
    this.list.hidden = true;
    this.onChange();
  }

  /** @param {File[]} files */
  add(files) {
    for (const file of files) {
      if (this.pending.length >= MAX_FILES) {
        this.onError(`A message carries at most ${MAX_FILES} files.`);
        return;
      }
      if (file.size > MAX_SIZE) {
        this.onError(`${file.name} is too large: a file may have at most ${formatSize(MAX_SIZE)}.`);
        continue;
      }
      if (file.size === 0) {
        this.onError(`${file.name} is empty.`);
        continue;
      }
      this.upload(file);
    }
  }

  /** @param {File} file */
  upload(file) {
    const item = element("li", "attachment");
    const name = element("span", "attachment-name", file.name || "pasted image");
    const progress = element("progress", "attachment-progress");
    progress.max = 1;
    progress.value = 0;
    const remove = element("button", "attachment-remove", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", `Remove ${file.name || "the file"}`);
    item.append(name, progress, remove);
    this.list.append(item);
    this.list.hidden = false;
    const request = new XMLHttpRequest();
    /** @type {Pending} */
    const entry = { item, upload: null, request };
    this.pending.push(entry);
    remove.addEventListener("click", () => {
      entry.request?.abort();
      this.pending = this.pending.filter((other) => other !== entry);
      item.remove();
      this.list.hidden = this.pending.length === 0;
      this.onChange();
    });
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress.value = event.loaded / event.total;
    });
    request.addEventListener("load", () => {
      entry.request = null;
      /** @type {any} */
      let answer = null;
      try {
        answer = JSON.parse(request.responseText);
      } catch {
        answer = null;
      }
      if (request.status === 201 && isUpload(answer?.upload)) {
        this.uploaded(entry, answer.upload);
      } else {
        const detail = typeof answer?.detail === "string" ? answer.detail : "";
        this.failed(entry, detail || `The server refused the file (${request.status}).`);
      }
    });
    request.addEventListener("error", () => {
      entry.request = null;
      this.failed(entry, "The file could not be sent: check the connection.");
    });
    request.open("POST", `/channels/${encodeURIComponent(this.channel)}/uploads`);
    request.setRequestHeader("X-CSRF-Token", csrfToken());
    request.setRequestHeader("Accept", "application/json");
    const body = new FormData();
    body.append("file", file, file.name || "pasted-image");
    request.send(body);
    this.onChange();
  }

  /**
   * @param {Pending} entry
   * @param {Upload} upload
   */
  uploaded(entry, upload) {
    entry.upload = upload;
    entry.item.classList.add("uploaded");
    entry.item.querySelector("progress")?.remove();
    if (upload.thumb) {
      const image = element("img", "attachment-thumb");
      image.src = upload.thumb;
      image.alt = upload.name;
      entry.item.prepend(image);
    } else {
      entry.item.querySelector(".attachment-name")?.after(
        element("span", "attachment-size", formatSize(upload.size)),
      );
    }
    this.onChange();
  }

  /**
   * @param {Pending} entry
   * @param {string} reason
   */
  failed(entry, reason) {
    entry.item.classList.add("failed");
    entry.item.querySelector("progress")?.remove();
    entry.item.title = reason;
    this.onError(reason);
    this.onChange();
  }
}
