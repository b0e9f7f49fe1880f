"""The dashboard's own words in the reader's language (en, ja, ko, sv).

The pages (``static/index.html``, ``static/agent.html``, ``static/audit.html``, and
``static/sso.html``, the single sign-on's refusals) are served with the reader's language
(``center.viewer_language``: the language selector's cookie, else ``Accept-Language``) in
``<html lang>`` and the translations of :data:`UI_TEXT` and the check titles as a JSON block
(``<script type="application/json" id="ui-text">``, data, not code: the page's CSP allows no
inline script). ``common.js`` translates the static page with it and gives the scripts
``Center.t``. Every text of the pages and of the scripts' ``t("...")`` calls is listed here with
``N_`` so the catalogs carry it (``tests/test_dashboard_static.py`` checks the list is whole).
A workstation's messages are rendered by the API itself (``center.viewer_language``).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from agent_kit.core.checks import CATALOGUE, CHARTS
from agent_kit.core.i18n import LANGUAGE_NAMES, N_, SUPPORTED, translation
from agent_kit.core.results import UNIT_WORDS

UI_TEXT = (
    # the pages
    N_("Fleet · agent-center"), N_("Agent · agent-center"), N_("Skip to content"), N_("Main"),
    N_("Fleet"), N_("Log out"), N_("Sign in"),
    N_("Fleet summary"), N_("Connection"), N_("Online"), N_("Offline"),
    N_("Never seen"), N_("Retired"), N_("Call readiness"), N_("Ready"), N_("Not ready"),
    N_("Filter agents"), N_("Search"), N_("Hostname, name or agent id"), N_("State"),
    N_("Any state"), N_("Readiness"), N_("Any"), N_("Failing check"), N_("Any check"),
    N_("Clear"), N_("Export CSV"), N_("Agents of the fleet"), N_("Agent"),
    N_("Who cannot take calls first: not ready (the longest first), then offline, then ready"),
    N_("Reason"), N_("Since when the agent is ready, not ready or offline"), N_("Since"),
    N_("Last seen"), N_("Version"), N_("No agent matches these filters."), N_("Pages"),
    N_("Rows per page"), N_("Previous page"), N_("‹ Previous"), N_("Next page"),
    N_("Next ›"), N_("Breadcrumb"), N_("Login gate"), N_("Current problems"), N_("History"),
    N_("Period"), N_("Last heartbeat"), N_("Diagnosis reports"), N_("Language"),
    N_("Hostname"), N_("Agent id"), N_("Every check"),
    # sign-in with a user's key or the admin token; the audit page (static/audit.html)
    N_("Enter your key, or the admin token of this center."), N_("Key or admin token"),
    N_("Audit log · agent-center"), N_("Audit log"), N_("Filter the audit log"), N_("Who"),
    N_("For example user:sue or admin-token"), N_("What"), N_("Any action"), N_("From"),
    N_("Until"), N_("Time"), N_("On what"), N_("Details"), N_("From address"),
    N_("No event matches these filters."),
    # the scripts (t("..."))
    N_("No agents"), N_("Updated {time}"), N_("Ready since"),
    N_("Not ready since"), N_("Heartbeat interval"), N_("Agent version"), N_("Heartbeats"),
    N_("none"), N_("No heartbeat yet: the gate denies login."),
    N_("The agent is {state}: the center denies login until a fresh heartbeat "
       "arrives."),
    N_("Recovering: every check passes again. The gate reopens once they have kept passing "
       "for the policy's recovery time, so that nobody flaps in and out. It closed because:"),
    N_("No reason given."), N_("Fix: {fix}"), N_("No heartbeat yet."),
    N_("Every check passes."), N_("Measured"), N_("Check"), N_("Status"), N_("Value"),
    N_("No reports."), N_("Reports are not available: {error}"),
    N_("No diagnosis report uploaded. The agent sends one with"),
    N_("open"), N_("closed"), N_("no heartbeat"), N_("Login gate: no heartbeat in this period."),
    N_("Login gate: closed for about {minutes} min of this period."),
    N_("{count} heartbeats from {start} to {end}."),
    N_("{count} heartbeats from {start} to {end} (the last hours before the agent went quiet)."),
    N_("{title}: no readings in this period"), N_("{name}: latest {latest}, min {min}, max {max}"),
    N_("{title}, {start} to {end}."),
    N_("No heartbeat received yet."), N_("Agent not found"), N_("No agent has the id"),
    N_("No readings in this period"), N_("no reading"), N_("just now"), N_("{time} ago"),
    N_("in {time}"), N_("never"),
    N_("You are logged out."), N_("The center does not answer ({error})."),
    N_("pass"), N_("warn"), N_("fail"), N_("unknown"), N_("No data"),
    N_("That key or admin token is not valid."),
    # audit.js: the audit actions (center/audit.py AUDIT_ACTIONS) and the page's messages
    N_("Signed in"), N_("Sign-in refused"), N_("Signed out"), N_("Enrollment token made"),
    N_("Enrollment token revoked"), N_("Workstation retired"),
    N_("Workstation moved to another team"), N_("Gate key made"), N_("Gate key revoked"),
    N_("User made"), N_("User's role or teams changed"), N_("User given a new key"),
    N_("User deleted"), N_("Call standards policy changed"),
    N_("Call standards policy rolled back to an earlier version"),
    N_("Only an admin may read the audit log."),
    N_("Events {first} to {last} of {total}"), N_("Team"), N_("Teams"), N_("Role"),
    N_("Uses"), N_("Valid for"), N_("Note"), N_("Signed in with"), N_("From team"),
    N_("To team"), N_("Admin token"), N_("User's key"), N_("every team"), N_("{hours} h"),
    N_("Admin"), N_("Supervisor"), N_("Viewer"),
    # the overview's status, reason and since (app.js); the agent page's devices and gate
    N_("Offline, last: ready"), N_("Offline, last: not ready"),
    N_("Offline, last: not ready ({check})"), N_("not ready since {time}"),
    N_("ready since {time}"), N_("offline since {time}"), N_("Offline since"),
    N_("sound plays through {speaker}"), N_("Login is allowed."), N_("Login is denied."),
    # counts per team (index.html, app.js)
    N_("Counts per team"), N_("Any team"), N_("No team"),
    # single sign-on: the sign-in's button and the refusal page (static/sso.html; the
    # sentences are center/oidc.py's and api_oidc.py's refusals)
    N_("Sign in with SSO"), N_("Or, for IT: a key or the admin token"),
    N_("Sign-in · agent-center"), N_("Back to sign-in"),
    N_("This sign-in expired or was started in another window. Please sign in again."),
    N_("The identity provider did not confirm who you are, or its answer could not be "
       "verified. Please sign in again."),
    N_("The identity provider cannot be reached. Please try again later."),
    N_("You are signed in at the identity provider, but none of your groups gives you a role "
       "on this center. Ask IT to add you to one."),
    N_("Single sign-on is not set up on this center."),
)


def _catalogue_text() -> tuple[str, ...]:
    """The check titles, chart titles and series names (translated like the agent's)."""
    words: list[str] = [spec.title for spec in CATALOGUE]
    words += [chart.title for chart in CHARTS]
    words += [spec.series for spec in CATALOGUE if spec.series]
    words += list(UNIT_WORDS.values())   # unit words ("days"): common.js formatValue
    return tuple(dict.fromkeys(words))


@functools.cache
def ui_text(lang: str) -> dict[str, str]:
    """msgid -> text in ``lang`` for every dashboard word that the catalog translates (English:
    empty, the pages are written in it)."""
    if lang == "en":
        return {}
    t = translation(lang)
    out = {}
    for msgid in (*UI_TEXT, *_catalogue_text()):
        text = t.gettext(msgid)
        if text != msgid:
            out[msgid] = text
    return out


@functools.cache
def page(path: Path, lang: str) -> str:
    """The page at ``path`` for a reader of ``lang``: its ``<html lang>``, and the translations
    and the language choices as a JSON data block the scripts read."""
    html = path.read_text("utf-8")
    data = {"lang": lang, "text": ui_text(lang),
            "languages": [[code, LANGUAGE_NAMES[code]] for code in SUPPORTED]}
    # "</" cannot end the block early: JSON allows "\/" for "/"
    block = ('<script type="application/json" id="ui-text">'
             + json.dumps(data, ensure_ascii=False).replace("</", "<\\/") + "</script>\n")
    html = html.replace('<html lang="en">', f'<html lang="{lang}">', 1)
    return html.replace("</head>", block + "</head>", 1)
