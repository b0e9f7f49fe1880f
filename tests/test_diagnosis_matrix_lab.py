"""The scenario matrix: ``agent-kit diagnose`` names the true cause, with the check's own fix.

Each scenario sets its true cause with real parts, runs the real command where an agent would
(inside the home namespace, or against the lab's PulseAudio server) and reads its JSON:

- the top cause is the one the scenario made, and its strongest evidence is the check that
  measures it;
- the top cause's fix is that check's own fix, word for word (one source for the text);
- its confidence is a word, and no cause carries a percentage or a score.

Labs are shared across scenarios and the impairment is switched, not the lab rebuilt:

- VPN (``tests/lab/netns.py`` + ``tests/lab/openvpn.py``): a real OpenVPN tunnel; split tunnel
  = the enrolled center is reached outside the tunnel; VPN down = the home client stopped.
- Path and line (``tests/lab/chain.py``): home -> router -> ISP -> center with the center's real
  reflector and bandwidth endpoint (``tests/lab/bandwidth_center.py``) in the center namespace.
  Loss = nftables dropping every second packet to the reflector's port on one link (home link:
  the loss Wi-Fi makes between the computer and the router; the ISP's link; past the ISP); slow
  line = a 1.5 Mbit/s tbf uplink; bufferbloat = a 5 Mbit/s uplink with a 300 ms drop-tail
  queue (as on a home router without SQM).
- Audio (``tests/lab/pulse.py``): a PulseAudio server with the issued USB headset, a laptop's
  built-in microphone and a Bluetooth headset in hands-free mode, each fed real sound (espeak-ng
  speech, sox pink noise, a 50 Hz sine): built-in microphone, Bluetooth hands-free, noisy room,
  low microphone level, mains hum. The wrong-device scenarios record a noisy room through that
  device, so the room checks fail too: the device must still come first.
- CPU overload: busy processes, one more than the machine has cores, while the check runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent_kit.evaluate.diagnosis import CAUSES, CONFIDENCES
from tests.lab.chain import CENTER_ADDR as CHAIN_CENTER
from tests.lab.chain import Chain, chain
from tests.lab.netns import CENTER_ADDR, LabError, NetnsPair, netns_pair
from tests.lab.openvpn import TUNNEL_CENTER, openvpn_tunnel, stop_home_end
from tests.lab.pulse import RATE, MicFeed, PulseServer, pulse_server, read_wav, sox

pytestmark = [pytest.mark.lab, pytest.mark.timing]
ROOT = Path(__file__).resolve().parents[1]
HTTP_PORT, UDP_PORT = 8750, 8751
SENTENCE = "Good morning, thank you for calling, my name is Alex and I am happy to help you"
# Short path and audio runs (the matrix stays within a few minutes) and bandwidth levels for the
# lab's few-Mbit/s lines; everything else is the default policy. The bandwidth test keeps its
# default 8 s: behind a 300 ms queue a shorter one measures TCP's loss recovery stalls (1.4 of 5
# Mbit/s in 4 s), not the line.
LAB_POLICY = """\
[path]
duration_s = 2
[bandwidth]
max_duration_s = 8
[audio]
quiet_s = 2
speech_s = 4
[checks."bandwidth.down"]
warn = 10
fail = 3
[checks."bandwidth.up"]
warn = 3
fail = 2
"""


def diagnose(prefix: list[str], state: Path, *args: str, env: dict[str, str] | None = None,
             timeout: float = 90) -> dict[str, Any]:
    """``agent-kit diagnose --json`` behind ``prefix`` (``ip netns exec NS`` or nothing)."""
    state.mkdir(parents=True, exist_ok=True)
    policy = state / "lab.toml"
    policy.write_text(LAB_POLICY)
    proc = subprocess.run(
        [*prefix, "env", f"AGENT_KIT_HOME={state}", sys.executable, "-m", "agent_kit.face.cli",
         "diagnose", "--json", "--lang", "en", "--policy", str(policy), "--report",
         str(state / "report.html"), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=timeout,
        env={**os.environ, **(env or {})})
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


# ------------------------------------------------------------------ the labs

@dataclass
class VpnLab:
    pair: NetnsPair
    workdir: Path

    def enroll(self, center_url: str) -> Path:
        from agent_kit.link.state_folder import Enrollment

        state = self.workdir / "state"
        state.mkdir(parents=True, exist_ok=True)
        (state / "enrollment.json").write_text(json.dumps(
            Enrollment(center_url=center_url, agent_id="a1", secret="s").__dict__))
        return state

    def run(self) -> dict[str, Any]:
        return diagnose(self.pair.exec_args(self.pair.home), self.workdir / "state",
                        "--only", "vpn")


@pytest.fixture(scope="module")
def vpn_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VpnLab]:
    workdir = tmp_path_factory.mktemp("vpn")
    with netns_pair() as pair, openvpn_tunnel(pair, workdir):
        yield VpnLab(pair, workdir)


@dataclass
class ChainLab:
    chain: Chain
    workdir: Path

    def clear(self) -> None:
        """No impairment: drop rules and rate limits of every scenario removed."""
        for role in ("router", "isp", "center"):
            self.chain.run(role, "nft", "delete", "table", "inet", "lab", check=False)
        for link, (near_if, _far) in self.chain.ifs.items():
            self.chain.run(link.split("-")[0], "tc", "qdisc", "del", "dev", near_if, "root",
                           check=False)

    def run(self, groups: str) -> dict[str, Any]:
        return diagnose(self.chain.exec_args("home"), self.workdir / "state", "--only", groups,
                        "--center", f"http://{CHAIN_CENTER}:{HTTP_PORT}")


@pytest.fixture(scope="module")
def chain_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainLab]:
    with chain() as c:
        proc = c.popen("center", [sys.executable, "-m", "tests.lab.bandwidth_center",
                                  CHAIN_CENTER, str(HTTP_PORT), str(UDP_PORT)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT))
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                proc.kill()
                raise LabError(f"bandwidth center did not start: {line!r} "
                               f"{proc.communicate(timeout=5)[1][-2000:]}")
            lab = ChainLab(c, tmp_path_factory.mktemp("chain"))
            yield lab
        finally:
            proc.terminate()
            try:
                proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=5)


@dataclass
class Sounds:
    speech: np.ndarray     # espeak-ng, about -20 dBFS active level
    quiet: np.ndarray      # a quiet home office: pink noise, about -60 dBFS
    loud: np.ndarray       # a noisy room: pink noise, about -30 dBFS

    def room_and_voice(self, room: np.ndarray, voice_gain: float = 1.0) -> np.ndarray:
        """The room, and the sentence over it every few seconds: the command starts at an
        unknown moment, so any 6 s window holds both background and speech."""
        gap = room[: int(1.5 * RATE)]
        speech = self.speech * voice_gain
        return np.concatenate((gap, speech + room[np.arange(speech.size) % room.size]))


@dataclass
class AudioLab:
    server: PulseServer
    feeds: dict[str, MicFeed]
    sounds: Sounds
    workdir: Path

    def run(self, source: str, background: np.ndarray) -> dict[str, Any]:
        """The default microphone is ``source``, fed ``background`` in a loop."""
        self.server.set_default_source(source)
        self.feeds[source].set_background(background)
        try:
            return diagnose([], self.workdir / "state", "--only", "audio", env=self.server.env)
        finally:
            self.feeds[source].set_background(self.sounds.quiet)


@pytest.fixture(scope="module")
def audio_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AudioLab]:
    d = tmp_path_factory.mktemp("audio")
    raw = d / "speech22k.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), SENTENCE], check=True, timeout=60,
                   capture_output=True)
    speech = d / "speech.wav"
    sox(str(raw), "-r", str(RATE), "-b", "16", str(speech), "vol", "0.5")
    rooms = {}
    for name, vol in (("quiet", "0.001"), ("loud", "0.08")):
        path = d / f"{name}.wav"
        sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", str(path), "synth", "12",
            "pinknoise", "vol", vol)
        rooms[name] = read_wav(path)
    sounds = Sounds(read_wav(speech), rooms["quiet"], rooms["loud"])
    with pulse_server() as server:
        server.add_speaker("headset_out", "Jabra Evolve2 40", bus="usb", form_factor="headset",
                           default=True)
        feeds = {
            "headset_mic": server.add_microphone(
                "headset_mic", "Jabra Evolve2 40", bus="usb", form_factor="headset",
                vendor_id="0b0e", product_id="24f1", default=True),
            "builtin_mic": server.add_microphone(
                "builtin_mic", "Built-in Audio Analog Stereo", bus="pci",
                form_factor="internal"),
            "bt_mic": server.add_microphone(
                "bt_mic", "Jabra Elite 85t", bus="bluetooth", form_factor="headset",
                extra={"bluetooth.protocol": "headset_head_unit"}),
        }
        for feed in feeds.values():
            feed.set_background(sounds.quiet)
        yield AudioLab(server, feeds, sounds, d)
        for name, feed in feeds.items():
            assert feed.error is None, f"the {name} feed failed: {feed.error}"


def busy_cpu(seconds: float) -> list[subprocess.Popen[bytes]]:
    """One busy process more than the machine has cores, each ending by itself."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range((os.cpu_count() or 1)
                                                                          + 1)]


