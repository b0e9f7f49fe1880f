/* The audit log page (admin): who did what and when, newest first, filtered by who, what and
 * the dates, 50 events a page, the same filters as CSV. Everything shown comes in through
 * textContent (actors and details hold names people chose). */
"use strict";

(() => {
  const {api, el, t, formatAbsolute, handleError, showBanner} = Center;
  const PAGE = 50;
  // The audit actions (agent_kit/center/audit.py AUDIT_ACTIONS) in words.
  const ACTIONS = {
    "login": t("Signed in"),
    "login_failed": t("Sign-in refused"),
    "logout": t("Signed out"),
    "token.create": t("Enrollment token made"),
    "token.revoke": t("Enrollment token revoked"),
    "agent.retire": t("Workstation retired"),
    "agent.move": t("Workstation moved to another team"),
    "gate_key.create": t("Gate key made"),
    "gate_key.revoke": t("Gate key revoked"),
    "user.create": t("User made"),
    "user.change": t("User's role or teams changed"),
    "user.new_key": t("User given a new key"),
    "user.delete": t("User deleted"),
  };
  const ROLES = {admin: t("Admin"), supervisor: t("Supervisor"), viewer: t("Viewer")};
  const view = {actor: "", action: "", since: "", until: "", offset: 0};

  function readLocation() {
    const params = new URLSearchParams(location.search);
    for (const key of ["actor", "action", "since", "until"]) view[key] = params.get(key) || "";
    view.offset = Math.max(0, parseInt(params.get("offset"), 10) || 0);
    document.getElementById("f-actor").value = view.actor;
    document.getElementById("f-action").value = view.action;
    document.getElementById("f-since").value = view.since;
    document.getElementById("f-until").value = view.until;
  }

  /** The API's query for the view: dates are whole days in the reader's time zone. */
  function query(withPage) {
    const params = new URLSearchParams();
    if (view.actor) params.set("actor", view.actor);
    if (view.action) params.set("action", view.action);
    if (view.since) params.set("since", new Date(view.since + "T00:00:00").toISOString());
    if (view.until) {
      const end = new Date(view.until + "T00:00:00");
      end.setDate(end.getDate() + 1);
      params.set("until", end.toISOString());
    }
    if (withPage) {
      params.set("limit", String(PAGE));
      params.set("offset", String(view.offset));
    }
    return params.toString();
  }

  function writeLocation() {
    const params = new URLSearchParams();
    for (const key of ["actor", "action", "since", "until"]) if (view[key]) params.set(key, view[key]);
    if (view.offset) params.set("offset", String(view.offset));
    const search = params.toString();
    history.replaceState(null, "", search ? "?" + search : location.pathname);
  }

  // The names of an event's parameters (audit.py writes them as ids) and of the ways to sign in.
  const DETAIL_NAMES = {
    team: t("Team"), teams: t("Teams"), role: t("Role"), uses: t("Uses"),
    ttl_s: t("Valid for"), note: t("Note"), method: t("Signed in with"),
    from: t("From team"), to: t("To team"),
  };
  const METHODS = {admin_token: t("Admin token"), user_key: t("User's key"),
                   openid_connect: "OpenID Connect"};

  /** One parameter's value in words: teams null is every team; [old, new] is a change. */
  function valueText(key, value) {
    if (value === null || value === undefined) return key === "teams" ? t("every team") : "–";
    if (Array.isArray(value)) {
      const change = value.length === 2 &&
        (key !== "teams" || value.some((v) => v === null || Array.isArray(v)));
      return change ? valueText(key, value[0]) + " → " + valueText(key, value[1]) : value.join(", ");
    }
    if (key === "method") return METHODS[value] || String(value);
    if (key === "ttl_s") return t("{hours} h", {hours: Math.round(Number(value) / 360) / 10});
    if (key === "role") return ROLES[value] || String(value);
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  /** The event's parameters as "name: value" in the reader's language. */
  function detailText(detail) {
    return Object.entries(detail || {})
      .map(([key, value]) => (DETAIL_NAMES[key] || key) + ": " + valueText(key, value))
      .join(", ");
  }

  function row(event) {
    return el("tr", null,
      el("td", {class: "muted"}, formatAbsolute(event.at)),
      el("td", null, event.actor),
      el("td", {"data-action": event.action}, ACTIONS[event.action] || event.action),
      el("td", null, event.target || ""),
      el("td", {class: "muted"}, detailText(event.detail)),
      el("td", {class: "muted"}, event.source));
  }

  async function load() {
    writeLocation();
    document.getElementById("export-csv").href = "/api/v1/audit.csv" +
      (query(false) ? "?" + query(false) : "");
    let page;
    try {
      page = await api("/api/v1/audit?" + query(true));
    } catch (err) {
      if (err.status === 403) {   // signed in, but not as an admin: say so, offer log out
        Center.hideLogin();
        document.getElementById("app").hidden = true;
        showBanner(t("Only an admin may read the audit log."));
        return;
      }
      handleError(err);
      return;
    }
    Center.hideLogin();
    showBanner("");
    document.getElementById("event-rows").replaceChildren(...page.events.map(row));
    document.getElementById("empty").hidden = page.events.length > 0;
    const last = Math.min(view.offset + page.events.length, page.total);
    document.getElementById("result-count").textContent = page.total ?
      t("Events {first} to {last} of {total}", {first: view.offset + 1, last, total: page.total}) : "";
    document.getElementById("prev-page").disabled = view.offset === 0;
    document.getElementById("next-page").disabled = last >= page.total;
    document.getElementById("updated").textContent =
      t("Updated {time}", {time: formatAbsolute(new Date().toISOString())});
  }

  function bindControls() {
    const select = document.getElementById("f-action");
    for (const [code, words] of Object.entries(ACTIONS)) select.append(el("option", {value: code}, words));
    select.value = view.action;
    document.getElementById("filters").addEventListener("change", (event) => {
      const name = event.target.name;
      if (!name) return;
      view[name] = event.target.value.trim();
      view.offset = 0;
      load();
    });
    document.getElementById("filters").addEventListener("submit", (event) => event.preventDefault());
    document.getElementById("clear-filters").addEventListener("click", () => {
      Object.assign(view, {actor: "", action: "", since: "", until: "", offset: 0});
      readLocationFromView();
      load();
    });
    document.getElementById("prev-page").addEventListener("click", () => {
      view.offset = Math.max(0, view.offset - PAGE);
      load();
    });
    document.getElementById("next-page").addEventListener("click", () => {
      view.offset += PAGE;
      load();
    });
  }

  function readLocationFromView() {
    document.getElementById("f-actor").value = view.actor;
    document.getElementById("f-action").value = view.action;
    document.getElementById("f-since").value = view.since;
    document.getElementById("f-until").value = view.until;
  }

  bindControls();
  readLocation();
  Center.setupLogin(load);
  load();
})();
