// Browser notifications for mentions: asked for politely (a button the reader presses, never
// on page load), shown only while the tab is hidden.

export function notificationsAvailable() {
  return "Notification" in window && window.isSecureContext !== false;
}

/**
 * Show ``button`` while permission has not been asked; pressing it asks.
 * @param {HTMLElement | null} button
 */
export function offerNotifications(button) {
  if (!button) return;
  const update = () => {
    button.hidden = !notificationsAvailable() || Notification.permission !== "default";
  };
  update();
  button.addEventListener("click", async () => {
    try {
      await Notification.requestPermission();
    } catch {
      // An old browser's callback form, or a refusal: nothing more to do.
    }
    update();
  });
}

/**
 * A notification, if allowed and the tab is hidden; clicking it brings the tab back.
 * @param {string} title
 * @param {string} body
 * @param {string} tag
 * @param {() => void} [onClick]
 */
export function notifyHidden(title, body, tag, onClick) {
  if (!notificationsAvailable() || Notification.permission !== "granted") return null;
  if (document.visibilityState !== "hidden") return null;
  try {
    const note = new Notification(title, { body, tag });
    note.addEventListener("click", () => {
      window.focus();
      if (onClick) onClick();
      note.close();
    });
    return note;
  } catch {
    return null; // (Chrome on Android wants a service worker for notifications)
  }
}