# ------------------------------------------------------------------ the scenarios

@dataclass(frozen=True)
class Scenario:
    lab: str                                  # the fixture it runs in
    cause: str                                # the true cause (one of CAUSES)
    check: str                                # the check that measures it
    run: Callable[[Any], dict[str, Any]]      # sets the cause with real parts, runs diagnose
    also_bad: tuple[str, ...] = ()            # other checks the scenario must make fail too


def _vpn_split(lab: VpnLab) -> dict[str, Any]:
    lab.enroll(f"http://{CENTER_ADDR}:{HTTP_PORT}")   # reached outside the tunnel
    return lab.run()


def _vpn_down(lab: VpnLab) -> dict[str, Any]:
    lab.enroll(f"http://{TUNNEL_CENTER}:{HTTP_PORT}")
    stop_home_end(lab.workdir)                        # the VPN client disconnects
    return lab.run()


def _loss_on(link: str) -> Callable[[ChainLab], dict[str, Any]]:
    def run(lab: ChainLab) -> dict[str, Any]:
        lab.clear()
        # every second packet of the stream, and of each hop's probes (a counter per TTL):
        # every hop past the link loses two of its five probes, whatever the trace's order
        lab.chain.drop_every_per_ttl(link, 2, UDP_PORT)
        try:
            return lab.run("network")
        finally:
            lab.clear()
    return run


