/* One agent's page: who it is and which headset and network link it uses, its login gate and
 * current problems, the history of its call quality readings (charts from
 * GET /api/v1/agents/{id}/heartbeats, over the span the heartbeats of the chosen period cover)
 * and its uploaded diagnosis reports. Each status is shown once: the connection and readiness
 * badges in the head; the gate card says what the gate does and why, without a badge of its own. */
"use strict";

(() => {
  const {api, el, stateBadge, readyBadge, checkTitle, timeCell, formatValue, formatAbsolute,
         formatClock, t} = Center;
  const PAGE_LIMIT = 1000;          // heartbeats per request
  const MAX_HEARTBEATS = 12000;     // enough for 24 h at a 15 s interval, with room
  const RANGES_S = [3600, 21600, 86400];
  const MIN_SPAN_MS = 5 * 60 * 1000;  // a chart spans at least this (one heartbeat is a dot)
  // generated from the catalogue (checks.js); titles and line names in the reader's language
  const CHARTS = window.CHARTS.map((c) => ({
    ...c, title: t(c.title), series: c.series.map((s) => ({...s, name: t(s.name)}))}));

  const agentId = decodeURIComponent(location.pathname.replace(/\/+$/, "").split("/").pop());
  const base = "/api/v1/agents/" + encodeURIComponent(agentId);
  let agent = null;
  let heartbeats = [];
  let domain = null;
  let rangeS = RANGES_S.includes(Number(new URLSearchParams(location.search).get("range")))
    ? Number(new URLSearchParams(location.search).get("range")) : 3600;

  function fact(label, value) {
    return el("div", {class: "fact"}, el("dt", null, label), el("dd", null, value));
  }

  function renderHead() {
    const name = agent.display_name || agent.hostname || agent.agent_id;
    document.title = name + " · agent-center";
    document.getElementById("agent-name").textContent = name;
    document.getElementById("crumb").textContent = name;
    document.getElementById("agent-hostname").textContent = agent.hostname || "—";
    document.getElementById("agent-id").textContent = agent.agent_id;
    // Connection and readiness, once each (the verdict and the gate say the same: not here).
    // Offline: what it last was, as a past fact, never "not ready" now.
    const badges = [stateBadge(agent.state)];
    if (agent.state === "online") badges.push(readyBadge(agent.ready));
    else if (agent.state === "offline" && agent.last_ready !== null) {
      badges.push(el("span", {class: "badge state-offline"}, agent.last_ready
        ? t("Offline, last: ready") : t("Offline, last: not ready")));
      badges.shift();
    }
    document.getElementById("agent-badges").replaceChildren(...badges);
    const sinceLabel = {ready: t("Ready since"), not_ready: t("Not ready since"),
                        offline: t("Offline since")}[agent.status] || t("Since");
    document.getElementById("facts").replaceChildren(
      fact(t("Last seen"), timeCell(agent.last_seen)),
      fact(sinceLabel, agent.since ? el("span", null, formatClock(agent.since), " · ",
                                        timeCell(agent.since)) : timeCell(null)),
      ...deviceFacts(agent.devices || {}),
      fact(t("Heartbeat interval"), agent.interval_s ? agent.interval_s + " s" : "—"),
      fact(t("Agent version"), agent.agent_version || "—"),
      fact(t("Heartbeats"), agent.last_seq ? String(agent.last_seq) : t("none")),
    );
  }

  /** Which headset and which network link the last heartbeat names (the workstation's own
   * device names, as text). */
  function deviceFacts(devices) {
    const out = [];
    const headset = devices.headset;
    if (headset && headset.microphone) {
      const value = el("span", {class: "device", "data-device": "headset"},
        headset.microphone + (headset.kind ? " (" + headset.kind + ")" : ""));
      if (headset.speaker) {
        value.append(el("span", {class: "sub device-speaker"},
                        t("sound plays through {speaker}", {speaker: headset.speaker})));
      }
      out.push(fact(checkTitle(headset.check), value));
    }
    const link = devices.link;
    if (link && (link.text || link.interface)) {
      out.push(fact(checkTitle(link.check),
                    el("span", {class: "device", "data-device": "link"}, link.text || link.interface)));
    }
    return out;
  }

  function renderGate(latest) {
    const box = document.getElementById("gate");
    if (!latest || !latest.gate) {
      box.replaceChildren(el("p", {class: "muted"}, t("No heartbeat yet: the gate denies login.")));
      return;
    }
    const gate = latest.gate;
    const stale = agent.state !== "online";
    // What the gate does, in words (readiness itself is the head's badge, shown once)
    const head = el("p", {class: "gate-state", "data-open": String(gate.open && !stale)},
      gate.open ? t("Login is allowed.") : t("Login is denied."));
    const children = stale ? [] : [head];
    if (stale) {
      children.push(el("p", {class: "note"},
        t("The agent is {state}: the center denies login until a fresh heartbeat arrives.",
          {state: Center.STATE_LABELS[agent.state].toLowerCase()})));
    }
    // Closed while every check passes again: the agent's gate is in its recovery window
    // (hysteresis); the reasons are why it closed, not what fails now.
    const failing = (latest.checks || []).some((c) => c.status === "fail");
    if (!gate.open && !stale && !failing && gate.reasons && gate.reasons.length) {
      children.push(el("p", {class: "note recovering"},
        t("Recovering: every check passes again. The gate reopens once they have kept passing " +
          "for the policy's recovery time, so that nobody flaps in and out. It closed because:")));
    }
    if (gate.reasons && gate.reasons.length) {
      children.push(el("ul", {class: "reasons"}, ...gate.reasons.map((r) => el("li", null, r))));
    } else if (!gate.open) {
      children.push(el("p", {class: "muted"}, t("No reason given.")));
    }
    box.replaceChildren(...children);
  }

  function checkLine(check) {
    const value = check.value === null || check.value === undefined
      ? "" : formatValue(check.value, check.unit || Center.checkUnit(check.id));
    return el("li", {class: "problem status-" + check.status},
      el("span", {class: "badge status-" + check.status}, t(check.status)),
      el("span", {class: "problem-body"},
        el("strong", null, checkTitle(check.id)),
        " ", el("span", {class: "muted"}, value),
        check.message ? el("span", {class: "problem-message"}, check.message) : null,
        check.fix ? el("span", {class: "problem-fix"}, t("Fix: {fix}", {fix: check.fix})) : null));
  }

  function renderProblems(latest) {
    const box = document.getElementById("problems");
    if (!latest) {
      box.replaceChildren(el("p", {class: "muted"}, t("No heartbeat yet.")));
      return;
    }
    const order = {fail: 0, warn: 1, unknown: 2};
    const problems = (latest.checks || [])
      .filter((c) => c.status === "fail" || c.status === "warn")
      .sort((a, b) => order[a.status] - order[b.status]);
    if (!problems.length) {
      box.replaceChildren(el("p", {class: "all-good"}, t("Every check passes.")));
      return;
    }
    box.replaceChildren(el("ul", {class: "problems"}, ...problems.map(checkLine)));
  }

  function renderChecks(latest) {
    const box = document.getElementById("checks");
    if (!latest) {
      box.replaceChildren(el("p", {class: "muted"}, t("No heartbeat yet.")));
      return;
    }
    const rows = (latest.checks || []).map((c) => el("tr", null,
      el("td", null, checkTitle(c.id), el("span", {class: "sub"}, c.id)),
      el("td", null, el("span", {class: "badge status-" + c.status}, t(c.status))),
      el("td", {class: "num"}, formatValue(c.value, c.unit || Center.checkUnit(c.id)))));
    box.replaceChildren(
      el("p", {class: "muted"}, t("Measured") + " ", timeCell(latest.measured_at),
         " · seq " + latest.seq),
      el("table", {class: "checks"},
        el("thead", null, el("tr", null, el("th", {scope: "col"}, t("Check")),
          el("th", {scope: "col"}, t("Status")), el("th", {scope: "col", class: "num"}, t("Value")))),
        el("tbody", null, ...rows)));
  }

  async function loadReports() {
    const box = document.getElementById("reports");
    let data;
    try {
      data = await api(base + "/reports");
    } catch (err) {
      box.replaceChildren(el("p", {class: "muted"}, err.status === 404
        ? t("No reports.") : t("Reports are not available: {error}", {error: err.message})));
      return;
    }
    const reports = Array.isArray(data) ? data : (data && data.reports) || [];
    if (!reports.length) {
      box.replaceChildren(el("p", {class: "muted"},
        t("No diagnosis report uploaded. The agent sends one with") + " ",
        el("code", null, "agent-kit diagnose --upload"), "."));
      return;
    }
    const items = reports.map((r) => {
      const id = r.report_id || r.id;
      let when = r.created_at || r.received_at || r.uploaded_at;
      if (typeof when === "number") when = new Date(when * 1000).toISOString();  // epoch s
      const size = typeof r.size_bytes === "number" ? r.size_bytes : r.size;
      return el("li", null,
        el("a", {href: base + "/reports/" + encodeURIComponent(id), target: "_blank",
                 rel: "noopener"}, when ? formatAbsolute(when) : id),
        r.verdict ? el("span", {class: "badge verdict-" + r.verdict}, r.verdict) : null,
        typeof size === "number" ? el("span", {class: "muted"},
          " " + Math.max(1, Math.round(size / 1024)) + " KiB") : null);
    });
    box.replaceChildren(el("ul", {class: "reports"}, ...items));
  }

  /** Heartbeats of the last `rangeS` seconds before `end`, fetched by seq pages. */
  async function loadHeartbeats(endMs) {
    const interval = Math.max(1, agent.interval_s || 15);
    const startMs = endMs - rangeS * 1000;
    let want = Math.ceil((rangeS / interval) * 1.25) + 10;
    let out = [];
    for (;;) {
      want = Math.min(want, MAX_HEARTBEATS);
      const since = Math.max(0, (agent.last_seq || 0) - want);
      out = [];
      let cursor = since;
      while (out.length < MAX_HEARTBEATS) {
        const page = await api(`${base}/heartbeats?since_seq=${cursor}&limit=${PAGE_LIMIT}`);
        const batch = page.heartbeats || [];
        out.push(...batch);
        if (batch.length < PAGE_LIMIT) break;
        cursor = batch[batch.length - 1].seq;
      }
      // Readings older than the window would be missing if the agent sent more often than
      // its interval (spooled backlog): look further back once or twice.
      const oldest = out.length ? Date.parse(out[0].measured_at) : Infinity;
      if (since === 0 || oldest <= startMs || want >= MAX_HEARTBEATS) break;
      want *= 2;
    }
    return out.filter((h) => Date.parse(h.measured_at) >= startMs);
  }

  function seriesOf(key, beats) {
    return beats.map((h) => {
      const check = (h.checks || []).find((c) => c.id === key);
      const value = check && typeof check.value === "number" ? check.value : null;
      return {t: Date.parse(h.measured_at), v: value, status: check ? check.status : null};
    });
  }

  function renderGateStrip(beats, domain, gapMs) {
    const figure = document.getElementById("gate-strip");
    figure.replaceChildren();
    const caption = el("figcaption", null, el("span", {class: "chart-title"}, t("Login gate")),
      el("span", {class: "strip-legend"},
        el("span", {class: "swatch gate-open", "aria-hidden": "true"}), t("open"),
        el("span", {class: "swatch gate-closed", "aria-hidden": "true"}), t("closed"),
        el("span", {class: "swatch gate-none", "aria-hidden": "true"}), t("no heartbeat")));
    figure.append(caption);
    const width = Math.max(280, Math.floor(figure.clientWidth || 800));
    const height = 18;
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("role", "img");
    const [t0, t1] = domain;
    const x = (t) => ((t - t0) / Math.max(1, t1 - t0)) * width;
    const back = document.createElementNS(ns, "rect");
    for (const [k, v] of Object.entries({x: 0, y: 0, width, height, class: "gate-none", rx: 3})) {
      back.setAttribute(k, v);
    }
    svg.append(back);
    // Runs of the same gate state become one rectangle (no seams, few nodes).
    const runs = [];
    beats.forEach((h, i) => {
      const t = Math.max(Date.parse(h.measured_at), t0);
      const next = i + 1 < beats.length ? Date.parse(beats[i + 1].measured_at) : t1;
      const end = Math.min(next, t + gapMs, t1);
      const open = h.gate ? h.gate.open : h.verdict !== "fail";
      const last = runs[runs.length - 1];
      if (last && last.open === open && last.end >= t) last.end = end;
      else runs.push({start: t, end, open});
    });
    let closedMs = 0;
    for (const run of runs) {
      if (!run.open) closedMs += run.end - run.start;
      const rect = document.createElementNS(ns, "rect");
      const left = x(run.start);
      for (const [k, v] of Object.entries({x: left, y: 0, width: Math.max(1, x(run.end) - left),
                                           height, class: run.open ? "gate-open" : "gate-closed"})) {
        rect.setAttribute(k, v);
      }
      svg.append(rect);
    }
    const title = document.createElementNS(ns, "title");
    const minutes = Math.round(closedMs / 60000);
    title.textContent = beats.length
      ? t("Login gate: closed for about {minutes} min of this period.", {minutes})
      : t("Login gate: no heartbeat in this period.");
    svg.prepend(title);
    figure.append(svg);
  }

  /** The charts' time axis: the span the heartbeats cover (at least MIN_SPAN_MS, ending at
   * the last one), not the whole period asked for: an agent that started 20 minutes ago has 20
   * minutes of charts, not 40 empty ones before them. */
  function fittedDomain(beats, endMs) {
    if (!beats.length) return [endMs - rangeS * 1000, endMs];
    const first = Date.parse(beats[0].measured_at);
    // the last heartbeat holds for one interval: the gate strip shows its state that long
    const last = Date.parse(beats[beats.length - 1].measured_at) +
      Math.max(1, agent.interval_s || 15) * 1000;
    return [Math.min(first, last - MIN_SPAN_MS), last];
  }

  async function loadHistory() {
    const note = document.getElementById("history-note");
    for (const button of document.querySelectorAll("[data-range]")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.range) === rangeS));
    }
    const lastMs = agent.last_seen ? Date.parse(agent.last_seen) : null;
    // An offline agent's last hours are more telling than an empty window ending now.
    const endMs = agent.state === "online" || lastMs === null
      ? Date.now() : Math.min(Date.now(), lastMs + 60000);
    if (!agent.last_seq) {
      heartbeats = [];
      note.textContent = t("No heartbeat received yet.");
    } else {
      document.getElementById("charts").setAttribute("aria-busy", "true");
      heartbeats = await loadHeartbeats(endMs);
      document.getElementById("charts").removeAttribute("aria-busy");
    }
    domain = fittedDomain(heartbeats, endMs);
    if (heartbeats.length) {
      const span = {count: heartbeats.length,
                    start: formatAbsolute(heartbeats[0].measured_at),
                    end: formatAbsolute(heartbeats[heartbeats.length - 1].measured_at)};
      note.textContent = agent.state === "online"
        ? t("{count} heartbeats from {start} to {end}.", span)
        : t("{count} heartbeats from {start} to {end} (the last hours before the agent went " +
            "quiet).", span);
    } else if (agent.last_seq) {
      note.textContent = t("No readings in this period");
    }
    drawCharts();
  }

  function drawCharts() {
    const interval = Math.max(1, agent.interval_s || 15) * 1000;
    const gapMs = Math.max(3 * interval, 45000);
    renderGateStrip(heartbeats, domain, gapMs);
    for (const chart of CHARTS) {
      Charts.lineChart(document.getElementById(chart.figure), {
        title: chart.title, unit: chart.unit, zeroBased: chart.zeroBased,
        floor: chart.floor, ceiling: chart.ceiling, gapMs, domain,
        series: chart.series.map((s) => ({...s, points: seriesOf(s.key, heartbeats)})),
      });
    }
    document.getElementById("charts").dataset.drawn = String(heartbeats.length);
    performance.mark("charts-drawn");
  }

  async function load() {
    try {
      const data = await api(base);
      agent = data;
      Center.showBanner("");
      Center.hideLogin();
      renderHead();
      renderGate(data.latest);
      renderProblems(data.latest);
      renderChecks(data.latest);
      await Promise.all([loadHistory(), loadReports()]);
    } catch (err) {
      if (err.status === 404) {
        Center.hideLogin();
        document.getElementById("app").replaceChildren(
          el("nav", {class: "breadcrumb"}, el("a", {href: "/"}, t("Fleet"))),
          el("h1", null, t("Agent not found")),
          el("p", null, t("No agent has the id") + " ", el("code", null, agentId), "."));
        return;
      }
      Center.handleError(err);
    }
  }

  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", async () => {
      rangeS = Number(button.dataset.range);
      const url = new URL(location.href);
      url.searchParams.set("range", String(rangeS));
      history.replaceState(null, "", url);
      try { await loadHistory(); } catch (err) { Center.handleError(err); }
    });
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (agent && domain) drawCharts();
    }, 200);
  });

  Center.setupLogin(load);
  load();
})();
