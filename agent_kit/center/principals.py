"""Who may do what at the center: the principals, their roles, and every route's rule.

A *principal* is whoever a request (or a dashboard session) acts for: the break-glass admin
token, a named user (``agent-center user create``, an API key of their own), a person signed in
by OpenID Connect, a gate client (gate key) or a workstation (HMAC signature). Its *role*:

- ``admin``: everything;
- ``supervisor``: reads, and retires, only the workstations of its teams; makes and revokes
  enrollment tokens only for its teams (at least one team);
- ``viewer``: reads only: the workstations of its teams, or of every team (and those of no
  team) when it was given none;
- ``gate``: the ACD's gate keys: the gate decision only;
- ``workstation``: a workstation's own calls (heartbeats, its policy, its gate, its reports).

Only an admin changes the policy; supervisors and viewers read it and its versions.

Every route of the app has a rule in :data:`ROUTE_ACCESS` (``app.create_app`` refuses to start
otherwise, and tests/test_center_roles.py checks each role on each route over HTTP). A
workstation of a team the principal does not see is answered as unknown: 404, the same as a
workstation that does not exist (no oracle for other teams' ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "supervisor", "viewer", "gate", "workstation"]
PERSON_ROLES: tuple[Role, ...] = ("admin", "supervisor", "viewer")
ADMIN_TOKEN_SUBJECT = "admin-token"


@dataclass(frozen=True)
class Principal:
    """Who a request acts for. ``subject`` is what the audit log names ("admin-token",
    "user:alice", "oidc:alice@example.com", "gate-key:3f2a...", "workstation:ws-..."); ``teams``
    None means every team (an admin; a viewer given no teams)."""

    role: Role
    subject: str
    teams: frozenset[str] | None = None
    agent_id: str | None = None
    user_id: str | None = None   # a named user's id (their session ends with their key)

    def sees_team(self, team: str | None) -> bool:
        """Whether this principal may see a workstation (or token) of ``team`` (None: none)."""
        if self.role == "admin":
            return True
        if self.role not in ("supervisor", "viewer"):
            return False
        return self.teams is None or (team is not None and team in self.teams)

    @property
    def team_scope(self) -> tuple[str, ...] | None:
        """The teams a fleet query is limited to; None: not limited."""
        if self.role == "admin" or self.teams is None:
            return None
        return tuple(sorted(self.teams))

    def to_json(self) -> dict[str, object]:
        return {"subject": self.subject, "role": self.role,
                "teams": None if self.teams is None else sorted(self.teams)}


@dataclass(frozen=True)
class Action:
    """What a route does, who may, and in words what it is (for a 403's reason)."""

    roles: frozenset[Role]
    what: str
    # only principals that see every team (a metrics scrape spans the whole fleet)
    every_team: bool = False


def _action(what: str, *roles: Role, every_team: bool = False) -> Action:
    return Action(frozenset(roles), what, every_team)


PUBLIC = "public"
ACTIONS: dict[str, Action] = {
    "fleet.read": _action("read the fleet", "admin", "supervisor", "viewer"),
    "agent.retire": _action("retire a workstation", "admin", "supervisor"),
    "agent.move": _action("move a workstation to another team", "admin"),
    "token.read": _action("list enrollment tokens", "admin", "supervisor"),
    "token.write": _action("make or revoke enrollment tokens", "admin", "supervisor"),
    "user.admin": _action("manage users", "admin"),
    "audit.read": _action("read the audit log", "admin"),
    "policy.read": _action("read the policy", "admin", "supervisor", "viewer", "workstation"),
    "policy.history": _action("read the policy's versions", "admin", "supervisor", "viewer"),
    "policy.write": _action("change the policy", "admin"),
    "gate.ask": _action("ask the gate", "admin", "gate", "workstation"),
    "metrics.read": _action("read the metrics", "admin", "viewer", every_team=True),
    # an incident may name any team's workstations, or count the whole fleet
    "incidents.read": _action("read the alert incidents", "admin", "viewer", every_team=True),
    "session.read": _action("read who is signed in", "admin", "supervisor", "viewer"),
    "workstation": _action("send a workstation's data", "workstation"),
}

# (method, path) -> an ACTIONS key, or PUBLIC (no credential; pages are shells whose data
# comes from the API routes, which enforce). HEAD is answered as GET.
ROUTE_ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/clearance-key"): PUBLIC,
    ("POST", "/api/v1/enroll"): PUBLIC,           # the enrollment token is the credential
    ("POST", "/api/v1/test-call"): PUBLIC,        # throttled per address
    ("POST", "/api/v1/session"): PUBLIC,          # the login: a credential in the body
    ("DELETE", "/api/v1/session"): PUBLIC,        # the logout always works
    ("GET", "/auth/oidc/login"): PUBLIC,          # single sign-on: to the provider
    ("GET", "/auth/oidc/callback"): PUBLIC,       # ... and back: its validated answer
    ("GET", "/api/v1/session"): "session.read",
    ("POST", "/api/v1/heartbeats"): "workstation",
    ("POST", "/api/v1/reports"): "workstation",
    ("GET", "/api/v1/policy"): "policy.read",
    ("GET", "/api/v1/policy/versions"): "policy.history",
    ("GET", "/api/v1/policy/versions/{version_id}"): "policy.history",
    ("GET", "/api/v1/policy/diff"): "policy.history",
    ("POST", "/api/v1/policy/versions"): "policy.write",
    ("POST", "/api/v1/policy/rollback"): "policy.write",
    ("GET", "/api/v1/gate/{agent_id}"): "gate.ask",
    ("GET", "/metrics"): "metrics.read",
    ("POST", "/api/v1/tokens"): "token.write",
    ("GET", "/api/v1/tokens"): "token.read",
    ("DELETE", "/api/v1/tokens/{token_id}"): "token.write",
    ("GET", "/api/v1/agents"): "fleet.read",
    ("GET", "/api/v1/agents.csv"): "fleet.read",
    ("GET", "/api/v1/agents/{agent_id}"): "fleet.read",
    ("PATCH", "/api/v1/agents/{agent_id}"): "agent.move",
    ("GET", "/api/v1/agents/{agent_id}/heartbeats"): "fleet.read",
    ("POST", "/api/v1/agents/{agent_id}/retire"): "agent.retire",
    ("GET", "/api/v1/agents/{agent_id}/reports"): "fleet.read",
    ("GET", "/api/v1/agents/{agent_id}/reports/{report_id}"): "fleet.read",
    ("GET", "/api/v1/users"): "user.admin",
    ("POST", "/api/v1/users"): "user.admin",
    ("PATCH", "/api/v1/users/{name}"): "user.admin",
    ("DELETE", "/api/v1/users/{name}"): "user.admin",
    ("POST", "/api/v1/users/{name}/key"): "user.admin",
    ("GET", "/api/v1/audit"): "audit.read",
    ("GET", "/api/v1/audit.csv"): "audit.read",
    ("GET", "/api/v1/incidents"): "incidents.read",
    # dashboard pages and files (public shells)
    ("GET", "/"): PUBLIC,
    ("GET", "/agents/{agent_id}"): PUBLIC,
    ("GET", "/audit"): PUBLIC,
    ("GET", "/favicon.ico"): PUBLIC,
    ("MOUNT", "/static"): PUBLIC,
    ("MOUNT", "/speedtest"): PUBLIC,              # the bandwidth endpoint, budget per address
}


def route_rule(method: str, path: str) -> str | None:
    """The rule of a route (``ROUTE_ACCESS``), None when it has none."""
    return ROUTE_ACCESS.get(("GET" if method == "HEAD" else method, path))


def refusal(principal: Principal, action_name: str) -> str | None:
    """Why ``principal`` may not do ``action_name`` (a sentence for the 403), or None."""
    action = ACTIONS[action_name]
    needs = " or ".join(sorted(action.roles))
    if principal.role not in action.roles:
        return f"the {principal.role} role may not {action.what} (it needs: {needs})"
    if action.every_team and principal.team_scope is not None:
        return (f"a {principal.role} of only {', '.join(principal.team_scope)} may not "
                f"{action.what}: that needs a principal who sees every team")
    return None
