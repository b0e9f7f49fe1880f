"""The call-standards policy, edited and versioned in the center's database (``policy_versions``,
migration 6), and the effective policy of each workstation.

Two scopes: the fleet (``team`` NULL) and a team's override. Each change is a new row; a scope's
active version is its newest row; a rollback records a new row with an older row's text. A
workstation's *effective* policy is the shipped default, the fleet's active text merged over it,
then its team's override merged over that (:func:`agent_kit.core.policy.load_policy_layers`, the
merge ``--policy`` has always made over the default), and its *tag* names that combination.

Every text is validated with the agent's own parser before it is stored, and so is every team's
merge over a new fleet text: a change the workstations could not apply is refused
(:class:`PolicyRefused`, answered 422 with the parser's reason) and nothing is stored.

:class:`PolicyBook` keeps the effective policies and each workstation's team in memory for the
heartbeat acknowledgement and the gate, refreshed every ``REFRESH_S`` (a change made through
another process of the center, or the CLI, reaches this one within that time; one made here at
once).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_kit.center.audit import AuditEvent, record
from agent_kit.center.database import Database, Tx
from agent_kit.core.policy import Policy, PolicyError, default_policy_text, load_policy_layers

log = logging.getLogger("agent_kit.center.policy")

REFRESH_S = 10.0        # effective policies re-read at most this often per process
TEAM_CACHE_S = 300.0    # a workstation's team re-read at most this often (moves are rare; the
#                         process that moves one forgets it at once)
MAX_TOML_CHARS = 64 * 1024
SERVE_AUTHOR = "serve --policy"
_COLUMNS = ("version_id, team, toml, tag, name, version, author, comment, created_at, "
            "rollback_of")


class PolicyRefused(ValueError):
    """A policy change the center does not store; ``str()`` is the parser's reason."""


@dataclass(frozen=True)
class PolicyVersion:
    """One stored change of one scope (``team`` None: the fleet)."""

    version_id: int
    team: str | None
    toml: str | None         # None: the team's override removed
    tag: str                 # sha256 of the text (of "" when removed), hex
    name: str | None         # the policy's ``name``/``version`` keys, when the text sets them
    version: str | None
    author: str
    comment: str | None
    created_at: float
    rollback_of: int | None

    @property
    def scope(self) -> str:
        return "fleet" if self.team is None else "team"


@dataclass(frozen=True)
class PolicyLayer:
    """One text merged over the default, as workstations receive it."""

    scope: str               # "fleet" or "team"
    team: str | None
    version_id: int
    toml: str

    @property
    def source(self) -> str:
        where = "fleet" if self.team is None else f"team {self.team}"
        return f"center policy ({where}, version {self.version_id})"


@dataclass(frozen=True)
class EffectivePolicy:
    """What a workstation of ``team`` runs, and what the center's gate judges it by."""

    team: str | None
    layers: tuple[PolicyLayer, ...]
    tag: str
    policy: Policy = field(compare=False, repr=False)

    @property
    def fleet_toml(self) -> str:
        """The fleet's text (the shipped default when the fleet has no version): what centers
        before versioning served as ``toml``, merged over the default by every agent."""
        fleet = next((layer for layer in self.layers if layer.team is None), None)
        return fleet.toml if fleet else default_policy_text()


