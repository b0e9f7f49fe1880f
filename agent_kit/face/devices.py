"""``agent-kit devices``: every audio device, its kind and why, and what calls will use.

Rendering only: the inventory comes from ``probes.audio.devices``; whether the default
microphone is acceptable is ``audio.headset``'s business (shown at the end, judged by the
policy so the two never disagree).
"""

from __future__ import annotations

from typing import Any

from agent_kit.core.checks import AUDIO_HEADSET
from agent_kit.core.i18n import _
from agent_kit.core.policy import Policy
from agent_kit.core.results import CheckResult
from agent_kit.evaluate.audio import evaluate_headset, is_approved, kind_label
from probes.audio.devices import AudioDevice, DeviceInventory


def device_json(dev: AudioDevice, approved: list[str]) -> dict[str, Any]:
    return {
        "direction": dev.direction, "name": dev.name, "description": dev.description,
        "kind": dev.kind, "kind_label": kind_label(dev.kind), "reason": list(dev.evidence),
        "default": dev.is_default, "bus": dev.bus, "form_factor": dev.form_factor,
        "usb_id": dev.usb_id, "bluetooth_handsfree": dev.handsfree,
        "approved": is_approved(dev, approved) if dev.is_headset else None,
        "backend": dev.backend,
    }


def inventory_json(inventory: DeviceInventory, policy: Policy) -> dict[str, Any]:
    """The ``--json`` object: devices, the call defaults, and the audio.headset verdict."""
    approved = [str(a) for a in policy.check(AUDIO_HEADSET.id).params.get("approved", [])]
    verdict = evaluate_headset(inventory, policy)
    default_in, default_out = inventory.default("input"), inventory.default("output")
    return {
        "backend": inventory.backend or None,
        "problem": inventory.problem,
        "default_input": default_in.name if default_in else None,
        "default_output": default_out.name if default_out else None,
        "devices": [device_json(d, approved) for d in inventory.devices],
        "headset_check": verdict.to_json(),
    }


def _reason(dev: AudioDevice) -> str:
    facts = ", ".join(dev.evidence) if dev.evidence else _("no identifying properties")
    if dev.kind == "bluetooth_headset" and dev.handsfree is not None:
        mode = (_("hands-free profile: narrowband") if dev.handsfree
                else _("stereo profile (A2DP)"))
        return f"{facts}; {mode}"
    return facts


def render_lines(inventory: DeviceInventory, policy: Policy,
                 width: int | None = None) -> list[str]:
    """Plain-text lines for a terminal, wrapped to ``width`` (default: the terminal's) with
    hanging indents; the headset check's fix on a line of its own."""
    from agent_kit.face.check_steps import step_word
    from agent_kit.face.text_wrap import labelled, terminal_width, wrap

    columns = min(width or terminal_width(), 120)
    lines: list[str] = []
    approved = [str(a) for a in policy.check(AUDIO_HEADSET.id).params.get("approved", [])]
    if inventory.problem:
        lines += wrap(_("Note: {problem}").format(problem=inventory.problem), columns)
    for direction, title in (("input", _("Microphones")), ("output", _("Speakers/outputs"))):
        devs = inventory.of(direction)  # type: ignore[arg-type]
        lines.append(f"{title}:")
        if not devs:
            lines.append("  " + _("(none found)"))
        for dev in devs:
            mark = "*" if dev.is_default else " "
            tags = [kind_label(dev.kind)]
            if dev.usb_id:
                tags.append(f"USB {dev.usb_id}")
            if dev.is_headset and approved:
                tags.append(_("approved") if is_approved(dev, approved) else _("not approved"))
            lines += wrap(f"{dev.description}  [{', '.join(tags)}]", columns,
                          first=f" {mark} ", rest="   ")
            lines += wrap(_("why: {reason}").format(reason=_reason(dev)), columns,
                          first="      ", rest="        ")
    lines += wrap(_("* = the system default, used for calls"), columns)
    verdict: CheckResult = evaluate_headset(inventory, policy)
    lines += wrap(_("Headset check: {status} - {message}").format(
        status=step_word(verdict.status), message=verdict.message), columns, rest="  ")
    if verdict.fix:
        lines += labelled(_("Fix:") + " ", verdict.fix, columns, indent="  ")
    return lines