def _uplink(rate_mbit: float, latency_ms: int) -> Callable[[ChainLab], dict[str, Any]]:
    def run(lab: ChainLab) -> dict[str, Any]:
        lab.clear()
        # tbf on the home router's uplink; a 64 kbit burst holds the rate at a few Mbit/s
        # (a smaller one stalls a 5 Mbit/s line on this kernel's timer)
        near_if = lab.chain.ifs["router-isp"][0]
        lab.chain.run("router", "tc", "qdisc", "replace", "dev", near_if, "root", "tbf", "rate",
                      f"{rate_mbit}mbit", "burst", "64kbit", "latency", f"{latency_ms}ms")
        try:
            return lab.run("network,bandwidth")
        finally:
            lab.clear()
    return run


def _mic(source: str, room: str, voice_gain: float = 1.0,
         hum_dbfs: float | None = None) -> Callable[[AudioLab], dict[str, Any]]:
    def run(lab: AudioLab) -> dict[str, Any]:
        background = getattr(lab.sounds, room).copy()
        if hum_dbfs is not None:   # a 50 Hz sine of that RMS level under the room
            t = np.arange(background.size) / RATE
            background += 10 ** (hum_dbfs / 20) * np.sqrt(2) * np.sin(2 * np.pi * 50 * t)
        return lab.run(source, lab.sounds.room_and_voice(background, voice_gain))
    return run


