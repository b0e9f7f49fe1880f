/* The fleet page's first step, loaded before anything else: read the view (filters, sort,
 * page) from the address bar and send its GET /api/v1/agents at once, so the center works on
 * it while the browser still loads the style sheet and the other scripts. app.js takes the
 * answer over (FleetQuery.early) and uses the same functions for every later request. */
"use strict";

const FleetQuery = (() => {
  const FILTERS = ["q", "state", "ready", "failing", "team"];
  const PAGE_SIZES = [25, 50, 100, 200];
  // Without a sort in the address bar: who cannot take calls first (the center's "attention").
  const DEFAULT_SORT = "attention";

  /** {q, state, ready, failing, team, sort, offset, limit} from a location.search string. */
  function read(search) {
    const params = new URLSearchParams(search);
    const view = {};
    for (const key of FILTERS) view[key] = params.get(key) || "";
    view.sort = params.get("sort") || "";
    view.offset = Math.max(0, parseInt(params.get("offset"), 10) || 0);
    const limit = parseInt(params.get("limit"), 10);
    view.limit = PAGE_SIZES.includes(limit) ? limit : 50;
    return view;
  }

  /** The filters and the sort chosen (what the address bar keeps). */
  function filterParams(view) {
    const params = new URLSearchParams();
    for (const key of FILTERS) if (view[key]) params.set(key, view[key]);
    if (view.sort) params.set("sort", view.sort);
    return params;
  }

  /** The filters and the sort in effect (what the CSV export takes: the rows as shown). */
  function sortedParams(view) {
    const params = filterParams(view);
    if (!view.sort) params.set("sort", DEFAULT_SORT);
    return params;
  }

  /** The filters, the sort and the page: the query of GET /api/v1/agents. */
  function pageParams(view) {
    const params = sortedParams(view);
    params.set("limit", String(view.limit));
    params.set("offset", String(view.offset));
    return params;
  }

  const query = pageParams(read(location.search)).toString();
  const early = {
    query,
    response: fetch("/api/v1/agents?" + query,
                    {credentials: "same-origin", headers: {Accept: "application/json"}}),
  };
  early.response.catch(() => {});  // app.js reports the failure when it takes the answer over
  return {FILTERS, PAGE_SIZES, DEFAULT_SORT, read, filterParams, sortedParams, pageParams, early};
})();
