"""Self-diagnosis: "why does my call sound bad?" -- one ranked list of causes from the evidence.

The evidence is the check run itself (the same units, policy and results as ``agent-kit
check``). Each failing or warning check points at one or more causes a home agent can act on
(Wi-Fi, the home router, the internet line, the network beyond it, the VPN, the headset, the
room, the computer) with a weight that says how strongly it points there; a failure counts
fully, a warning less, an ``unknown`` not at all (no reading is no evidence).

One diagnosis, one fix: a cause's fix is the fix of its strongest evidence, the very text the
failing check gives (the evaluators word every fix; nothing here words another). The rules
cannot contradict the evidence:

- path trouble (jitter, loss, MOS) is blamed on Wi-Fi only on a Wi-Fi link (Microsoft Teams
  and Amazon Connect both name Wi-Fi as the usual cause of jitter and loss for home workers),
  never on a wired one; there it is the line, or the VPN when a tunnel is up;
- when the traceroute (``network.hops``) named the segment where loss or delay starts, that
  segment decides, as the hops fix says: the home network (Wi-Fi, or the router and cable),
  the ISP, or beyond the ISP (the VPN when a tunnel is up; otherwise IT's side). The traceroute
  makes no loss finding when the path stream lost nothing (``agent_kit.evaluate.hops``);
- a wrong microphone (built-in, webcam, Bluetooth hands-free) outranks the room: the room
  checks were recorded through that device, so they point at the device, below its own check;
- a low signal-to-noise ratio blames the room only when the room's noise check failed too;
- a VPN that is down is the VPN check's fix.

How strongly the evidence points is said in words ("likely", "possible", "less likely"),
never as a percentage: the weights are judgement, not measurement.

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
    AUDIO_ROOM_SOUNDS,
    AUDIO_SNR,
    AUDIO_SPEECH_LEVEL,
    AUDIO_VOICE_BANDWIDTH,
    BANDWIDTH_BUFFERBLOAT,
    BANDWIDTH_DOWN,
    BANDWIDTH_UP,
    NETWORK_HOPS,
    NETWORK_JITTER,
    NETWORK_LINK,
    NETWORK_LOSS,
    NETWORK_MOS,
    NETWORK_RTT,
    NETWORK_TEST_CALL,
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

CAUSES: tuple[str, ...] = ("wifi", "home", "isp", "beyond", "vpn", "headset", "room", "pc")

# English msgids, translated where shown.
_TITLE = {
    "wifi": N_("your Wi-Fi"),
    "home": N_("your home router or home network"),
    "isp": N_("your internet line (ISP)"),
    "beyond": N_("the network beyond your internet provider"),
    "vpn": N_("the VPN"),
    "headset": N_("your headset"),
    "room": N_("the room around you"),
    "pc": N_("your computer"),
}
# Words for how strongly the evidence points at a cause: the ranking is a judgement of the
# evidence, not a measurement, so no percentage is shown (it would look precise and is not).
CONFIDENCES: tuple[str, ...] = ("likely", "possible", "less_likely")
_CONFIDENCE = {
    "likely": N_("likely"),
    "possible": N_("possible"),
    "less_likely": N_("less likely"),
}

_SEVERITY = {Status.FAIL: 1.0, Status.WARN: 0.4}
# The microphone kinds through which the room checks say something about the room; through any
# other device (built-in, webcam, Bluetooth, none) they describe the wrong device instead.
_HEADSET_MICS = ("usb_headset", "analog_headset")
_ROOM_IDS = (AUDIO_NOISE.id, AUDIO_SPEECH_LEVEL.id, AUDIO_SNR.id, AUDIO_CLIPPING.id,
             AUDIO_DROPOUTS.id, AUDIO_HUM.id, AUDIO_ROOM_SOUNDS.id)
_PATH_IDS = (NETWORK_RTT.id, NETWORK_JITTER.id, NETWORK_LOSS.id, NETWORK_MOS.id,
             NETWORK_TEST_CALL.id)
# measured from the loss and the jitter (the MOS) or hearing their effect (the test call):
# they confirm the path checks and add little of their own
_SUMMARY_IDS = (NETWORK_MOS.id, NETWORK_TEST_CALL.id)


@dataclass(frozen=True)
class Cause:
    """One possible cause: how strongly the evidence points at it and what to do.

    ``fix`` is the fix of the strongest evidence, the very text that check gives (one source:
    the evaluators; the diagnosis never words a fix of its own). ``score`` orders the causes
    and sets the confidence word; it is not shown."""

    key: str                       # one of CAUSES
    score: float                   # sum of weight x severity over the evidence
    evidence: tuple[str, ...]      # check ids that point here, strongest first
    fix: str | None = None         # the strongest evidence's own fix
    confidence: str = "possible"   # one of CONFIDENCES

    @property
    def title(self) -> str:
        return _(_TITLE[self.key])

    @property
    def confidence_label(self) -> str:
        """The confidence in words, translated ("likely", "possible", "less likely")."""
        return _(_CONFIDENCE[self.confidence])

    def to_json(self) -> dict[str, Any]:
        return {"cause": self.key, "title": self.title, "confidence": self.confidence,
                "confidence_label": self.confidence_label, "evidence": list(self.evidence),
                "fix": self.fix}


@dataclass(frozen=True)
class Diagnosis:
    report: CheckReport
    causes: tuple[Cause, ...]      # score > 0, most likely first

    @property
    def likely(self) -> Cause | None:
        return self.causes[0] if self.causes else None

    def summary(self) -> str:
        """One sentence in plain words: the top cause, or that nothing was found."""
        if self.likely is None:
            if any(r.status is Status.UNKNOWN for r in self.report.checks):
                return _("No problem found in what could be measured; some checks could not "
                         "measure (see below).")
            return _("No problem found: your connection, headset, room and computer all meet "
                     "the call standards.")
        if self.likely.confidence == "likely":
            return _("The most likely cause is {cause}.").format(cause=self.likely.title)
        return _("A possible cause is {cause}; the evidence is not strong.").format(
            cause=self.likely.title)

    def to_json(self) -> dict[str, Any]:
        data = self.report.to_json()
        data["likely_cause"] = self.likely.key if self.likely else None
        data["summary"] = self.summary()
        data["causes"] = [c.to_json() for c in self.causes]
        return data


@dataclass(frozen=True)
class _Evidence:
    """What the rest of the report says about the setting a result was measured in."""

    link: str | None           # network.link's value: wired, wifi, cellular, virtual...
    tunnel: bool               # a VPN tunnel is up
    wrong_mic: bool            # audio.headset is bad because calls would use another device
    noisy_room: bool           # audio.noise is bad: the room itself is loud
    segments: dict[str, str]   # the traceroute's finding: "loss"/"delay"/"hops" -> segment

    @classmethod
    def of(cls, by_id: dict[str, CheckResult]) -> _Evidence:
        link = by_id.get(NETWORK_LINK.id)
        vpn = by_id.get(VPN_CONNECTED.id)
        headset = by_id.get(AUDIO_HEADSET.id)
        wrong_mic = (headset is not None and headset.status in _SEVERITY
                     and headset.value not in _HEADSET_MICS)
        segments: dict[str, str] = {}
        hops = by_id.get(NETWORK_HOPS.id)
        if hops is not None and hops.status in _SEVERITY:
            # a finding that does not say which of loss and delay it is holds for both
            overall = hops.details.get("segment")
            for key, field in (("hops", "segment"), ("loss", "loss_segment"),
                               ("delay", "delay_segment")):
                value = hops.details.get(field, overall)
                if isinstance(value, str):
                    segments[key] = value
        noise = by_id.get(AUDIO_NOISE.id)
        return cls(link=link.value if link is not None and isinstance(link.value, str) else None,
                   tunnel=vpn is not None and vpn.value is True, wrong_mic=wrong_mic,
                   noisy_room=noise is not None and noise.status in _SEVERITY,
                   segments=segments)

    @property
    def on_wifi(self) -> bool:
        return self.link == "wifi"

    def segment_for(self, cid: str) -> str | None:
        """The segment the traceroute names for the trouble ``cid`` measures (the same one
        that check's fix was worded from: loss for loss, delay for jitter and RTT)."""
        if cid == NETWORK_HOPS.id:
            return self.segments.get("hops")
        if cid == NETWORK_LOSS.id:
            return self.segments.get("loss")
        if cid in (NETWORK_JITTER.id, NETWORK_RTT.id):
            return self.segments.get("delay")
        if cid in _SUMMARY_IDS:
            return self.segments.get("loss") or self.segments.get("delay")
        return None


def _segment_weights(segment: str, ev: _Evidence) -> dict[str, float]:
    """Where the traceroute saw trouble start decides the cause, as the hops fix says it."""
    if segment == "home":    # this computer to the home router: Wi-Fi, or the router/cable
        return {"wifi": 1.0} if ev.on_wifi else {"home": 1.0}
    if segment == "isp":
        return {"isp": 1.0}
    if segment == "beyond":  # nothing at home: the VPN's server path, or IT's side
        return {"vpn": 1.0} if ev.tunnel else {"beyond": 1.0}
    return {}


def _weights(result: CheckResult, ev: _Evidence) -> dict[str, float]:
    """How strongly a bad result points at each cause, given the rest of the evidence.

    Rules that keep the ranking from contradicting the evidence: a wired link never points at
    Wi-Fi; a traceroute finding decides path trouble (and exists only when the stream itself
    lost packets, ``agent_kit.evaluate.hops``); the room checks measured through the wrong
    microphone point at the device, not at the room."""
    cid = result.id
    if cid == NETWORK_LINK.id:
        if result.value == "cellular":
            return {"isp": 1.0}
        # wifi is the cause; "cannot tell cable from Wi-Fi" is only a hint of it
        return {"wifi": 1.0} if result.value == "wifi" else {"wifi": 0.3}
    if cid in (VPN_CONNECTED.id, VPN_ROUTE.id):
        return {"vpn": 1.0}
    if cid == NETWORK_HOPS.id or (cid in _PATH_IDS and ev.segment_for(cid)):
        segment = ev.segment_for(cid)
        weights = _segment_weights(segment, ev) if segment else {}
        # the MOS is computed from the loss, jitter and delay: it confirms, it adds little
        return {k: v * 0.5 for k, v in weights.items()} if cid in _SUMMARY_IDS else weights
    if cid in (NETWORK_JITTER.id, NETWORK_LOSS.id, *_SUMMARY_IDS):
        scale = 0.5 if cid in _SUMMARY_IDS else 1.0
        if ev.on_wifi:
            weights = {"wifi": 0.8, "isp": 0.3, "vpn": 0.2 if ev.tunnel else 0.0}
        else:
            weights = {"isp": 0.7, "vpn": 0.4 if ev.tunnel else 0.0}
        return {k: v * scale for k, v in weights.items()}
    if cid == NETWORK_RTT.id:
        return {"isp": 0.5, "vpn": 0.5 if ev.tunnel else 0.0, "wifi": 0.2 if ev.on_wifi else 0.0}
    if cid in (BANDWIDTH_DOWN.id, BANDWIDTH_UP.id):
        return {"isp": 1.0, "wifi": 0.5 if ev.on_wifi else 0.0, "vpn": 0.3 if ev.tunnel else 0.0}
    if cid == BANDWIDTH_BUFFERBLOAT.id:
        # the queue that fills is the home router's (its fix: SQM on the router)
        return {"home": 0.8, "isp": 0.2, "wifi": 0.2 if ev.on_wifi else 0.0}
    if cid == AUDIO_HEADSET.id:
        return {"headset": 1.0}
    if cid in _ROOM_IDS and ev.wrong_mic:
        # Recorded through the wrong microphone: these readings describe that device, and the
        # room is judged again once the headset is in use. Below audio.headset's own weight, so
        # its fix (select the headset) stays the one given.
        return {"headset": 0.3}
    if cid == AUDIO_SPEECH_LEVEL.id:
        return {"headset": 0.8, "room": 0.1}
    if cid == AUDIO_CLIPPING.id:
        return {"headset": 0.7, "room": 0.1}
    if cid == AUDIO_DROPOUTS.id:
        return {"headset": 0.6, "pc": 0.6}
    if cid == AUDIO_NOISE.id:
        return {"room": 1.0}
    if cid == AUDIO_SNR.id:
        # A low SNR in a room whose noise check passed is a voice too quiet for the room or a
        # hum under it (audio.speech_level, audio.hum say which), not the room's noise.
        return {"room": 0.7 if ev.noisy_room else 0.1, "headset": 0.3}
    if cid == AUDIO_HUM.id:
        return {"headset": 0.6, "room": 0.4}
    if cid == AUDIO_VOICE_BANDWIDTH.id:
        # a narrowband path is the headset or its connection (Bluetooth hands-free, an
        # adapter); below audio.headset's own weight, so a Bluetooth headset's fix leads
        return {"headset": 0.8}
    if cid == AUDIO_ROOM_SOUNDS.id:
        # voices and bangs are the room's own evidence; steady noise is audio.noise's to weigh
        return {"room": 0.6} if result.value in ("voices", "impulses") else {}
    if cid in (SYSTEM_CPU.id, SYSTEM_MEMORY.id):
        return {"pc": 1.0}
    if cid == SYSTEM_POWER.id:
        return {"pc": 0.5}
    if cid in (SYSTEM_DISK.id, SYSTEM_UPTIME.id):
        return {"pc": 0.3}
    return {}


def _confidence(score: float, top: float, runner_up: float, first: bool) -> str:
    """The word for a cause's score: "likely" for a first cause that a failing check points
    at fully and that clearly leads (half as strong again as the next); "possible" for a first
    cause short of that and for others at least half as strong as the first; else "less
    likely"."""
    if first:
        return "likely" if score >= 1.0 and score >= 1.5 * runner_up else "possible"
    return "possible" if score >= 0.5 * top else "less_likely"


def rank_causes(report: CheckReport) -> tuple[Cause, ...]:
    """Causes with any evidence, most likely first (ties keep the order of ``CAUSES``)."""
    by_id = {r.id: r for r in report.checks}
    ev = _Evidence.of(by_id)
    scores: dict[str, float] = dict.fromkeys(CAUSES, 0.0)
    evidence: dict[str, list[tuple[float, int, CheckResult]]] = {c: [] for c in CAUSES}
    for order, result in enumerate(report.checks):
        severity = _SEVERITY.get(result.status)
        if severity is None:
            continue
        for cause, weight in _weights(result, ev).items():
            if weight > 0:
                scores[cause] += weight * severity
                evidence[cause].append((weight * severity, order, result))
    ranked = sorted((c for c in CAUSES if scores[c] > 0),
                    key=lambda c: (-scores[c], CAUSES.index(c)))
    top = scores[ranked[0]] if ranked else 0.0
    runner_up = scores[ranked[1]] if len(ranked) > 1 else 0.0
    causes = []
    for n, key in enumerate(ranked):
        # strongest first; on a tie the report's order (the catalogue's: measured before derived)
        strongest = [r for _w, _o, r in sorted(evidence[key], key=lambda e: (-e[0], e[1]))]
        fix = next((r.fix for r in strongest if r.fix), None)
        causes.append(Cause(key, scores[key], tuple(r.id for r in strongest), fix,
                            _confidence(scores[key], top, runner_up, first=n == 0)))
    return tuple(causes)


def diagnose_report(report: CheckReport) -> Diagnosis:
    """The report with its causes ranked."""
    return Diagnosis(report=report, causes=rank_causes(report))
