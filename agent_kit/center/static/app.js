/* The fleet overview: counts, filters, one page of agents, CSV export of the filtered fleet.
 * Filtering, sorting and paging happen at the center (GET /api/v1/agents?...), so the page
 * stays as fast with 100,000 agents as with 10: the browser only ever holds one page.
 * The filters live in the address bar, so a filtered view can be bookmarked or shared.
 * By default the rows answer "who cannot take calls, and why": the center's "attention" order
 * (not ready first, the longest first; then offline; then ready), each row with its first
 * reason and its failing check. The page asks again every REFRESH_MS while it is visible and
 * keeps the filters, the scroll position and the focus. */
"use strict";

(() => {
  const {api, el, stateBadge, checkTitle, timeCell, formatCount, formatClock, formatSpan,
         formatAbsolute, t} = Center;
  const {FILTERS} = FleetQuery;
  const REFRESH_MS = 10000;
  const SEARCH_DEBOUNCE_MS = 250;

  const view = {q: "", state: "", ready: "", failing: "", team: "", sort: "", offset: 0,
                limit: 50};
  let inFlight = null;
  let refreshTimer = null;

  function readLocation() {
    Object.assign(view, FleetQuery.read(location.search));
  }

  function filterParams() {
    return FleetQuery.filterParams(view);
  }

  function pageParams() {
    return FleetQuery.pageParams(view);
  }

  function writeLocation() {
    const params = filterParams();
    if (view.offset) params.set("offset", String(view.offset));
    if (view.limit !== 50) params.set("limit", String(view.limit));
    const query = params.toString();
    history.replaceState(null, "", query ? "?" + query : location.pathname);
  }

  function syncForm() {
    const search = document.getElementById("f-q");
    // (not while the reader types in it: a refresh must not undo a search not yet sent)
    if (document.activeElement !== search) search.value = view.q;
    document.getElementById("f-state").value = view.state;
    document.getElementById("f-ready").value = view.ready;
    const failing = document.getElementById("f-failing");
    if (view.failing && !failing.querySelector(`option[value="${CSS.escape(view.failing)}"]`)) {
      failing.append(el("option", {value: view.failing}, view.failing));
    }
    failing.value = view.failing;
    const team = document.getElementById("f-team");
    if (view.team && !team.querySelector(`option[value="${CSS.escape(view.team)}"]`)) {
      team.append(el("option", {value: view.team}, view.team));
    }
    team.value = view.team;
    document.getElementById("page-size").value = String(view.limit);
    for (const card of document.querySelectorAll(".stat")) {
      const active = view[card.dataset.filter] === card.dataset.value;
      card.setAttribute("aria-pressed", String(active));
    }
    for (const th of document.querySelectorAll("th[data-sort]")) {
      const key = th.dataset.sort;
      const sort = key === FleetQuery.DEFAULT_SORT ? (view.sort === "" ? "other" : null)
        : view.sort === key ? "ascending" : view.sort === "-" + key ? "descending" : null;
      if (sort) th.setAttribute("aria-sort", sort); else th.removeAttribute("aria-sort");
    }
    const csv = document.getElementById("export-csv");
    const query = FleetQuery.sortedParams(view).toString();
    csv.href = "/api/v1/agents.csv" + (query ? "?" + query : "");
  }

  function fillCheckOptions() {
    const select = document.getElementById("f-failing");
    const groups = new Map();
    for (const [id, spec] of Object.entries(window.CHECKS || {})) {
      if (!groups.has(spec.group)) groups.set(spec.group, el("optgroup", {label: spec.group}));
      groups.get(spec.group).append(el("option", {value: id}, spec.title + " (" + id + ")"));
    }
    select.append(...groups.values());
  }

  function agentCell(agent) {
    const name = agent.display_name || agent.hostname || agent.agent_id;
    const link = el("a", {href: "/agents/" + encodeURIComponent(agent.agent_id),
                          class: "agent-name"}, name);
    const sub = agent.display_name && agent.hostname && agent.display_name !== agent.hostname
      ? agent.hostname : agent.agent_id;
    return el("td", {class: "agent"}, link, el("span", {class: "sub"}, sub));
  }

  /** One status per row: not ready / ready as a badge; offline as what it last was (a past
   * fact: "Offline, last: not ready (VPN tunnel)"), never counted as not ready now. */
  function statusCell(agent) {
    const td = el("td", {class: "status"});
    if (agent.status === "not_ready") {
      td.append(el("span", {class: "badge ready-no"}, t("Not ready")));
    } else if (agent.status === "ready") {
      td.append(el("span", {class: "badge ready-yes"}, t("Ready")));
    } else if (agent.status === "offline") {
      const check = agent.reason && agent.reason.check ? checkTitle(agent.reason.check) : null;
      const text = agent.last_ready === true ? t("Offline, last: ready")
        : agent.last_ready === false
          ? (check ? t("Offline, last: not ready ({check})", {check}) : t("Offline, last: not ready"))
          : t("Offline");
      td.append(el("span", {class: "status-offline"},
                   el("span", {class: "dot state-offline", "aria-hidden": "true"}), text));
    } else {
      td.append(stateBadge(agent.state));
    }
    return td;
  }

  /** Why it cannot take calls: its first reason in words, and the failing checks (the first
   * one is the reason's). For an offline agent, the reason it last had (muted: the past). */
  function reasonCell(agent) {
    const td = el("td", {class: "reason" + (agent.status === "offline" ? " past" : "")});
    const failing = agent.failing || [];
    const reason = agent.reason;
    const why = agent.status === "not_ready" || agent.status === "offline";
    if (!why || (!reason && failing.length === 0)) {
      td.append(el("span", {class: "muted"}, "—"));
      return td;
    }
    if (reason) {
      const text = reason.text || (reason.check ? checkTitle(reason.check) : "");
      if (text) td.append(el("span", {class: "reason-text"}, text));
    }
    const ids = reason && reason.check
      ? [reason.check, ...failing.filter((id) => id !== reason.check)] : failing;
    if (ids.length) {
      const chips = el("span", {class: "chips"});
      const shown = ids.slice(0, ids.length > 3 ? 2 : 3);
      for (const id of shown) chips.append(el("span", {class: "chip", title: id}, checkTitle(id)));
      if (ids.length > shown.length) {
        const rest = ids.slice(shown.length);
        chips.append(el("span", {class: "chip more", title: rest.map(checkTitle).join(", ")},
                        "+" + rest.length));
      }
      td.append(chips);
    }
    return td;
  }

  const SINCE_WORDS = {
    not_ready: (time) => t("not ready since {time}", {time}),
    ready: (time) => t("ready since {time}", {time}),
    offline: (time) => t("offline since {time}", {time}),
  };

  /** Since what: "not ready since 10:02 (25 min)", "offline since 09:40 (1 h)". */
  function sinceCell(agent) {
    const td = el("td", {class: "time since"});
    const words = SINCE_WORDS[agent.status];
    if (!agent.since || !words) {
      td.append(el("span", {class: "muted"}, "—"));
      return td;
    }
    const span = formatSpan((Date.now() - Date.parse(agent.since)) / 1000);
    td.append(el("time", {datetime: agent.since, title: formatAbsolute(agent.since)},
                 words(formatClock(agent.since))),
              el("span", {class: "muted since-span"}, " (" + span + ")"));
    return td;
  }

  /** Which element of the table has the focus, to give it back after the rows are redrawn. */
  function focusedRow() {
    const active = document.activeElement;
    const row = active && active.closest ? active.closest("#agent-rows tr") : null;
    return row ? {agentId: row.dataset.agentId, link: active.matches("a")} : null;
  }

  function restoreFocus(focus) {
    if (!focus) return;
    const row = document.querySelector(`#agent-rows tr[data-agent-id="${CSS.escape(focus.agentId)}"]`);
    const target = row && (focus.link ? row.querySelector("a") : row);
    if (target) target.focus({preventScroll: true});
  }

  function renderRows(agents) {
    const focus = focusedRow();
    const fragment = document.createDocumentFragment();
    for (const agent of agents) {
      fragment.append(el("tr", {"data-agent-id": agent.agent_id, "data-status": agent.status},
        agentCell(agent),
        statusCell(agent),
        reasonCell(agent),
        sinceCell(agent),
        el("td", {class: "time"}, timeCell(agent.last_seen)),
        el("td", {class: "num muted"}, agent.agent_version || "—"),
      ));
    }
    document.getElementById("agent-rows").replaceChildren(fragment);
    document.getElementById("empty").hidden = agents.length > 0;
    restoreFocus(focus);
  }

  /** Counts per team (a team name is an id: shown as it is); a team's name filters by it. */
  function renderTeams(teams) {
    const section = document.getElementById("teams");
    const named = (teams || []).filter((row) => row.team !== null);
    section.hidden = named.length === 0;
    const select = document.getElementById("f-team");
    const known = [...select.options].map((o) => o.value).filter(Boolean).sort().join(",");
    const names = named.map((row) => row.team).sort();
    if (names.join(",") !== known) {   // (not while unchanged: an open list would close)
      select.replaceChildren(el("option", {value: ""}, t("Any team")),
                             ...names.map((name) => el("option", {value: name}, name)));
      if (view.team && !names.includes(view.team)) {
        select.append(el("option", {value: view.team}, view.team));
      }
      select.value = view.team;
    }
    if (section.hidden) return;
    const cell = (n, cls) => el("td", {class: "num" + (n && cls ? " " + cls : "")},
                                formatCount(n));
    document.getElementById("team-rows").replaceChildren(...(teams || []).map((row) => {
      const name = row.team === null ? el("span", {class: "muted"}, t("No team"))
        : el("button", {type: "button", class: "link-button", "data-team": row.team,
                        "aria-pressed": String(view.team === row.team)}, row.team);
      return el("tr", {"data-team": row.team === null ? "" : row.team},
        el("th", {scope: "row"}, name), cell(row.not_ready, "bad"), cell(row.offline),
        cell(row.ready), cell(row.never_seen));
    }));
  }

  function renderCounts(counts) {
    for (const key of ["online", "offline", "never_seen", "retired", "ready", "not_ready"]) {
      const node = document.getElementById("count-" + key);
      node.textContent = counts && key in counts ? formatCount(counts[key]) : "–";
    }
  }

  function renderPager(total, shown) {
    const first = shown ? view.offset + 1 : 0;
    const last = view.offset + shown;
    document.getElementById("result-count").textContent = total === 0
      ? t("No agents")
      : `${formatCount(first)}–${formatCount(last)} of ${formatCount(total)} agents`;
    document.getElementById("prev-page").disabled = view.offset === 0;
    document.getElementById("next-page").disabled = last >= total;
  }

  async function load({quiet = false} = {}) {
    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    syncForm();
    writeLocation();
    const table = document.getElementById("agents");
    if (!quiet) table.setAttribute("aria-busy", "true");
    try {
      const query = pageParams().toString();
      // The first load takes over the request boot.js sent while the page was loading.
      const early = FleetQuery.early && FleetQuery.early.query === query
        ? FleetQuery.early.response : null;
      FleetQuery.early = null;
      const data = await api("/api/v1/agents?" + query,
                             {signal: controller.signal, response: early});
      if (controller !== inFlight) return;
      if (data.agents.length === 0 && view.offset > 0 && data.total > 0) {
        // The fleet shrank under this page (or a stale bookmark): go to the last page.
        view.offset = Math.max(0, Math.floor((data.total - 1) / view.limit) * view.limit);
        return load({quiet});
      }
      Center.showBanner("");
      Center.hideLogin();
      renderCounts(data.counts);
      renderTeams(data.teams);
      renderRows(data.agents);
      renderPager(data.total, data.agents.length);
      document.getElementById("updated").textContent =
        t("Updated {time}", {time: new Date().toLocaleTimeString(Center.LANG)});
      table.dataset.loaded = pageParams().toString();
      table.dataset.refreshes = String(Number(table.dataset.refreshes || 0) + 1);
      performance.mark("agents-rendered");
    } catch (err) {
      if (err.name === "AbortError" || controller !== inFlight) return;
      Center.handleError(err);
    } finally {
      if (controller === inFlight) {
        table.removeAttribute("aria-busy");
        inFlight = null;
      }
    }
  }

  function setFilter(key, value) {
    view[key] = value;
    view.offset = 0;
    load();
  }

  function bindControls() {
    let searchTimer = null;
    document.getElementById("f-q").addEventListener("input", (event) => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => setFilter("q", event.target.value.trim()),
                               SEARCH_DEBOUNCE_MS);
    });
    document.getElementById("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(searchTimer);
      setFilter("q", document.getElementById("f-q").value.trim());
    });
    document.getElementById("team-rows").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-team]");
      if (button) setFilter("team", view.team === button.dataset.team ? "" : button.dataset.team);
    });
    for (const key of ["state", "ready", "failing", "team"]) {
      document.getElementById("f-" + key).addEventListener("change",
        (event) => setFilter(key, event.target.value));
    }
    document.getElementById("clear-filters").addEventListener("click", () => {
      for (const key of FILTERS) view[key] = "";
      view.offset = 0;
      load();
    });
    for (const card of document.querySelectorAll(".stat")) {
      card.addEventListener("click", () => {
        const {filter, value} = card.dataset;
        setFilter(filter, view[filter] === value ? "" : value);
      });
    }
    for (const th of document.querySelectorAll("th[data-sort]")) {
      th.querySelector("button").addEventListener("click", () => {
        const key = th.dataset.sort;
        // First click: the most useful direction (recent first for times), then toggle; the
        // status column's one order is the default's.
        const descFirst = key === "last_seen" || key === "since";
        if (key === FleetQuery.DEFAULT_SORT) view.sort = "";
        else if (view.sort === key) view.sort = "-" + key;
        else if (view.sort === "-" + key) view.sort = key;
        else view.sort = descFirst ? "-" + key : key;
        view.offset = 0;
        load();
      });
    }
    document.getElementById("page-size").addEventListener("change", (event) => {
      view.limit = parseInt(event.target.value, 10);
      view.offset = 0;
      load();
    });
    document.getElementById("prev-page").addEventListener("click", () => {
      view.offset = Math.max(0, view.offset - view.limit);
      load();
    });
    document.getElementById("next-page").addEventListener("click", () => {
      view.offset += view.limit;
      load();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !document.body.classList.contains("logged-out")) {
        load({quiet: true});
      }
    });
  }

  function startRefresh() {
    clearInterval(refreshTimer);
    refreshTimer = setInterval(() => {
      if (document.visibilityState === "visible" && !inFlight &&
          !document.body.classList.contains("logged-out")) {
        load({quiet: true});
      }
    }, REFRESH_MS);
  }

  readLocation();
  fillCheckOptions();
  bindControls();
  Center.setupLogin(() => load());
  load();
  startRefresh();
})();
