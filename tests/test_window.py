"""The onboarding window on a real X server (Xvfb), with the real virtual headset (PulseAudio).

The window runs in this process so the test can read every widget's text (Tk introspection);
the person at the headset is played by the test: when the window shows the second prompt
("now read this sentence aloud"), espeak-ng's sentence goes into the microphone. Screenshots of
the whole screen (ImageMagick ``import``) are saved to test-artifacts/ to be looked at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import tkinter as tk
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agent_kit.core.i18n import set_language
from agent_kit.face.window import OnboardingWindow, WindowOptions, widget_texts
from tests.lab.netns import LabError
from tests.lab.pulse import RATE, pulse_server, read_wav, sox

pytestmark = pytest.mark.lab
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    for tool in ("Xvfb", "import", "xdotool"):
        if shutil.which(tool) is None:
            raise LabError(f"{tool} missing (scripts/install-deps.sh test installs it)")
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x800x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        raise LabError("Xvfb did not start")
    saved = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number}"
    try:
        yield f":{number}"
    finally:
        if saved is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = saved
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def headset(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[object, dict[str, np.ndarray]]]:
    d = tmp_path_factory.mktemp("window-audio")
    raw = d / "speech22k.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), SENTENCE], check=True, timeout=60,
                   capture_output=True)
    sox(str(raw), "-r", str(RATE), "-b", "16", str(d / "speech.wav"), "vol", "0.5")
    sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", str(d / "quiet.wav"), "synth", "12",
        "pinknoise", "vol", "0.003")
    sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", str(d / "loud.wav"), "synth", "12",
        "pinknoise", "vol", "0.15")
    sounds = {name: read_wav(d / f"{name}.wav") for name in ("speech", "quiet", "loud")}
    with pulse_server() as server:
        server.add_speaker("headset_out", "Jabra Evolve2 40", bus="usb", form_factor="headset",
                           default=True)
        feed = server.add_microphone("headset_mic", "Jabra Evolve2 40", bus="usb",
                                     form_factor="headset", vendor_id="0b0e",
                                     product_id="24f1", default=True)
        feed.set_background(sounds["quiet"])
        yield feed, sounds
        assert feed.error is None, f"the microphone feed failed: {feed.error}"


def policy_file(tmp_path: Path, *, vpn: str) -> Path:
    path = tmp_path / "policy.toml"
    # Short microphone test; a busy 2-core CI machine must not fail the CPU check.
    path.write_text(f'[audio]\nquiet_s = 2\nspeech_s = 4\n\n[checks."system.cpu"]\n'
                    f'warn = "none"\nfail = "none"\n\n[checks."vpn.connected"]\nmode = "{vpn}"\n')
    return path


def screenshot(display: str, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / name
    subprocess.run(["import", "-display", display, "-window", "root", str(out)], check=True,
                   timeout=30)
    return out


def run_in_window(display: str, window: OnboardingWindow, feed: object,
                  speech: np.ndarray, shot_prefix: str, timeout_s: float = 90) -> list[str]:
    """Pump Tk until the run ends; read the sentence aloud at the second prompt."""
    prompts: list[str] = []
    deadline = time.monotonic() + timeout_s
    while (window.busy or window.last_report is None) and time.monotonic() < deadline:
        window.root.update()
        shown = str(window.prompt.cget("text"))
        if shown and window.prompt.winfo_ismapped() and (not prompts or prompts[-1] != shown):
            prompts.append(shown)
            if len(prompts) == 1:
                window.root.update()
                screenshot(display, f"{shot_prefix}-prompt-quiet.png")
            if len(prompts) == 2:   # "now read this sentence aloud"
                feed.play(speech)  # type: ignore[attr-defined]
                window.root.update()
                screenshot(display, f"{shot_prefix}-prompt-speech.png")
        time.sleep(0.02)
    window.root.update()
    assert window.last_report is not None, "the check did not finish in time"
    return prompts


@pytest.fixture
def root(display: str) -> Iterator[tk.Tk]:
    r = tk.Tk()
    r.geometry("800x760+0+0")
    yield r
    r.destroy()
    set_language("en")


def test_ready_with_prompts_in_english(display, headset, root, tmp_path):
    feed, sounds = headset
    feed.set_background(sounds["quiet"])
    set_language("en")
    window = OnboardingWindow(root, WindowOptions(
        policy=str(policy_file(tmp_path, vpn="off")),
        groups=frozenset({"system", "vpn", "audio"}), report_dir=tmp_path))
    root.update()
    window.start_check()
    prompts = run_in_window(display, window, feed, sounds["speech"], "window-en")
    time.sleep(0.2)
    root.update()
    screenshot(display, "window-en-ready.png")
    texts = widget_texts(root)
    assert len(prompts) == 2, prompts
    assert "quiet" in prompts[0] and "read this sentence aloud" in prompts[1]
    assert window.last_report.ready, [(c.id, c.status, c.message) for c in
                                      window.last_report.checks]
    assert texts.count("READY") + texts.count("READY (with warnings)") == 1, texts
    assert "You can take calls." in texts
    assert "NOT READY" not in texts
    assert not window.prompt.winfo_ismapped()


def test_not_ready_in_japanese_names_each_problem_and_fix(display, headset, root, tmp_path):
    feed, sounds = headset
    feed.set_background(sounds["loud"])       # a noisy room
    try:
        set_language("ja")
        window = OnboardingWindow(root, WindowOptions(
            policy=str(policy_file(tmp_path, vpn="required")),   # and no VPN tunnel up
            groups=frozenset({"system", "vpn", "audio"}), report_dir=tmp_path))
        root.update()
        window.start_check()
        prompts = run_in_window(display, window, feed, sounds["speech"], "window-ja")
        root.update()
        screenshot(display, "window-ja-not-ready.png")
    finally:
        feed.set_background(sounds["quiet"])
    texts = widget_texts(root)
    report = window.last_report
    assert report is not None and not report.ready
    failing = {c.id for c in report.checks if c.blocks}
    assert {"vpn.connected", "audio.noise"} <= failing, failing
    assert "準備未完了" in texts
    joined = "\n".join(texts)
    for check in report.checks:
        if check.blocks:   # each problem and its fix, in Japanese, on screen
            assert check.message in joined and check.fix and check.fix in joined
    assert "VPN" in joined and "周囲の雑音" in joined
    assert len(prompts) == 2 and all(not p.isascii() for p in prompts)


def test_diagnose_button_clicked_with_the_mouse(display, headset, root, tmp_path):
    feed, sounds = headset
    feed.set_background(sounds["quiet"])
    set_language("en")
    window = OnboardingWindow(root, WindowOptions(
        policy=str(policy_file(tmp_path, vpn="required")),
        groups=frozenset({"system", "vpn"}), report_dir=tmp_path))
    root.update()
    time.sleep(0.3)
    root.update()
    button = window.diagnose_button
    x = button.winfo_rootx() + button.winfo_width() // 2
    y = button.winfo_rooty() + button.winfo_height() // 2
    # A real pointer click through the X server, as a person would do it.
    subprocess.run(["xdotool", "mousemove", str(x), str(y), "click", "1"], check=True,
                   timeout=10, env={**os.environ, "DISPLAY": display})
    deadline = time.monotonic() + 30
    while window.last_report is None and time.monotonic() < deadline:
        root.update()
        time.sleep(0.02)
    root.update()
    screenshot(display, "window-en-diagnose.png")
    texts = widget_texts(root)
    assert "The most likely cause is the VPN." in texts, texts
    assert window.last_report_path and Path(window.last_report_path).parent == tmp_path
    assert "Send the report to IT" in texts and "Open the report" in texts
    html = Path(window.last_report_path).read_text("utf-8")
    assert 'data-cause="vpn"' in html
