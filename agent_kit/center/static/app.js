/* The fleet overview: counts, filters, one page of agents, CSV export of the filtered fleet.
 * Filtering, sorting and paging happen at the center (GET /api/v1/agents?...), so the page
 * stays as fast with 100,000 agents as with 10: the browser only ever holds one page.
 * The filters live in the address bar, so a filtered view can be bookmarked or shared. */
"use strict";

(() => {
  const {api, el, stateBadge, readyBadge, checkTitle, timeCell, formatCount, t} = Center;
  const {FILTERS} = FleetQuery;
  const REFRESH_MS = 30000;
  const SEARCH_DEBOUNCE_MS = 250;

  const view = {q: "", state: "", ready: "", failing: "", sort: "", offset: 0, limit: 50};
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
    document.getElementById("f-q").value = view.q;
    document.getElementById("f-state").value = view.state;
    document.getElementById("f-ready").value = view.ready;
    const failing = document.getElementById("f-failing");
    if (view.failing && !failing.querySelector(`option[value="${CSS.escape(view.failing)}"]`)) {
      failing.append(el("option", {value: view.failing}, view.failing));
    }
    failing.value = view.failing;
    document.getElementById("page-size").value = String(view.limit);
    for (const card of document.querySelectorAll(".stat")) {
      const active = view[card.dataset.filter] === card.dataset.value;
      card.setAttribute("aria-pressed", String(active));
    }
    for (const th of document.querySelectorAll("th[data-sort]")) {
      const key = th.dataset.sort;
      const sort = view.sort === key ? "ascending" : view.sort === "-" + key ? "descending" : null;
      if (sort) th.setAttribute("aria-sort", sort); else th.removeAttribute("aria-sort");
    }
    const csv = document.getElementById("export-csv");
    const query = filterParams().toString();
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

  function failingCell(failing) {
    const td = el("td", {class: "failing"});
    if (!failing || failing.length === 0) {
      td.append(el("span", {class: "muted"}, "—"));
      return td;
    }
    const shown = failing.slice(0, failing.length > 3 ? 2 : 3);
    for (const id of shown) td.append(el("span", {class: "chip", title: id}, checkTitle(id)));
    if (failing.length > shown.length) {
      const rest = failing.slice(shown.length);
      td.append(el("span", {class: "chip more", title: rest.map(checkTitle).join(", ")},
                   "+" + rest.length));
    }
    return td;
  }

  function renderRows(agents) {
    const fragment = document.createDocumentFragment();
    for (const agent of agents) {
      fragment.append(el("tr", {"data-agent-id": agent.agent_id},
        agentCell(agent),
        el("td", null, stateBadge(agent.state)),
        el("td", null, readyBadge(agent.ready)),
        failingCell(agent.failing),
        el("td", {class: "time"}, timeCell(agent.since)),
        el("td", {class: "time"}, timeCell(agent.last_seen)),
        el("td", {class: "num muted"}, agent.agent_version || "—"),
      ));
    }
    document.getElementById("agent-rows").replaceChildren(fragment);
    document.getElementById("empty").hidden = agents.length > 0;
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
      renderRows(data.agents);
      renderPager(data.total, data.agents.length);
      document.getElementById("updated").textContent =
        t("Updated {time}", {time: new Date().toLocaleTimeString(Center.LANG)});
      table.dataset.loaded = pageParams().toString();
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
    for (const key of ["state", "ready", "failing"]) {
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
        // First click: the most useful direction (recent first for times), then toggle.
        const descFirst = key === "last_seen" || key === "since";
        if (view.sort === key) view.sort = "-" + key;
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
