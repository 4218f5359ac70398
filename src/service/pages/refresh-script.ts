/**
 * The pages' one script (served at /refresh.js; the CSP allows only it): it reloads the page's
 * <main> in place every data-refresh seconds, and when a refresh fails says so on the page, keeping
 * the last view and the time it was read, instead of the browser's error page a meta refresh shows.
 */
export const REFRESH_SCRIPT = `"use strict";
(() => {
  const every = Number(document.body.dataset.refresh);
  const banner = document.getElementById("refresh-error");
  if (!every || !banner) return;
  const failed = (why) => {
    const asOf = document.querySelector("main")?.dataset.asOf ?? "an earlier refresh";
    banner.textContent = "Refresh failed at " + new Date().toISOString().slice(11, 19) + " UTC (" + why + "): showing the state as of " + asOf + ".";
    banner.hidden = false;
  };
  const tick = async () => {
    try {
      const res = await fetch(location.href, { credentials: "same-origin", headers: { accept: "text/html" }, cache: "no-store" });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const next = new DOMParser().parseFromString(await res.text(), "text/html").querySelector("main[data-as-of]");
      // The login form has no data-as-of: the session ended.
      if (!next) throw new Error("the session ended: log in again");
      document.querySelector("main")?.replaceWith(next);
      document.title = next.dataset.title + " · colo-arbiter";
      banner.hidden = true;
    } catch (e) {
      failed(e instanceof Error ? e.message : String(e));
    }
    setTimeout(tick, every * 1000);
  };
  setTimeout(tick, every * 1000);
})();
`;
