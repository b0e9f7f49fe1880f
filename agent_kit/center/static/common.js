/* Shared by the fleet page (app.js) and the agent page (agent.js): API calls, the admin login,
 * DOM helpers and formatting. No framework, no network beyond this center's own API.
 * Every text that comes from an agent (hostname, reasons, messages) goes in through
 * textContent, never parsed as markup: a workstation must not be able to script the admin's browser. */
"use strict";

const Center = (() => {
  /* The reader's language and the page's words in it: the center puts them in the page
   * (agent_kit/center/dashboard_text.py) as a JSON data block. */
  const UI = (() => {
    const block = document.getElementById("ui-text");
    try { return block ? JSON.parse(block.textContent) : {}; } catch (_) { return {}; }
  })();
  const LANG = UI.lang || "en";
  const WORDS = UI.text || {};

  /** The dashboard text `msgid` in the reader's language, its {fields} filled from params. */
  function t(msgid, params) {
    let text = WORDS[msgid] || msgid;
    if (params) {
      for (const [key, value] of Object.entries(params)) text = text.split("{" + key + "}").join(String(value));
    }
    return text;
  }

  /** The static page's words (text, placeholder, aria-label, title) in the reader's language. */
  function translatePage() {
    if (document.title in WORDS) document.title = WORDS[document.title];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.nodeValue.replace(/\s+/g, " ").trim();
      if (text && text in WORDS) node.nodeValue = node.nodeValue.replace(/\S(.|\s)*\S|\S/, WORDS[text]);
    }
    for (const name of ["placeholder", "aria-label", "title"]) {
      for (const node of document.querySelectorAll("[" + name + "]")) {
        const text = node.getAttribute(name);
        if (text in WORDS) node.setAttribute(name, WORDS[text]);
      }
    }
  }

  /** The language selector in the top bar: the choice is kept in a cookie the center reads. */
  function addLanguageSelector() {
    const bar = document.querySelector(".topbar");
    if (!bar || !UI.languages) return;
    const select = document.createElement("select");
    select.id = "lang";
    select.className = "lang-select";
    select.setAttribute("aria-label", t("Language"));
    for (const [code, name] of UI.languages) {
      const option = document.createElement("option");
      option.value = code;
      option.textContent = name;
      option.selected = code === LANG;
      select.append(option);
    }
    select.addEventListener("change", () => {
      document.cookie = "agent_center_lang=" + encodeURIComponent(select.value) +
        "; path=/; max-age=31536000; samesite=strict";
      location.reload();
    });
    const logout = document.getElementById("logout");
    if (logout) bar.insertBefore(select, logout); else bar.append(select);
  }

  translatePage();
  addLanguageSelector();

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
      throw new ApiError(0, "network", t("The center does not answer ({error}).", {error: err.message}));
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
    online: t("Online"), offline: t("Offline"), never_seen: t("Never seen"), retired: t("Retired"),
  };

  function stateBadge(state) {
    return el("span", {class: "badge state-" + state}, STATE_LABELS[state] || state);
  }

  function readyBadge(ready) {
    if (ready === true) return el("span", {class: "badge ready-yes"}, t("Ready"));
    if (ready === false) return el("span", {class: "badge ready-no"}, t("Not ready"));
    return el("span", {class: "badge ready-unknown"}, t("No data"));
  }

  function checkTitle(id) {
    const spec = window.CHECKS && window.CHECKS[id];
    return spec ? t(spec.title) : id;
  }

  function checkUnit(id) {
    const spec = window.CHECKS && window.CHECKS[id];
    return spec ? spec.unit : null;
  }

  const absoluteFormat = new Intl.DateTimeFormat(LANG, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });

  function formatAbsolute(iso) {
    const date = new Date(iso);
    return isNaN(date) ? String(iso) : absoluteFormat.format(date);
  }

  /** "42 s ago", "5 min ago", "3 h ago", "2 d ago" (and "in ..." for clocks ahead). */
  function formatRelative(iso, nowMs = Date.now()) {
    const at = Date.parse(iso);
    if (isNaN(at)) return String(iso);
    const seconds = Math.round((nowMs - at) / 1000);
    const abs = Math.abs(seconds);
    let text;
    if (abs < 5) return t("just now");
    if (abs < 90) text = abs + " s";
    else if (abs < 90 * 60) text = Math.round(abs / 60) + " min";
    else if (abs < 36 * 3600) text = Math.round(abs / 3600) + " h";
    else text = Math.round(abs / 86400) + " d";
    return seconds >= 0 ? t("{time} ago", {time: text}) : t("in {time}", {time: text});
  }

  /** <time> with relative text, the exact moment in the tooltip; "—" for null. */
  function timeCell(iso) {
    if (!iso) return el("span", {class: "muted", "aria-label": t("never")}, "—");
    return el("time", {datetime: iso, title: formatAbsolute(iso)}, formatRelative(iso));
  }

  const numberFormat = new Intl.NumberFormat(LANG);
  // the reader's decimal sign ("," in Swedish)
  const DECIMAL = (numberFormat.formatToParts(1.5).find((p) => p.type === "decimal") || {}).value || ".";

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
      if (DECIMAL !== ".") text = text.replace(".", DECIMAL);
    } else {
      text = String(value);
    }
    // a unit that is a word ("days") in the reader's language; symbols stay as they are
    return unit && unit !== "count" ? text + " " + t(unit) : text;
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
        showLogin(wrong ? t("That key or admin token is not valid.") : err.message);
      } finally {
        button.disabled = false;
      }
    });
    document.getElementById("logout").addEventListener("click", async () => {
      try { await api("/api/v1/session", {method: "DELETE"}); } catch (_) { /* shown below */ }
      showLogin(t("You are logged out."));
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
    handleError, showBanner, STATE_LABELS, t, LANG,
  };
})();
