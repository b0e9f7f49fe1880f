"""The alert queries (both dialects): what the rules read of the fleet (``agents`` only, never
``heartbeats``), the incidents, and their outbox of deliveries.

Every change that must happen once, whichever of several center processes gets there first,
is a conditional statement whose row count tells the winner: a live incident is unique per
rule and subject (a partial unique index), it is opened (``pending`` -> ``open``) and resolved
(``open`` -> ``resolved``) by one UPDATE each, and the deliveries are written in that same
transaction, by the one process whose UPDATE matched. A delivery is sent by the process that
claimed it (``due`` -> ``sending`` with a lease); a process that dies mid-send leaves a lease
that runs out, and another process sends it again (the one case where a channel may get an
event twice).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from agent_kit.center.alert_text import OPENED, RESOLVED, IncidentEvent
from agent_kit.center.database import Database, Tx

PENDING, OPEN, CLOSED = "pending", "open", "resolved"
DUE, SENDING, SENT, FAILED = "due", "sending", "sent", "failed"


@dataclass(frozen=True)
class LiveIncident:
    incident_id: str
    rule: str
    subject: str
    state: str                   # pending or open
    since: float
    clear_since: float | None


@dataclass(frozen=True)
class Delivery:
    incident_id: str
    event: str
    channel: str
    tries: int
    created_at: float


@dataclass(frozen=True)
class DeliveryState:
    channel: str
    event: str
    state: str
    tries: int
    sent_at: float | None
    last_error: str | None


@dataclass(frozen=True)
class IncidentRow:
    event: IncidentEvent         # its event is the latest one (opened, or resolved)
    state: str
    deliveries: tuple[DeliveryState, ...]


_EVENT_COLUMNS = ("incident_id, rule, kind, subject, state, since, opened_at, resolved_at, "
                  "facts, resolved_facts")


def _event(row: tuple[Any, ...], event: str | None = None) -> IncidentEvent:
    state = str(row[4])
    return IncidentEvent(
        incident_id=str(row[0]), rule=str(row[1]), kind=str(row[2]), subject=str(row[3]),
        event=event or (RESOLVED if state == CLOSED else OPENED), since=float(row[5]),
        opened_at=None if row[6] is None else float(row[6]),
        resolved_at=None if row[7] is None else float(row[7]), facts=json.loads(row[8]),
        resolved_facts=None if row[9] is None else json.loads(row[9]))


def _scope(team: str | None, per_team: bool = False) -> tuple[str, list[Any]]:
    """The WHERE part that keeps a rule to one team's workstations (none: the fleet); a rule
    per team watches the workstations that have one."""
    if team is not None:
        return " AND team = ?", [team]
    return (" AND team IS NOT NULL", []) if per_team else ("", [])


class IncidentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- what the rules read --------------------------------------------------------------
    def offline_agents(self, before: float, team: str | None
                       ) -> list[tuple[str, str, float, str | None]]:
        """Workstations offline since before ``before``: ``(agent_id, name, went_offline_at,
        team)``."""
        where, params = _scope(team)
        with self.db.transaction() as tx:
            rows = tx.all("SELECT agent_id, COALESCE(display_name, hostname), deadline, "
                          f"{self._team()} FROM agents WHERE retired_at IS NULL AND last_seen "
                          f"IS NOT NULL AND deadline < ?{where}", [before, *params])
        return [(str(a), str(n), float(d), t) for a, n, d, t in rows]

    def not_ready_agents(self, now: float, team: str | None
                         ) -> list[tuple[str, str, list[str], str | None]]:
        """Online workstations whose gate is closed: ``(agent_id, name, failing, team)``."""
        where, params = _scope(team)
        with self.db.transaction() as tx:
            rows = tx.all("SELECT agent_id, COALESCE(display_name, hostname), failing, "
                          f"{self._team()} FROM agents WHERE retired_at IS NULL AND deadline "
                          f">= ? AND ready = 0{where}", [now, *params])
        return [(str(a), str(n), [c for c in str(f).split(",") if c], t)
                for a, n, f, t in rows]

    def readiness_counts(self, now: float, team: str | None, per_team: bool
                         ) -> dict[str | None, tuple[int, int]]:
        """Per team (or None: the scope as one) ``(not ready, online)``."""
        where, params = _scope(team, per_team)
        # PostgreSQL refuses GROUP BY NULL: the whole scope is one row without a GROUP BY
        team_col, group = (self._team(), f" GROUP BY {self._team()}") if per_team \
            else ("NULL", "")
        with self.db.transaction() as tx:
            rows = tx.all(f"SELECT {team_col}, SUM(CASE WHEN ready = 0 THEN 1 ELSE 0 END), "
                          "COUNT(*) FROM agents WHERE retired_at IS NULL AND deadline >= ?"
                          f"{where}{group}", [now, *params])
        return {(None if t is None else str(t)): (int(n or 0), int(c)) for t, n, c in rows}

    def failing_counts(self, seen_after: float, team: str | None, per_team: bool
                       ) -> dict[str | None, tuple[int, dict[str, int]]]:
        """Per team (or None), workstations seen after ``seen_after`` (their deadline is later)
        and how many of them failed each check in their latest heartbeat."""
        where, params = _scope(team, per_team)
        team_col, group = (self._team(), f"{self._team()}, ") if per_team else ("NULL", "")
        with self.db.transaction() as tx:
            rows = tx.all(f"SELECT {team_col}, failing, COUNT(*) FROM agents WHERE retired_at "
                          f"IS NULL AND deadline >= ?{where} GROUP BY {group}failing",
                          [seen_after, *params])
        out: dict[str | None, tuple[int, dict[str, int]]] = {}
        for t, failing, n in rows:
            key = None if t is None else str(t)
            seen, tally = out.get(key, (0, {}))
            for check_id in str(failing).split(","):
                if check_id:
                    tally[check_id] = tally.get(check_id, 0) + int(n)
            out[key] = (seen + int(n), tally)
        return out

    @staticmethod
    def _team() -> str:
        return "team"

    # -- incidents ------------------------------------------------------------------------
    def live(self) -> list[LiveIncident]:
        with self.db.transaction() as tx:
            rows = tx.all("SELECT incident_id, rule, subject, state, since, clear_since FROM "
                          "incidents WHERE state <> ?", (CLOSED,))
        return [LiveIncident(str(i), str(r), str(s), str(st), float(si),
                             None if c is None else float(c)) for i, r, s, st, si, c in rows]

    def add_pending(self, rule: str, kind: str, subject: str, since: float,
                    facts: dict[str, Any]) -> bool:
        """A new pending incident; False when one is live already (made elsewhere)."""
        with self.db.transaction(write=True) as tx:
            return tx.rowcount(
                "INSERT INTO incidents (incident_id, rule, kind, subject, state, since, facts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (secrets.token_hex(8), rule, kind, subject, PENDING, since,
                 json.dumps(facts))) == 1

    def drop_pending(self, incident_id: str) -> None:
        """A pending incident whose condition went before its duration: never was one."""
        with self.db.transaction(write=True) as tx:
            tx.execute("DELETE FROM incidents WHERE incident_id = ? AND state = ?",
                       (incident_id, PENDING))

    def open(self, incident_id: str, now: float, facts: dict[str, Any],
             channels: tuple[str, ...]) -> bool:
        """Open a pending incident and queue its delivery to ``channels``; True for the one
        process that did."""
        with self.db.transaction(write=True) as tx:
            if tx.rowcount("UPDATE incidents SET state = ?, opened_at = ?, facts = ? WHERE "
                           "incident_id = ? AND state = ?",
                           (OPEN, now, json.dumps(facts), incident_id, PENDING)) != 1:
                return False
            self._queue(tx, incident_id, OPENED, channels, now)
        return True

    def set_clearing(self, incident_id: str, clear_since: float | None) -> None:
        """An open incident's condition went (``clear_since``) or came back (None)."""
        with self.db.transaction(write=True) as tx:
            tx.execute("UPDATE incidents SET clear_since = ? WHERE incident_id = ? AND "
                       "state = ?", (clear_since, incident_id, OPEN))

    def resolve(self, incident_id: str, now: float, facts: dict[str, Any] | None,
                channels: tuple[str, ...]) -> bool:
        """Resolve an open incident and queue the recovery to ``channels`` (none: resolved
        quietly, its rule is gone); True for the one process that did."""
        with self.db.transaction(write=True) as tx:
            if tx.rowcount("UPDATE incidents SET state = ?, resolved_at = ?, resolved_facts = ?"
                           " WHERE incident_id = ? AND state = ?",
                           (CLOSED, now, None if facts is None else json.dumps(facts),
                            incident_id, OPEN)) != 1:
                return False
            self._queue(tx, incident_id, RESOLVED, channels, now)
        return True

    @staticmethod
    def _queue(tx: Tx, incident_id: str, event: str, channels: tuple[str, ...],
               now: float) -> None:
        for channel in channels:
            tx.execute("INSERT INTO incident_deliveries (incident_id, event, channel, state, "
                       "created_at, next_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       (incident_id, event, channel, DUE, now, now))

    def incident(self, incident_id: str, event: str) -> IncidentEvent | None:
        with self.db.transaction() as tx:
            row = tx.one(f"SELECT {_EVENT_COLUMNS} FROM incidents WHERE incident_id = ?",
                         (incident_id,))
        return _event(row, event) if row else None

    def incidents(self, state: str | None, limit: int) -> list[IncidentRow]:
        """Opened incidents, newest first (``state``: open or resolved only), with the state
        of each delivery."""
        where, params = ("state <> ?", [PENDING]) if state is None else ("state = ?", [state])
        with self.db.transaction() as tx:
            rows = tx.all(f"SELECT {_EVENT_COLUMNS} FROM incidents WHERE {where} "
                          "ORDER BY opened_at DESC, incident_id LIMIT ?", [*params, limit])
            ids = [r[0] for r in rows]
            found: dict[str, list[DeliveryState]] = {i: [] for i in ids}
            if ids:
                marks = ", ".join("?" for _ in ids)
                for i, ch, ev, st, n, at, err in tx.all(
                        "SELECT incident_id, channel, event, state, tries, sent_at, last_error "
                        f"FROM incident_deliveries WHERE incident_id IN ({marks}) "
                        "ORDER BY created_at, channel", ids):
                    found[str(i)].append(DeliveryState(str(ch), str(ev), str(st), int(n),
                                                       None if at is None else float(at), err))
        return [IncidentRow(_event(r), str(r[4]), tuple(found[str(r[0])])) for r in rows]

    # -- the outbox -----------------------------------------------------------------------
    def due(self, now: float, limit: int = 50) -> list[Delivery]:
        """Deliveries to send now: due, or claimed by a process whose lease ran out. A
        recovery waits while the same channel's opening of that incident is still to send."""
        with self.db.transaction() as tx:
            rows = tx.all(
                "SELECT d.incident_id, d.event, d.channel, d.tries, d.created_at FROM "
                "incident_deliveries d WHERE ((d.state = ? AND d.next_at <= ?) OR "
                "(d.state = ? AND d.lease_until < ?)) AND NOT (d.event = ? AND EXISTS ("
                "SELECT 1 FROM incident_deliveries o WHERE o.incident_id = d.incident_id AND "
                "o.channel = d.channel AND o.event = ? AND o.state IN (?, ?))) "
                "ORDER BY d.created_at, d.incident_id, d.event LIMIT ?",
                (DUE, now, SENDING, now, RESOLVED, OPENED, DUE, SENDING, limit))
        return [Delivery(str(i), str(e), str(c), int(n), float(at)) for i, e, c, n, at in rows]

    def claim(self, d: Delivery, now: float, lease_s: float) -> bool:
        """Take a delivery for this process (for ``lease_s``); False when another has it."""
        with self.db.transaction(write=True) as tx:
            return tx.rowcount(
                "UPDATE incident_deliveries SET state = ?, lease_until = ?, tries = tries + 1 "
                "WHERE incident_id = ? AND event = ? AND channel = ? AND tries = ? AND "
                "((state = ? AND next_at <= ?) OR (state = ? AND lease_until < ?))",
                (SENDING, now + lease_s, d.incident_id, d.event, d.channel, d.tries, DUE, now,
                 SENDING, now)) == 1

    def finish(self, d: Delivery, state: str, now: float, next_at: float | None = None,
               error: str | None = None) -> None:
        """After a round: ``sent``, ``failed`` (given up), or ``due`` again at ``next_at``."""
        with self.db.transaction(write=True) as tx:
            tx.execute("UPDATE incident_deliveries SET state = ?, next_at = COALESCE(?, next_at),"
                       " lease_until = NULL, sent_at = ?, last_error = ? WHERE incident_id = ? "
                       "AND event = ? AND channel = ? AND state = ?",
                       (state, next_at, now if state == SENT else None, error, d.incident_id,
                        d.event, d.channel, SENDING))