def text_tag(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def effective_tag(layers: Sequence[PolicyLayer]) -> str:
    """The tag of a combination of layers: 16 hex digits of sha256 over each layer's scope and
    text, so that a rollback to the same text gives the same tag (nothing to refetch)."""
    digest = hashlib.sha256(b"agent-kit policy layers v1")
    for layer in layers:
        digest.update(b"\0" + layer.scope.encode() + b"\0" + (layer.team or "").encode("utf-8")
                      + b"\0" + layer.toml.encode("utf-8"))
    return digest.hexdigest()[:16]


def build_effective(team: str | None, fleet: PolicyVersion | None,
                    override: PolicyVersion | None) -> EffectivePolicy:
    """The effective policy of these active versions (raises PolicyError if they do not
    merge: refused before storing, so only for rows written around this module)."""
    layers: list[PolicyLayer] = []
    for row in (fleet, override):
        if row is not None and row.toml is not None:
            layers.append(PolicyLayer(row.scope, row.team, row.version_id, row.toml))
    policy = load_policy_layers([(layer.toml, layer.source) for layer in layers])
    return EffectivePolicy(team, tuple(layers), effective_tag(layers), policy)


# -- queries ------------------------------------------------------------------------------------
def _row(values: tuple[Any, ...]) -> PolicyVersion:
    (version_id, team, toml, tag, name, version, author, comment, created_at,
     rollback_of) = values
    return PolicyVersion(int(version_id), team, toml, str(tag), name, version, str(author),
                         comment, float(created_at),
                         None if rollback_of is None else int(rollback_of))


def _active(tx: Tx, team: str | None) -> PolicyVersion | None:
    if team is None:
        row = tx.one(f"SELECT {_COLUMNS} FROM policy_versions WHERE team IS NULL "
                     "ORDER BY version_id DESC LIMIT 1")
    else:
        row = tx.one(f"SELECT {_COLUMNS} FROM policy_versions WHERE team = ? "
                     "ORDER BY version_id DESC LIMIT 1", (team,))
    return _row(row) if row else None


def active_version(db: Database, team: str | None) -> PolicyVersion | None:
    """The active version of a scope (None: the fleet has none, the team no override)."""
    with db.transaction() as tx:
        return _active(tx, team)


def get_version(db: Database, version_id: int) -> PolicyVersion | None:
    with db.transaction() as tx:
        row = tx.one(f"SELECT {_COLUMNS} FROM policy_versions WHERE version_id = ?",
                     (version_id,))
    return _row(row) if row else None


def list_versions(db: Database, team: str | None = None, *, every_scope: bool = False,
                  limit: int = 100) -> list[PolicyVersion]:
    """The newest first: of the fleet (``team`` None), of one team, or of every scope."""
    with db.transaction() as tx:
        if every_scope:
            rows = tx.all(f"SELECT {_COLUMNS} FROM policy_versions ORDER BY version_id DESC "
                          "LIMIT ?", (limit,))
        elif team is None:
            rows = tx.all(f"SELECT {_COLUMNS} FROM policy_versions WHERE team IS NULL "
                          "ORDER BY version_id DESC LIMIT ?", (limit,))
        else:
            rows = tx.all(f"SELECT {_COLUMNS} FROM policy_versions WHERE team = ? "
                          "ORDER BY version_id DESC LIMIT ?", (team, limit))
    return [_row(r) for r in rows]


def effective_for(db: Database, team: str | None) -> EffectivePolicy:
    """The effective policy of ``team`` from its scopes' active versions. Should they not merge
    here (a version written by a newer agent-center that knows check ids this one does not, in
    a rolling upgrade; a row written by hand), the newest versions this center can read are
    used, and the error is logged once per version: the center serves only what its gate can
    judge by."""
    with db.transaction() as tx:
        fleets = [_row(r) for r in tx.all(f"SELECT {_COLUMNS} FROM policy_versions WHERE team "
                                          "IS NULL ORDER BY version_id DESC LIMIT ?",
                                          (FALLBACK_DEPTH,))]
        overrides = [_row(r) for r in tx.all(f"SELECT {_COLUMNS} FROM policy_versions WHERE "
                                             "team = ? ORDER BY version_id DESC LIMIT ?",
                                             (team, FALLBACK_DEPTH))] if team is not None else []
    for fleet in fleets or [None]:
        for override in overrides or [None]:
            try:
                return build_effective(team, fleet, override)
            except PolicyError as exc:
                key = (fleet.version_id if fleet else 0, override.version_id if override else 0)
                if key not in _UNREADABLE and len(_UNREADABLE) < 1000:
                    _UNREADABLE.add(key)
                    log.error("policy versions %s cannot be applied by this center (%s): the "
                              "newest readable ones are served", key, exc)
    return build_effective(team, None, None)


FALLBACK_DEPTH = 20     # versions of a scope tried when the newest cannot be read
_UNREADABLE: set[tuple[int, int]] = set()   # (fleet, team) version ids already logged


def _teams_with_override(tx: Tx) -> list[str]:
    rows = tx.all("SELECT DISTINCT team FROM policy_versions WHERE team IS NOT NULL")
    teams = []
    for (team,) in rows:
        active = _active(tx, team)
        if active is not None and active.toml is not None:
            teams.append(str(team))
    return sorted(teams)


def _validate_change(tx: Tx, team: str | None, toml: str | None) -> tuple[str | None,
                                                                          str | None]:
    """Refuse (PolicyRefused) a text the agent's parser refuses, alone or merged: a fleet text
    over the default and under every team's override, a team's over the fleet's. Returns the
    text's ``name`` and ``version`` as merged."""
    if toml is None:
        if team is None:
            raise PolicyRefused("the fleet policy cannot be removed; set a new version")
        return None, None
    if len(toml) > MAX_TOML_CHARS:
        raise PolicyRefused(f"the policy has {len(toml)} characters; at most {MAX_TOML_CHARS}")
    label = "fleet" if team is None else f"team {team}"
    try:
        if team is None:
            merged = load_policy_layers([(toml, f"new {label} policy")])
            for other in _teams_with_override(tx):
                override = _active(tx, other)
                assert override is not None and override.toml is not None
                load_policy_layers([(toml, f"new {label} policy"),
                                    (override.toml, f"team {other}'s override (version "
                                     f"{override.version_id}) over the new fleet policy")])
        else:
            fleet = _active(tx, None)
            layers = [(fleet.toml, f"fleet policy (version {fleet.version_id})")] \
                if fleet is not None and fleet.toml is not None else []
            merged = load_policy_layers([*layers, (toml, f"new {label} override")])
    except PolicyError as exc:
        raise PolicyRefused(str(exc)) from None
    return merged.name, merged.version


def _lock(tx: Tx, db: Database) -> None:
    """One policy change at a time across the center's processes (SQLite: the write lock)."""
    if db.dialect == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(727375)")


def _insert(tx: Tx, team: str | None, toml: str | None, name: str | None,
            version: str | None, author: str, comment: str | None, now: float,
            rollback_of: int | None) -> PolicyVersion:
    row = tx.one(f"INSERT INTO policy_versions (team, toml, tag, name, version, author, comment,"
                 f" created_at, rollback_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                 f"RETURNING {_COLUMNS}",
                 (team, toml, text_tag(toml or ""), name, version, author, comment, now,
                  rollback_of))
    assert row is not None
    return _row(row)


def _audit(tx: Tx, event: AuditEvent | None, row: PolicyVersion, now: float) -> None:
    """The change's audit event, in its transaction, with what it made."""
    if event is None:
        return
    detail = {**event.detail, "version_id": row.version_id, "tag": row.tag[:16],
              "removed": row.toml is None}
    if row.rollback_of is not None:
        detail["rollback_of"] = row.rollback_of
    if row.comment:
        detail["comment"] = row.comment
    target = event.target or ("fleet" if row.team is None else f"team:{row.team}")
    record(tx, dataclasses.replace(event, target=target, detail=detail), now)


def add_version(db: Database, team: str | None, toml: str | None, *, author: str,
                comment: str | None, now: float, rollback_of: int | None = None,
                only_if_changed: bool = False,
                audit: AuditEvent | None = None) -> PolicyVersion | None:
    """Validate and store a new active version of a scope (with ``audit``, its event in the
    same transaction); raises PolicyRefused. With ``only_if_changed``, nothing is stored (None)
    when the text is the active one's."""
    with db.transaction(write=True) as tx:
        _lock(tx, db)
        if only_if_changed:
            active = _active(tx, team)
            if active is not None and active.toml == toml:
                return None
        name, version = _validate_change(tx, team, toml)
        row = _insert(tx, team, toml, name, version, author, comment, now, rollback_of)
        _audit(tx, audit, row, now)
        return row


def roll_back(db: Database, version_id: int, *, author: str, comment: str | None,
              now: float, audit: AuditEvent | None = None) -> PolicyVersion:
    """Make an older version's text active again in its scope, recorded as a new version
    (``rollback_of``); raises LookupError for an unknown version, PolicyRefused if its text no
    longer merges (a team override under today's fleet policy)."""
    with db.transaction(write=True) as tx:
        _lock(tx, db)
        row = tx.one(f"SELECT {_COLUMNS} FROM policy_versions WHERE version_id = ?",
                     (version_id,))
        if row is None:
            raise LookupError(f"no policy version {version_id}")
        old = _row(row)
        name, version = _validate_change(tx, old.team, old.toml)
        row = _insert(tx, old.team, old.toml, name, version, author,
                      comment or f"rollback to version {old.version_id}", now, old.version_id)
        _audit(tx, audit, row, now)
        return row


def seed_from_serve(db: Database, path: str | None, now: float) -> PolicyVersion | None:
    """The ``serve --policy`` file at start: it becomes the fleet's new version when it differs
    from the active one (the first one on a database without any), recorded with the author
    ``serve --policy``; the same file again stores nothing. Without ``--policy`` the database's
    version stays active (the shipped default when there is none). Raises PolicyRefused."""
    if path is None:
        return None
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyRefused(f"{path}: cannot read: {exc}") from None
    return add_version(db, None, text, author=SERVE_AUTHOR, comment=f"from {path}", now=now,
                       only_if_changed=True,
                       audit=AuditEvent(SERVE_AUTHOR, "local", "policy.change", "fleet"))


def diff_versions(a: PolicyVersion, b: PolicyVersion) -> str:
    """A unified diff of two versions' texts (a removed override as an empty text)."""
    import difflib

    return "".join(difflib.unified_diff(
        (a.toml or "").splitlines(keepends=True), (b.toml or "").splitlines(keepends=True),
        fromfile=f"version {a.version_id}", tofile=f"version {b.version_id}"))


# -- the per-process cache ----------------------------------------------------------------------
@dataclass
class PolicyBook:
    """Effective policies by team and each workstation's team, cached for the hot paths."""

    db: Database
    team_of_agent: Callable[[str], str | None]     # the store's lookup (agents.team)
    clock: Callable[[], float] = time.monotonic
    _effective: dict[str | None, tuple[float, EffectivePolicy]] = field(default_factory=dict)
    _teams: dict[str, tuple[float, str | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def effective(self, team: str | None) -> EffectivePolicy:
        """The effective policy of ``team`` (None: the fleet's), re-read after REFRESH_S."""
        cached = self._effective.get(team)
        if cached is not None and self.clock() - cached[0] < REFRESH_S:
            return cached[1]
        fresh = effective_for(self.db, team)
        with self._lock:
            if len(self._effective) > 10_000:
                self._effective.clear()
            self._effective[team] = (self.clock(), fresh)
        return fresh

    def cached_for_agent(self, agent_id: str) -> EffectivePolicy | None:
        """The workstation's effective policy if both its team and that policy are fresh in
        the cache (no database read: the heartbeat route's event loop asks this first)."""
        now = self.clock()
        team = self._teams.get(agent_id)
        if team is None or now - team[0] >= TEAM_CACHE_S:
            return None
        cached = self._effective.get(team[1])
        if cached is None or now - cached[0] >= REFRESH_S:
            return None
        return cached[1]

    def for_agent(self, agent_id: str) -> EffectivePolicy:
        """The workstation's effective policy (its team's; the fleet's when it has none)."""
        cached = self._teams.get(agent_id)
        if cached is not None and self.clock() - cached[0] < TEAM_CACHE_S:
            team = cached[1]
        else:
            team = self.team_of_agent(agent_id)
            with self._lock:
                if len(self._teams) > 200_000:
                    self._teams.clear()
                self._teams[agent_id] = (self.clock(), team)
        return self.effective(team)

    def forget_agent(self, agent_id: str) -> None:
        """The workstation changed teams (in this process): read its team again."""
        self._teams.pop(agent_id, None)

    def changed(self) -> None:
        """A change made by this process: read again at the next use."""
        with self._lock:
            self._effective.clear()
