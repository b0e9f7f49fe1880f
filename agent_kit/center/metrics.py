"""``/metrics`` with prometheus_client: two kinds of figures, one exposition.

- The fleet (workstations by state, ready / not ready, failing checks, heartbeats stored) is read
  from the database when Prometheus scrapes, by :class:`FleetCollector`: every process, on every
  host sharing the database, reports the same fleet.
- This center's own intake figures are prometheus_client :class:`~prometheus_client.Counter`\\ s,
  incremented by the intake writer once per committed group (off the event loop). With
  ``agent-center serve --workers N`` each worker writes its counters to files in
  ``PROMETHEUS_MULTIPROC_DIR`` (``workers.py`` makes that folder, fresh for each start, and sets
  the variable before any worker starts), and a scrape sums every worker's files
  (:class:`~prometheus_client.multiprocess.MultiProcessCollector`), whichever worker answers it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import (
    CONTENT_TYPE_PLAIN_0_0_4,
    choose_encoder,
    generate_latest,
)
from prometheus_client.registry import Collector

from agent_kit.center.settings import MULTIPROC_ENV, Clock
from agent_kit.center.store import AgentFilter

if TYPE_CHECKING:
    from agent_kit.center.store import Store

FLEET_STATES = ("online", "offline", "never_seen", "retired")


def multiprocess_dir() -> str | None:
    """The folder this process shares its counters through, or None (one process).

    prometheus_client picks file-backed values once, when it is first imported, from this
    environment variable: a process that imported it before the variable was set would keep its
    counts to itself and the scrape would silently miss them, so that is an error here."""
    from prometheus_client import values

    path = os.environ.get(MULTIPROC_ENV)
    if path is None:
        return None
    # ``_multiprocess`` is how prometheus_client's value classes say which kind they are.
    if not getattr(values.ValueClass, "_multiprocess", False):
        raise RuntimeError(f"{MULTIPROC_ENV} was set after prometheus_client was imported in "
                           "this process: its counters would be missing from /metrics")
    return path


class FleetCollector(Collector):
    """The fleet figures, read from the database at each scrape."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock

    def describe(self) -> Iterator[Metric]:
        # Names only, so registering this collector does not query the database.
        return iter(_fleet_families())

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        _, counts, _ = self.store.overview(AgentFilter(), "agent_id", 0, 0, now)
        agents, ready, failing, stored = _fleet_families()
        for state in FLEET_STATES:
            agents.add_metric([state], counts[state])
        ready.add_metric(["true"], counts["ready"])
        ready.add_metric(["false"], counts["not_ready"])
        for check_id, n in sorted(self.store.failing_tally(now).items()):
            failing.add_metric([check_id], n)
        stored.add_metric([], self.store.counter("heartbeats_stored"))
        return iter((agents, ready, failing, stored))


def _fleet_families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily,
                               CounterMetricFamily]:
    return (GaugeMetricFamily("agent_center_agents", "Workstations by fleet state.",
                              labels=["state"]),
            GaugeMetricFamily("agent_center_agents_ready",
                              "Online workstations meeting call standards.", labels=["ready"]),
            GaugeMetricFamily("agent_center_failing_checks",
                              "Online workstations failing each check.", labels=["check"]),
            CounterMetricFamily("agent_center_heartbeats_stored",
                                "Heartbeats stored (every process and host on this database).",
                                labels=[]))


class CenterMetrics:
    """This process's counters and the registry ``/metrics`` renders (fleet included)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        shared = multiprocess_dir()
        self.registry = CollectorRegistry()
        # With several workers the counters live in the shared files, which the
        # MultiProcessCollector reads back for all of them: registering them here too would
        # count this worker twice.
        own = None if shared else self.registry
        heartbeats = Counter("agent_center_intake_heartbeats",
                             "Heartbeats this center took in since it started (all its worker "
                             "processes), by outcome.", ["status"], registry=own)
        self._stored = heartbeats.labels("stored")      # both series exist from the start
        self._duplicate = heartbeats.labels("duplicate")
        self._commits = Counter("agent_center_intake_commits",
                                "Intake transactions committed since the center started (each "
                                "holds every heartbeat request that arrived meanwhile).",
                                registry=own)
        if shared:
            from prometheus_client.multiprocess import MultiProcessCollector

            MultiProcessCollector(self.registry, path=shared)  # type: ignore[no-untyped-call]
        self.registry.register(FleetCollector(store, clock))

    def count_commit(self, stored: int, duplicate: int) -> None:
        """One intake group committed: ``stored`` new heartbeats, ``duplicate`` resends."""
        self._commits.inc()
        if stored:
            self._stored.inc(stored)
        if duplicate:
            self._duplicate.inc(duplicate)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition the scraper asked for (``Accept``: Prometheus text or OpenMetrics)
        and its content type. Reads the database: call it off the event loop."""
        try:
            encode, content_type = choose_encoder(accept or "")
        except (TypeError, ValueError):  # a version it cannot parse ("version=abc"): the default
            encode, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
        return encode(self.registry), content_type
