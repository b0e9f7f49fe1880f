"""``status`` and ``devices`` wrap through face.text_wrap: the fix on its own indented line,
hanging indents, nothing wider than the terminal, in English, Swedish, Japanese and Korean."""

from __future__ import annotations

import pytest

from agent_kit.core.checks import AUDIO_HEADSET, NETWORK_JITTER
from agent_kit.core.i18n import _, set_language
from agent_kit.core.policy import load_policy
from agent_kit.face.devices import render_lines as device_lines
from agent_kit.face.login import render_lines as status_lines
from agent_kit.face.login import split_fix
from agent_kit.face.text_wrap import display_width
from agent_kit.loop.hysteresis import Blocker, describe_blocker
from probes.audio.devices import AudioDevice, DeviceInventory

LANGS = ["en", "sv", "ja", "ko"]


@pytest.fixture(params=LANGS)
def lang(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    set_language(request.param)
    yield request.param
    set_language("en")


def jitter_reason() -> str:
    """A gate reason as the monitor stores it today: "Title: message Fix: fix"."""
    return describe_blocker(Blocker(
        NETWORK_JITTER.id, "45.0 ms jitter, towards the center 45.0 ms, back 3.1 ms",
        _("Start your company VPN client and sign in; if it says connected, disconnect and "
          "connect again."), 0.0))


@pytest.mark.parametrize("width", [80, 120])
def test_status_puts_the_fix_on_its_own_line(lang: str, width: int) -> None:
    reason = jitter_reason()
    problem, fix = split_fix(reason)
    assert fix and problem and _("Fix: {fix}").split("{fix}")[0].strip() not in problem
    lines = status_lines(_("Not ready to take calls (since {time}).").format(time="09:12:00"),
                         [reason], ["a note " * 30], width=width)
    assert all(display_width(line) <= width for line in lines), lines
    label = _("Fix:")
    fix_rows = [n for n, line in enumerate(lines) if line.startswith("      " + label + " ")]
    assert len(fix_rows) == 1, lines
    assert lines[1].startswith("  ✗ ") and fix_rows[0] > 1
    hang = 6 + display_width(label) + 1
    rows_of_fix = lines[fix_rows[0] + 1:]
    rows_of_fix = rows_of_fix[:next((i for i, line in enumerate(rows_of_fix)
                                     if line.startswith("  · ")), len(rows_of_fix))]
    assert all(line.startswith(" " * hang) for line in rows_of_fix), lines


def test_a_reason_without_a_fix_is_one_item() -> None:
    assert split_fix("The monitor was stopped: start agent-kit monitor.") == (
        "The monitor was stopped: start agent-kit monitor.", None)


def builtin_only() -> DeviceInventory:
    mic = AudioDevice(direction="input", name="alsa_input.pci-0000_00_1f.3.analog-stereo",
                      description="Built-in Audio Analog Stereo", kind="builtin",
                      evidence=("device.bus=pci", "device.form_factor=internal",
                                "alsa.card_name=HDA Intel PCH", "port=analog-input-mic"),
                      is_default=True)
    return DeviceInventory("pulseaudio", (mic,))


@pytest.mark.parametrize("width", [80, 120])
def test_devices_wrap_with_the_fix_on_its_own_line(lang: str, width: int) -> None:
    lines = device_lines(builtin_only(), load_policy(), width=width)
    assert all(display_width(line) <= width for line in lines), lines
    fix = [line for line in lines if line.startswith("  " + _("Fix:") + " ")]
    assert len(fix) == 1, lines
    verdict = next(n for n, line in enumerate(lines) if line.startswith(
        _("Headset check: {status} - {message}").split("{status}")[0]))
    assert "UNKNOWN" not in lines[verdict] and "FAIL" not in lines[verdict]
    assert AUDIO_HEADSET.id not in "\n".join(lines)
