"""Self-diagnosis: "why does my call sound bad?" -- the likely cause, ranked from the evidence.

The evidence is the check run itself (the same units, policy and results as ``agent-kit
check``). Each failing or warning check points at one or more causes a home agent can act on
(Wi-Fi, the internet line, the VPN, the headset, the room, the computer) with a weight that
says how strongly it points there; a failure counts fully, a warning less, an ``unknown`` not at
all (no reading is no evidence). Path problems (jitter, loss, MOS) are blamed on Wi-Fi when the
link is Wi-Fi (Microsoft Teams and Amazon Connect both name Wi-Fi as the usual cause of jitter
and loss for home workers) and on the line or the VPN when the link is wired. When the
traceroute (``network.hops``) named the segment where loss or delay starts, that segment
decides instead: the home network (Wi-Fi, or the home router on a cable), the ISP, or beyond
the ISP (the VPN when a tunnel is up; otherwise nothing at home).

Pure functions here; running the check and writing the HTML report are in ``run_diagnosis`` and
``agent_kit.face.html_report``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_kit.core.i18n import N_, _
from agent_kit.core.results import CheckReport, CheckResult, Status

if TYPE_CHECKING:
    from agent_kit.run.runner import ProgressFn
    from agent_kit.run.session import PreparedRun

CAUSES: tuple[str, ...] = ("wifi", "isp", "vpn", "headset", "room", "pc")

# English msgids, translated where shown.
_TITLE = {
    "wifi": N_("your Wi-Fi"),
    "isp": N_("your internet line (ISP)"),
    "vpn": N_("the VPN"),
    "headset": N_("your headset"),
    "room": N_("the room around you"),
    "pc": N_("your computer"),
}
_ADVICE = {
    "wifi": N_("Connect the computer to your router with an Ethernet cable. Until then, sit "
               "close to the router and ask the people at home to pause video streaming and "
               "large downloads during your calls."),
    "isp": N_("Restart your router (unplug it for 30 seconds). If the problem stays, call "
              "your internet provider and give them the speed and delay figures in this "
              "report."),
    "vpn": N_("Disconnect the VPN and connect it again. If it still fails, send this report "
              "to IT: the VPN or its server may be the problem."),
    "headset": N_("Unplug the headset and plug it straight into the computer (no hub or "
                  "dock), choose it as the microphone in your softphone, and check that its "
                  "mute switch is off. If it still sounds wrong, ask IT for a replacement."),
    "room": N_("Move to a quieter room, close the door and windows, and switch off fans, TV "
               "or radio near you. Keep the microphone two fingers from the corner of your "
               "mouth."),
    "pc": N_("Close the programs you do not need for calls, plug a laptop into its charger, "
             "and restart the computer before your shift."),
}

_SEVERITY = {Status.FAIL: 1.0, Status.WARN: 0.4}


@dataclass(frozen=True)
class Cause:
    """One possible cause with how strongly the evidence points at it."""

    key: str                       # one of CAUSES
    score: float                   # sum of weight x severity over the evidence
    evidence: tuple[str, ...]      # check ids that point here, strongest first

    @property
    def title(self) -> str:
        return _(_TITLE[self.key])

    @property
    def advice(self) -> str:
        return _(_ADVICE[self.key])

    def to_json(self) -> dict[str, Any]:
        return {"cause": self.key, "title": self.title, "score": round(self.score, 3),
                "evidence": list(self.evidence), "advice": self.advice}


@dataclass(frozen=True)
class Diagnosis:
    report: CheckReport
    causes: tuple[Cause, ...]      # score > 0, most likely first

    @property
    def likely(self) -> Cause | None:
        return self.causes[0] if self.causes else None

    def summary(self) -> str:
        """One sentence in plain words: the most likely cause, or that nothing was found."""
        if self.likely is None:
            if any(r.status is Status.UNKNOWN for r in self.report.checks):
                return _("No problem found in what could be measured; some checks could not "
                         "measure (see below).")
            return _("No problem found: your connection, headset, room and computer all meet "
                     "the call standards.")
        return _("The most likely cause is {cause}.").format(cause=self.likely.title)

    def to_json(self) -> dict[str, Any]:
        data = self.report.to_json()
        data["likely_cause"] = self.likely.key if self.likely else None
        data["summary"] = self.summary()
        data["causes"] = [c.to_json() for c in self.causes]
        return data


def _weights(result: CheckResult, by_id: dict[str, CheckResult]) -> dict[str, float]:
    """How strongly a bad result points at each cause, given the rest of the evidence."""
    link = by_id.get("network.link")
    on_wifi = link is not None and link.value == "wifi"
    vpn = by_id.get("vpn.connected")
    tunnel = vpn is not None and vpn.value is True
    cid = result.id
    if cid == "network.link":
        return {"isp": 1.0} if result.value == "cellular" else {"wifi": 1.0}
    if cid in ("vpn.connected", "vpn.route"):
        return {"vpn": 1.0}
    segment = _hop_segment(by_id)
    if cid == "network.hops" or (segment and cid in ("network.jitter", "network.loss",
                                                     "network.mos", "network.rtt")):
        # where the traceroute saw it start; the home router is the ISP cause's first advice
        if segment == "home":
            return {"wifi": 1.0, "isp": 0.1} if on_wifi else {"isp": 0.7}
        if segment == "isp":
            return {"isp": 1.0, "wifi": 0.1 if on_wifi else 0.0}
        if segment == "beyond":
            return {"vpn": 0.6 if tunnel else 0.0, "isp": 0.2}
        return {}
    if cid in ("network.jitter", "network.loss", "network.mos"):
        if on_wifi:
            return {"wifi": 0.8, "isp": 0.3, "vpn": 0.2 if tunnel else 0.0}
        return {"isp": 0.7, "vpn": 0.4 if tunnel else 0.0}
    if cid == "network.rtt":
        return {"isp": 0.5, "vpn": 0.5 if tunnel else 0.0, "wifi": 0.2 if on_wifi else 0.0}
    if cid in ("bandwidth.down", "bandwidth.up"):
        return {"isp": 1.0, "wifi": 0.5 if on_wifi else 0.0, "vpn": 0.3 if tunnel else 0.0}
    if cid == "bandwidth.bufferbloat":
        return {"isp": 0.8, "wifi": 0.3 if on_wifi else 0.0}
    if cid == "audio.headset":
        return {"headset": 1.0}
    if cid == "audio.speech_level":
        return {"headset": 0.8, "room": 0.1}
    if cid == "audio.clipping":
        return {"headset": 0.7, "room": 0.1}
    if cid == "audio.dropouts":
        return {"headset": 0.6, "pc": 0.6}
    if cid == "audio.noise":
        return {"room": 1.0}
    if cid == "audio.snr":
        return {"room": 0.7, "headset": 0.3}
    if cid == "audio.hum":
        return {"headset": 0.6, "room": 0.4}
    if cid in ("system.cpu", "system.memory"):
        return {"pc": 1.0}
    if cid == "system.power":
        return {"pc": 0.5}
    if cid in ("system.disk", "system.uptime"):
        return {"pc": 0.3}
    return {}


def _hop_segment(by_id: dict[str, CheckResult]) -> str | None:
    """The segment (home, isp, beyond) the traceroute named, if it found one."""
    hops = by_id.get("network.hops")
    if hops is None or hops.status not in _SEVERITY:
        return None
    segment = hops.details.get("segment")
    return segment if isinstance(segment, str) else None


def rank_causes(report: CheckReport) -> tuple[Cause, ...]:
    """Causes with any evidence, most likely first (ties keep the order of ``CAUSES``)."""
    by_id = {r.id: r for r in report.checks}
    scores: dict[str, float] = dict.fromkeys(CAUSES, 0.0)
    evidence: dict[str, list[tuple[float, str]]] = {c: [] for c in CAUSES}
    for result in report.checks:
        severity = _SEVERITY.get(result.status)
        if severity is None:
            continue
        for cause, weight in _weights(result, by_id).items():
            if weight > 0:
                scores[cause] += weight * severity
                evidence[cause].append((weight * severity, result.id))
    ranked = sorted((c for c in CAUSES if scores[c] > 0),
                    key=lambda c: (-scores[c], CAUSES.index(c)))
    return tuple(Cause(c, scores[c], tuple(cid for _w, cid in
                                           sorted(evidence[c], key=lambda e: -e[0])))
                 for c in ranked)


def diagnose_report(report: CheckReport) -> Diagnosis:
    return Diagnosis(report=report, causes=rank_causes(report))


def run_diagnosis(run: PreparedRun, *, progress: ProgressFn | None = None) -> Diagnosis:
    """The full check (same units and policy as ``check``), then the ranking."""
    from agent_kit.run.runner import run_checks

    report = (run_checks(run.units, run.context) if progress is None
              else run_checks(run.units, run.context, progress=progress))
    return diagnose_report(report)


def default_report_path(now: Callable[[], Any] | None = None) -> str:
    """``agent-kit-report-YYYYMMDD-HHMMSS.html`` in the current folder."""
    from datetime import datetime

    stamp = (now or datetime.now)().strftime("%Y%m%d-%H%M%S")
    return f"agent-kit-report-{stamp}.html"


def render_diagnosis_terminal(d: Diagnosis, report_path: str | None, stream: Any = None) -> None:
    """The check table, then the likely cause with its fix, then where the report is."""
    import sys

    from rich.console import Console

    from agent_kit.face.terminal import check_title, render_terminal

    out = stream or sys.stdout
    render_terminal(d.report, out)
    console = Console(file=out, highlight=False)
    console.print()
    console.print(f"[bold]{_('Why does my call sound bad?')}[/] {d.summary()}")
    titles = {r.id: check_title(r.id) for r in d.report.checks}
    for n, cause in enumerate(d.causes[:3], start=1):
        evidence = ", ".join(titles.get(cid, cid) for cid in cause.evidence)
        console.print(f" {n}. [bold]{cause.title}[/] — "
                      + _("Evidence: {checks}").format(checks=evidence))
        console.print(f"    {cause.advice}")
    if report_path:
        console.print()
        console.print(_("Report: {path}").format(path=report_path))
