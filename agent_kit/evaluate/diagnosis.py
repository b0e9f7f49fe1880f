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

Pure functions here; running the check, printing and writing the HTML report are the face's
(``agent_kit.face.diagnose_flow``, ``agent_kit.face.html_report``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent_kit.core.checks import (
    AUDIO_CLIPPING,
    AUDIO_DROPOUTS,
    AUDIO_HEADSET,
    AUDIO_HUM,
    AUDIO_NOISE,
    AUDIO_SNR,
    AUDIO_SPEECH_LEVEL,
    BANDWIDTH_BUFFERBLOAT,
    BANDWIDTH_DOWN,
    BANDWIDTH_UP,
    NETWORK_HOPS,
    NETWORK_JITTER,
    NETWORK_LINK,
    NETWORK_LOSS,
    NETWORK_MOS,
    NETWORK_RTT,
    SYSTEM_CPU,
    SYSTEM_DISK,
    SYSTEM_MEMORY,
    SYSTEM_POWER,
    SYSTEM_UPTIME,
    VPN_CONNECTED,
    VPN_ROUTE,
)
from agent_kit.core.i18n import N_, _
from agent_kit.core.results import CheckReport, CheckResult, Status

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
    link = by_id.get(NETWORK_LINK.id)
    on_wifi = link is not None and link.value == "wifi"
    vpn = by_id.get(VPN_CONNECTED.id)
    tunnel = vpn is not None and vpn.value is True
    cid = result.id
    if cid == NETWORK_LINK.id:
        return {"isp": 1.0} if result.value == "cellular" else {"wifi": 1.0}
    if cid in (VPN_CONNECTED.id, VPN_ROUTE.id):
        return {"vpn": 1.0}
    segment = _hop_segment(by_id)
    if cid == NETWORK_HOPS.id or (segment and cid in (NETWORK_JITTER.id, NETWORK_LOSS.id,
                                                     NETWORK_MOS.id, NETWORK_RTT.id)):
        # where the traceroute saw it start; the home router is the ISP cause's first advice
        if segment == "home":
            return {"wifi": 1.0, "isp": 0.1} if on_wifi else {"isp": 0.7}
        if segment == "isp":
            return {"isp": 1.0, "wifi": 0.1 if on_wifi else 0.0}
        if segment == "beyond":
            return {"vpn": 0.6 if tunnel else 0.0, "isp": 0.2}
        return {}
    if cid in (NETWORK_JITTER.id, NETWORK_LOSS.id, NETWORK_MOS.id):
        if on_wifi:
            return {"wifi": 0.8, "isp": 0.3, "vpn": 0.2 if tunnel else 0.0}
        return {"isp": 0.7, "vpn": 0.4 if tunnel else 0.0}
    if cid == NETWORK_RTT.id:
        return {"isp": 0.5, "vpn": 0.5 if tunnel else 0.0, "wifi": 0.2 if on_wifi else 0.0}
    if cid in (BANDWIDTH_DOWN.id, BANDWIDTH_UP.id):
        return {"isp": 1.0, "wifi": 0.5 if on_wifi else 0.0, "vpn": 0.3 if tunnel else 0.0}
    if cid == BANDWIDTH_BUFFERBLOAT.id:
        return {"isp": 0.8, "wifi": 0.3 if on_wifi else 0.0}
    if cid == AUDIO_HEADSET.id:
        return {"headset": 1.0}
    if cid == AUDIO_SPEECH_LEVEL.id:
        return {"headset": 0.8, "room": 0.1}
    if cid == AUDIO_CLIPPING.id:
        return {"headset": 0.7, "room": 0.1}
    if cid == AUDIO_DROPOUTS.id:
        return {"headset": 0.6, "pc": 0.6}
    if cid == AUDIO_NOISE.id:
        return {"room": 1.0}
    if cid == AUDIO_SNR.id:
        return {"room": 0.7, "headset": 0.3}
    if cid == AUDIO_HUM.id:
        return {"headset": 0.6, "room": 0.4}
    if cid in (SYSTEM_CPU.id, SYSTEM_MEMORY.id):
        return {"pc": 1.0}
    if cid == SYSTEM_POWER.id:
        return {"pc": 0.5}
    if cid in (SYSTEM_DISK.id, SYSTEM_UPTIME.id):
        return {"pc": 0.3}
    return {}


def _hop_segment(by_id: dict[str, CheckResult]) -> str | None:
    """The segment (home, isp, beyond) the traceroute named, if it found one."""
    hops = by_id.get(NETWORK_HOPS.id)
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
