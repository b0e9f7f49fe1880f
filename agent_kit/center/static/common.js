/* Shared by the fleet page (app.js) and the agent page (agent.js): API calls, the admin login,
 * DOM helpers and formatting. No framework, no network beyond this center's own API.
 * Every text that comes from an agent (hostname, reasons, messages) goes in through
 * textContent, never parsed as markup: a workstation must not be able to script the admin's browser. */
"use strict";

const Center = (() => {
  /** Raised for any non-2xx answer; carries the API's {"error", "detail"}. */
  class ApiError extends Error {
    constructor(status, code, detail) {
      super(typeof detail === "string" && detail ? detail : code || "HTTP " + status);
      this.status = status;
      this.code = code;
    }
  }

  /** fetch + JSON + errors as ApiError. options.json: a body to POST; options.response: a
   * fetch already under way for this path (the fleet page's early request). */
  async function api(path, options = {}) {
    const {json, response: pending, ...rest} = options;
    const init = {credentials: "same-origin", headers: {Accept: "application/json"}, ...rest};
    if (json !== undefined) {
      init.method = init.method || "POST";
      init.headers = {...init.headers, "Content-Type": "application/json"};
      init.body = JSON.stringify(json);
    }
    let response;
    try {
      response = await (pending || fetch(path, init));
    } catch (err) {
      throw new ApiError(0, "network", "The center does not answer (" + err.message + ").");
    }
    if (response.status === 204) return null;
    let body = null;
    const text = await response.text();
    if (text) {
      try { body = JSON.parse(text); } catch (_) { body = null; }
    }
    if (!response.ok) {
      const code = body && body.error ? body.error : "http_" + response.status;
      let detail = body ? body.detail : null;
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
      throw new ApiError(response.status, code, detail || response.statusText);
    }
    return body;
  }

  /** el("td", {class: "x", title: "y"}, child, "text", ...) */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === null || value === undefined || value === false) continue;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = value;
        else node.setAttribute(key, value === true ? "" : value);
      }
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const STATE_LABELS = {
    online: "Online", offline: "Offline", never_seen: "Never seen", retired: "Retired",
  };

  function stateBadge(state) {
    return el("span", {class: "badge state-" + state}, STATE_LABELS[state] || state);
  }

  function readyBadge(ready) {
    if (ready === true) return el("span", {class: "badge ready-yes"}, "Ready");
    if (ready === false) return el("span", {class: "badge ready-no"}, "Not ready");
    return el("span", {class: "badge ready-unknown"}, "No data");
  }

  function checkTitle(id) {
    const spec = window.CHECKS && window.CHECKS[id];
    return spec ? spec.title : id;
  }

  function checkUnit(id) {
    const spec = window.CHECKS && window.CHECKS[id];
    return spec ? spec.unit : null;
  }

  const absoluteFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });

  function formatAbsolute(iso) {
    const date = new Date(iso);
    return isNaN(date) ? String(iso) : absoluteFormat.format(date);
  }

  /** "42 s ago", "5 min ago", "3 h ago", "2 d ago" (and "in ..." for clocks ahead). */
  function formatRelative(iso, nowMs = Date.now()) {
    const t = Date.parse(iso);
    if (isNaN(t)) return String(iso);
    const seconds = Math.round((nowMs - t) / 1000);
    const abs = Math.abs(seconds);
    let text;
    if (abs < 5) return "just now";
    if (abs < 90) text = abs + " s";
    else if (abs < 90 * 60) text = Math.round(abs / 60) + " min";
    else if (abs < 36 * 3600) text = Math.round(abs / 3600) + " h";
    else text = Math.round(abs / 86400) + " d";
    return seconds >= 0 ? text + " ago" : "in " + text;
  }

  /** <time> with relative text, the exact moment in the tooltip; "—" for null. */
  function timeCell(iso) {
    if (!iso) return el("span", {class: "muted", "aria-label": "never"}, "—");
    return el("time", {datetime: iso, title: formatAbsolute(iso)}, formatRelative(iso));
  }

  const numberFormat = new Intl.NumberFormat(undefined);

  function formatCount(n) {
    return numberFormat.format(n);
  }

  function formatValue(value, unit) {
    if (value === null || value === undefined) return "—";
    let text;
    if (typeof value === "number") {
      const abs = Math.abs(value);
      const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
      text = value.toFixed(digits);
      if (text.includes(".")) text = text.replace(/\.?0+$/, "");
      if (text === "-0") text = "0";
    } else {
      text = String(value);
    }
    return unit && unit !== "count" ? text + " " + unit : text;
  }

  /* ---- the admin login ------------------------------------------------------------------ */

  let onLoggedIn = null;

  function showLogin(message) {
    document.body.classList.add("logged-out");
    const panel = document.getElementById("login");
    panel.hidden = false;
    document.getElementById("app").hidden = true;
    document.getElementById("logout").hidden = true;
    const error = document.getElementById("login-error");
    error.textContent = message || "";
    error.hidden = !message;
    document.getElementById("login-token").focus();
  }

  function hideLogin() {
    document.body.classList.remove("logged-out");
    document.getElementById("login").hidden = true;
    document.getElementById("app").hidden = false;
    document.getElementById("logout").hidden = false;
  }

  function setupLogin(callback) {
    onLoggedIn = callback;
    const form = document.getElementById("login-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = document.getElementById("login-token");
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        await api("/api/v1/session", {json: {token: input.value.trim()}});
        input.value = "";
        hideLogin();
        onLoggedIn();
      } catch (err) {
        const wrong = err.status === 401 || err.status === 403 || err.status === 422;
        showLogin(wrong ? "That admin token is not valid." : err.message);
      } finally {
        button.disabled = false;
      }
    });
    document.getElementById("logout").addEventListener("click", async () => {
      try { await api("/api/v1/session", {method: "DELETE"}); } catch (_) { /* shown below */ }
      showLogin("You are logged out.");
    });
  }

  /** Shows the login form for 401s, a banner for anything else. Returns true when handled. */
  function handleError(err) {
    if (err instanceof ApiError && err.status === 401) {
      showLogin();
      return true;
    }
    showBanner(err.message || String(err));
    return false;
  }

  function showBanner(message) {
    const banner = document.getElementById("banner");
    banner.textContent = message;
    banner.hidden = !message;
  }

  return {
    ApiError, api, el, stateBadge, readyBadge, checkTitle, checkUnit, formatAbsolute,
    formatRelative, timeCell, formatCount, formatValue, setupLogin, showLogin, hideLogin,
    handleError, showBanner, STATE_LABELS,
  };
})();
