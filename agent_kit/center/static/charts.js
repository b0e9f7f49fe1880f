/* Small SVG time-series charts for the agent page: no library, no network.
 * A chart is one <figure>: a title, a legend when it has several series, an SVG with "nice"
 * axis ticks, lines broken where heartbeats are missing (the agent was offline), warn/fail
 * readings marked, and a cursor (mouse or arrow keys) that reads out the nearest reading. */
"use strict";

const Charts = (() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const HEIGHT = 190;
  const MARGIN = {top: 12, right: 14, bottom: 26, left: 52};

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    return node;
  }

  /** Ticks at 1, 2 or 5 times a power of ten covering [lo, hi], about `count` of them. */
  function niceTicks(lo, hi, count = 4) {
    if (!(hi > lo)) {
      const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
      lo -= pad;
      hi += pad;
    }
    const raw = (hi - lo) / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => raw <= s);
    const start = Math.floor(lo / step) * step;
    const end = Math.ceil(hi / step) * step;
    const ticks = [];
    for (let v = start; v <= end + step / 2; v += step) ticks.push(Math.round(v / step) * step);
    return {ticks, lo: start, hi: end, step};
  }

  /**
   * The y axis for readings from vMin to vMax: nice ticks, from 0 when zeroBased, and never
   * past the quantity's physical range (spec.floor, spec.ceiling: no loss below 0 %, no MOS
   * above 4.5) unless a reading lies there. Flat data gets room on the side that has it.
   */
  function valueAxis(vMin, vMax, spec) {
    const floor = typeof spec.floor === "number" ? spec.floor : -Infinity;
    const ceiling = typeof spec.ceiling === "number" ? spec.ceiling : Infinity;
    let lo = spec.zeroBased ? Math.min(0, vMin) : vMin;
    let hi = vMax;
    if (!(hi > lo)) {
      const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
      if (lo - pad < floor) hi = lo + 2 * pad;        // at the floor (0 % loss): room above
      else if (hi + pad > ceiling) lo = hi - 2 * pad;  // at the ceiling: room below
      else { lo -= pad; hi += pad; }
    }
    const nice = niceTicks(lo, hi, 4);
    const axisLo = Math.max(nice.lo, Math.min(floor, vMin));
    const axisHi = Math.min(nice.hi, Math.max(ceiling, vMax));
    const eps = nice.step * 1e-6;
    const ticks = nice.ticks.filter((v) => v >= axisLo - eps && v <= axisHi + eps);
    if (!ticks.length || ticks[0] - axisLo > eps) ticks.unshift(axisLo);
    if (ticks[ticks.length - 1] < axisHi - eps) ticks.push(axisHi);
    return {ticks, lo: axisLo, hi: axisHi, step: nice.step};
  }

  const TIME_STEPS_S = [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
                        86400, 172800, 604800];

  function timeTicks(t0, t1, maxTicks) {
    const span = (t1 - t0) / 1000;
    const step = TIME_STEPS_S.find((s) => span / s <= maxTicks) || 604800;
    const stepMs = step * 1000;
    // Align to local midnight-based boundaries so labels read 12:00, 12:15, ...
    const offsetMs = new Date(t0).getTimezoneOffset() * 60000;
    const first = Math.ceil((t0 - offsetMs) / stepMs) * stepMs + offsetMs;
    const ticks = [];
    for (let t = first; t <= t1; t += stepMs) ticks.push(t);
    return {ticks, stepS: step};
  }

  const hm = new Intl.DateTimeFormat(Center.LANG, {hour: "2-digit", minute: "2-digit"});
  const hms = new Intl.DateTimeFormat(Center.LANG,
    {hour: "2-digit", minute: "2-digit", second: "2-digit"});
  const dayHm = new Intl.DateTimeFormat(Center.LANG,
    {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"});
  const day = new Intl.DateTimeFormat(Center.LANG, {month: "short", day: "numeric"});

  function timeLabel(t, stepS) {
    if (stepS >= 86400) return day.format(t);
    if (stepS < 60) return hms.format(t);
    return hm.format(t);
  }

  function formatNumber(v, step) {
    let decimals = 0;  // as many as the step needs: 0.25 -> 2, 0.5 -> 1, 5 -> 0
    while (decimals < 4 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6) {
      decimals += 1;
    }
    return v.toFixed(decimals);
  }

  /** Keeps the first, min, max and last reading per pixel column (lines look the same). */
  function thin(points, x, width) {
    if (points.length <= width * 2) return points;
    const out = [];
    let column = null;
    let bucket = [];
    const flush = () => {
      if (!bucket.length) return;
      let min = bucket[0];
      let max = bucket[0];
      for (const p of bucket) {
        if (p.v < min.v) min = p;
        if (p.v > max.v) max = p;
      }
      const keep = new Set([bucket[0], min, max, bucket[bucket.length - 1]]);
      for (const p of bucket) if (keep.has(p) || p.status === "fail" || p.status === "warn") out.push(p);
      bucket = [];
    };
    for (const p of points) {
      const c = Math.floor(x(p.t));
      if (c !== column) { flush(); column = c; }
      bucket.push(p);
    }
    flush();
    return out;
  }

  /**
   * Draws a chart into `figure` (emptied first).
   * spec: {title, unit, series: [{name, key, points: [{t: ms, v: number|null, status}]}],
   *        gapMs, domain: [t0, t1], zeroBased}
   */
  function lineChart(figure, spec) {
    figure.replaceChildren();
    figure.classList.add("chart");
    const caption = document.createElement("figcaption");
    const titleNode = document.createElement("span");
    titleNode.className = "chart-title";
    titleNode.textContent = spec.title;
    caption.append(titleNode);
    const unitText = spec.unit && spec.unit !== "MOS" ? spec.unit : "";
    if (unitText) {
      const unit = document.createElement("span");
      unit.className = "chart-unit";
      unit.textContent = unitText;
      caption.append(unit);
    }
    const latest = document.createElement("span");
    latest.className = "chart-latest";
    caption.append(latest);
    figure.append(caption);

    const all = spec.series.flatMap((s) => s.points.filter((p) => p.v !== null && isFinite(p.v)));
    const width = Math.max(280, Math.floor(figure.clientWidth || 560));
    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
    const root = svg("svg", {width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`,
                             role: "img", class: "chart-svg",
                             "data-t0": spec.domain[0], "data-t1": spec.domain[1]});
    const titleEl = svg("title");
    root.append(titleEl);

    if (all.length === 0) {
      titleEl.textContent = Center.t("{title}: no readings in this period", {title: spec.title});
      const text = svg("text", {x: width / 2, y: HEIGHT / 2, "text-anchor": "middle",
                                class: "chart-empty"});
      text.textContent = Center.t("No readings in this period");
      root.append(text);
      figure.append(root);
      latest.textContent = "";
      return;
    }

    const y = valueAxis(Math.min(...all.map((p) => p.v)), Math.max(...all.map((p) => p.v)),
                        spec);
    root.setAttribute("data-y-lo", y.lo);
    root.setAttribute("data-y-hi", y.hi);
    const [t0, t1] = spec.domain;
    const x = (t) => MARGIN.left + ((t - t0) / Math.max(1, t1 - t0)) * plotW;
    const yPos = (v) => MARGIN.top + plotH - ((v - y.lo) / (y.hi - y.lo)) * plotH;

    const grid = svg("g", {class: "chart-grid", "aria-hidden": "true"});
    for (const v of y.ticks) {
      const py = yPos(v);
      grid.append(svg("line", {x1: MARGIN.left, x2: width - MARGIN.right, y1: py, y2: py}));
      const label = svg("text", {x: MARGIN.left - 6, y: py + 4, "text-anchor": "end",
                                 class: "chart-tick chart-ytick", "data-value": v});
      label.textContent = formatNumber(v, y.step);
      grid.append(label);
    }
    const xt = timeTicks(t0, t1, Math.max(2, Math.floor(plotW / 80)));
    for (const t of xt.ticks) {
      const px = x(t);
      grid.append(svg("line", {x1: px, x2: px, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH + 4,
                               class: "chart-xtick"}));
      const label = svg("text", {x: px, y: HEIGHT - 8, "text-anchor": "middle",
                                 class: "chart-tick"});
      label.textContent = timeLabel(t, xt.stepS);
      grid.append(label);
    }
    grid.append(svg("line", {x1: MARGIN.left, x2: width - MARGIN.right, y1: MARGIN.top + plotH,
                             y2: MARGIN.top + plotH, class: "chart-axis"}));
    root.append(grid);

    const summaries = [];
    spec.series.forEach((series, index) => {
      const pts = thin(series.points.filter((p) => p.v !== null && isFinite(p.v)), x, plotW);
      if (!pts.length) return;
      let d = "";
      let previous = null;
      for (const p of pts) {
        const gap = previous === null || p.t - previous.t > spec.gapMs;
        d += (gap ? "M" : "L") + x(p.t).toFixed(1) + "," + yPos(p.v).toFixed(1);
        previous = p;
      }
      const group = svg("g", {class: "series series-" + index, "data-series": series.key});
      group.append(svg("path", {d, class: "chart-line"}));
      // Lone readings (between gaps) would be invisible as a line: draw them as dots.
      pts.forEach((p, i) => {
        const alone = (i === 0 || p.t - pts[i - 1].t > spec.gapMs) &&
                      (i === pts.length - 1 || pts[i + 1].t - p.t > spec.gapMs);
        if (p.status === "fail" || p.status === "warn") {
          group.append(svg("circle", {cx: x(p.t), cy: yPos(p.v), r: 3.5,
                                      class: "mark mark-" + p.status}));
        } else if (alone) {
          group.append(svg("circle", {cx: x(p.t), cy: yPos(p.v), r: 2.5, class: "mark"}));
        }
      });
      root.append(group);
      const values = pts.map((p) => p.v);
      const last = pts[pts.length - 1];
      summaries.push(Center.t("{name}: latest {latest}, min {min}, max {max}", {
        name: series.name, latest: formatValueUnit(last.v, spec.unit),
        min: formatValueUnit(Math.min(...values), spec.unit),
        max: formatValueUnit(Math.max(...values), spec.unit)}));
    });
    titleEl.textContent = Center.t("{title}, {start} to {end}.", {
      title: spec.title, start: hm.format(t0), end: hm.format(t1)}) + " " +
      summaries.join("; ") + ".";
    latest.textContent = spec.series
      .map((s) => {
        const pts = s.points.filter((p) => p.v !== null && isFinite(p.v));
        if (!pts.length) return null;
        // (no "MOS 3.4 MOS": a line named like the unit needs no name before its value)
        const label = spec.series.length > 1 && s.name !== spec.unit ? s.name + " " : "";
        return label + formatValueUnit(pts[pts.length - 1].v, spec.unit);
      })
      .filter(Boolean).join(" · ");

    if (spec.series.length > 1) {
      const legend = document.createElement("ul");
      legend.className = "chart-legend";
      spec.series.forEach((s, index) => {
        // (a line with no reading in the period is not drawn: no swatch for it either)
        if (!s.points.some((p) => p.v !== null && isFinite(p.v))) return;
        const item = document.createElement("li");
        const swatch = document.createElement("span");
        swatch.className = "swatch series-" + index;
        swatch.setAttribute("aria-hidden", "true");
        item.append(swatch, s.name);
        legend.append(item);
      });
      caption.append(legend);
    }

    addCursor(root, figure, spec, x, yPos, plotH);
    figure.append(root);
  }

  function formatValueUnit(v, unit) {
    return Center.formatValue(v, unit);
  }

  /** A vertical rule and a read-out of the nearest heartbeat, by mouse or arrow keys. */
  function addCursor(root, figure, spec, x, yPos, plotH) {
    const times = [...new Set(spec.series.flatMap((s) => s.points.map((p) => p.t)))]
      .sort((a, b) => a - b);
    const lookup = spec.series.map((s) => new Map(s.points.map((p) => [p.t, p])));
    const rule = svg("line", {y1: MARGIN.top, y2: MARGIN.top + plotH, class: "chart-rule",
                              visibility: "hidden"});
    const dots = spec.series.map((_, i) => svg("circle",
      {r: 4, class: "chart-dot series-" + i, visibility: "hidden"}));
    root.append(rule, ...dots);
    const tip = document.createElement("div");
    tip.className = "chart-tip";
    tip.hidden = true;
    tip.setAttribute("aria-live", "polite");
    figure.append(tip);
    root.setAttribute("tabindex", "0");
    let index = -1;

    const nearest = (t) => {
      let lo = 0;
      let hi = times.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (times[mid] < t) lo = mid + 1; else hi = mid;
      }
      if (lo > 0 && Math.abs(times[lo - 1] - t) < Math.abs(times[lo] - t)) lo -= 1;
      return lo;
    };

    const show = (i) => {
      index = Math.max(0, Math.min(times.length - 1, i));
      const t = times[index];
      const px = x(t);
      rule.setAttribute("x1", px);
      rule.setAttribute("x2", px);
      rule.setAttribute("visibility", "visible");
      const lines = [Center.formatAbsolute(new Date(t).toISOString())];
      spec.series.forEach((s, si) => {
        const p = lookup[si].get(t);
        if (p && p.v !== null && isFinite(p.v)) {
          dots[si].setAttribute("cx", px);
          dots[si].setAttribute("cy", yPos(p.v));
          dots[si].setAttribute("visibility", "visible");
          const status = p.status && p.status !== "pass" ? ` (${p.status})` : "";
          lines.push((spec.series.length > 1 ? s.name + ": " : "") +
                     formatValueUnit(p.v, spec.unit) + status);
        } else {
          dots[si].setAttribute("visibility", "hidden");
          lines.push((spec.series.length > 1 ? s.name + ": " : "") + Center.t("no reading"));
        }
      });
      tip.replaceChildren(...lines.map((line, i) => {
        const div = document.createElement("div");
        div.textContent = line;
        if (i === 0) div.className = "chart-tip-time";
        return div;
      }));
      tip.hidden = false;
      const box = figure.getBoundingClientRect();
      const svgBox = root.getBoundingClientRect();
      const left = svgBox.left - box.left + px;
      tip.style.left = Math.min(Math.max(left, 70), box.width - 70) + "px";
      tip.style.top = (svgBox.top - box.top + MARGIN.top) + "px";
    };
    const hide = () => {
      rule.setAttribute("visibility", "hidden");
      for (const dot of dots) dot.setAttribute("visibility", "hidden");
      tip.hidden = true;
    };

    root.addEventListener("mousemove", (event) => {
      const box = root.getBoundingClientRect();
      const px = event.clientX - box.left;
      const [t0, t1] = spec.domain;
      const t = t0 + ((px - MARGIN.left) / (box.width - MARGIN.left - MARGIN.right)) * (t1 - t0);
      show(nearest(t));
    });
    root.addEventListener("mouseleave", hide);
    root.addEventListener("blur", hide);
    root.addEventListener("focus", () => show(index < 0 ? times.length - 1 : index));
    root.addEventListener("keydown", (event) => {
      const moves = {ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity};
      if (!(event.key in moves)) return;
      event.preventDefault();
      const move = moves[event.key];
      show(isFinite(move) ? index + move : move < 0 ? 0 : times.length - 1);
    });
  }

  return {lineChart, niceTicks, valueAxis, timeTicks};
})();