def _cpu(lab: Path) -> dict[str, Any]:
    burners = busy_cpu(8.0)
    try:
        time.sleep(0.5)
        return diagnose([], lab / "state", "--only", "system")
    finally:
        for proc in burners:
            proc.kill()
            proc.wait(5)


SCENARIOS: dict[str, Scenario] = {
    "split tunnel": Scenario("vpn_lab", "vpn", "vpn.route", _vpn_split),
    "VPN down": Scenario("vpn_lab", "vpn", "vpn.connected", _vpn_down, ("vpn.route",)),
    "Wi-Fi-like loss in the home network": Scenario(
        "chain_lab", "home", "network.loss", _loss_on("home-router"), ("network.hops",)),
    "ISP loss": Scenario("chain_lab", "isp", "network.loss", _loss_on("router-isp"),
                         ("network.hops",)),
    "loss beyond the ISP": Scenario("chain_lab", "beyond", "network.loss",
                                    _loss_on("isp-center"), ("network.hops",)),
    "slow line": Scenario("chain_lab", "isp", "bandwidth.up", _uplink(1.5, 50)),
    "bufferbloat": Scenario("chain_lab", "home", "bandwidth.bufferbloat", _uplink(5, 300)),
    "built-in microphone": Scenario("audio_lab", "headset", "audio.headset",
                                    _mic("builtin_mic", "loud"), ("audio.noise",)),
    "Bluetooth hands-free": Scenario("audio_lab", "headset", "audio.headset",
                                     _mic("bt_mic", "loud"), ("audio.noise",)),
    "noisy room": Scenario("audio_lab", "room", "audio.noise", _mic("headset_mic", "loud")),
    "low microphone level": Scenario("audio_lab", "headset", "audio.speech_level",
                                     _mic("headset_mic", "quiet", voice_gain=0.08)),
    "mains hum": Scenario("audio_lab", "headset", "audio.hum",
                          _mic("headset_mic", "quiet", hum_dbfs=-37.0)),
    "CPU overload": Scenario("tmp_path", "pc", "system.cpu", _cpu),
}


def test_the_matrix_covers_what_issue_16_asks() -> None:
    assert len(SCENARIOS) >= 12
    assert {s.cause for s in SCENARIOS.values()} <= set(CAUSES)


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_top_cause_is_the_true_one_with_the_checks_own_fix(
        name: str, request: pytest.FixtureRequest) -> None:
    scenario = SCENARIOS[name]
    data = scenario.run(request.getfixturevalue(scenario.lab))
    checks = {c["id"]: c for c in data["checks"]}
    measured = checks[scenario.check]
    # the scenario did make its cause: the check that measures it is bad, and so are the others
    # it must make bad (the competing evidence the ranking has to see through)
    for cid in (scenario.check, *scenario.also_bad):
        assert checks[cid]["status"] in ("fail", "warn"), (name, checks[cid])
    causes = data["causes"]
    ranked = [(c["cause"], c["confidence"], c["evidence"]) for c in causes]
    assert data["likely_cause"] == scenario.cause, (name, ranked, _bad(checks))
    top = causes[0]
    assert top["evidence"][0] == scenario.check, (name, ranked, _bad(checks))
    assert measured["fix"] and top["fix"] == measured["fix"], (name, top, measured)
    assert all(c["confidence"] in CONFIDENCES and "score" not in c for c in causes)
    if scenario.cause == "headset" and scenario.also_bad:
        # recorded through the wrong device, the room's readings are that device's
        assert "room" not in [c["cause"] for c in causes], ranked
    if scenario.check == "network.loss":
        segment = {"home": "home", "isp": "isp", "beyond": "beyond"}[scenario.cause]
        assert checks["network.hops"]["value"] == segment, checks["network.hops"]


def _bad(checks: dict[str, dict[str, Any]]) -> dict[str, tuple[str, Any]]:
    return {cid: (c["status"], c["value"]) for cid, c in checks.items()
            if c["status"] != "pass"}
