"""Echo: the math on arrays a test builds (known gain, delay, band, noise), and the judging.

The truth here is the gain and delay the test applies; the lab against a real sound server is
tests/test_echo_lab.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from agent_kit.core.policy import PolicyError, load_policy
from agent_kit.core.results import Status
from agent_kit.evaluate.echo import evaluate_echo
from probes.audio.echo import (
    LEAD_S,
    MAX_DELAY_S,
    SAMPLE_RATE,
    TAIL_S,
    WINDOW_AFTER_S,
    EchoReading,
    analyze_echo,
    chirp,
)

LEAD = int(LEAD_S * SAMPLE_RATE)
TOTAL_TAIL = int((MAX_DELAY_S + WINDOW_AFTER_S + TAIL_S) * SAMPLE_RATE)
MAX_LAG = int(MAX_DELAY_S * SAMPLE_RATE)


def layout(probe: np.ndarray) -> np.ndarray:
    played = np.zeros(LEAD + probe.size + TOTAL_TAIL)
    played[LEAD:LEAD + probe.size] = probe
    return played


def echo_of(played: np.ndarray, *, delay: int, erl_db: float, noise_dbfs: float | None,
            seed: int = 0) -> np.ndarray:
    y = np.zeros(played.size)
    y[delay:] = played[:played.size - delay] * 10 ** (-erl_db / 20)
    if noise_dbfs is not None:
        y += np.random.default_rng(seed).normal(0, 10 ** (noise_dbfs / 20), played.size)
    return np.clip(np.round(y * 32768), -32768, 32767).astype(np.int16)


def analyse(played: np.ndarray, recorded: np.ndarray, probe: np.ndarray):
    return analyze_echo(played, recorded, SAMPLE_RATE, probe_start=LEAD, probe_len=probe.size,
                        max_lag=MAX_LAG)


def test_the_chirp_is_at_its_level_and_under_a_second():
    probe = chirp()
    assert probe.size / SAMPLE_RATE < 1.0
    assert 20 * math.log10(float(np.sqrt(np.mean(probe ** 2)))) == pytest.approx(-36.0, abs=1e-9)
    assert np.max(np.abs(probe)) < 10 ** (-32 / 20)   # a -36 dBFS RMS sine: peak -33 dBFS
    assert abs(probe[0]) < 1e-6 and abs(probe[-1]) < 1e-6    # faded: no click


@pytest.mark.parametrize(("erl_db", "delay_ms", "frames"),
                         [(0, 5, 0), (10, 20, 1), (20, 60, 2), (30, 150, 1), (40, 250, 0),
                          (50, 450, 2)])
def test_a_pure_delay_and_gain_reads_back_exactly(erl_db, delay_ms, frames):
    """The response is worked out at 16 kHz; the lag still lands on the 48 kHz frame (the
    extra ``frames`` put the true lag between two 16 kHz taps)."""
    probe = chirp()
    played = layout(probe)
    delay = int(delay_ms * SAMPLE_RATE / 1000) + frames
    reading = analyse(played, echo_of(played, delay=delay, erl_db=erl_db, noise_dbfs=-70),
                      probe)
    assert reading.found
    assert reading.lag_samples is not None and abs(reading.lag_samples - delay) <= 1
    assert reading.erl_db == pytest.approx(erl_db, abs=0.3)
    assert reading.echo_dbfs == pytest.approx(reading.probe_dbfs - erl_db, abs=0.3)


def test_probe_level_is_the_in_band_level_of_what_was_played():
    probe = chirp(level_dbfs=-40.0)
    played = layout(probe)
    reading = analyse(played, echo_of(played, delay=0, erl_db=200, noise_dbfs=-80), probe)
    # a flat chirp over 150-7200 Hz whose 10 ms fades (141 Hz of sweep at each end, mean of a
    # squared raised cosine: 3/8) leave it 7050 - 2 x 141 x 5/8 = 6874 Hz of full density;
    # the band 350-6700 Hz plus two raised-cosine edges of 100 Hz holds 6425 Hz of it
    assert reading.probe_dbfs == pytest.approx(-40.0 + 10 * math.log10(6425 / 6874), abs=0.05)


def test_no_echo_is_no_echo_with_an_honest_bound():
    probe = chirp()
    played = layout(probe)
    for seed in range(5):
        reading = analyse(played, echo_of(played, delay=0, erl_db=200, noise_dbfs=-60,
                                          seed=seed), probe)
        assert not reading.found and reading.erl_db is None and reading.lag_samples is None
        # -60 dBFS of white noise (-65.7 dBFS of it in the band) under a -36 dBFS chirp
        assert reading.erl_at_least_db is not None and 47 < reading.erl_at_least_db < 52


@pytest.mark.parametrize("room", ["loud noise", "bangs", "babble"])
def test_room_noise_never_reads_as_echo(room):
    """A noisy room with no echo path: the response holds noise only, whatever its kind (loud
    steady noise, door-slam impulses, speech-like amplitude-modulated noise): nothing found,
    only a (low) bound."""
    probe = chirp()
    played = layout(probe)
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        t = np.arange(played.size) / SAMPLE_RATE
        if room == "loud noise":
            y = rng.normal(0, 10 ** (-30 / 20), played.size)
        elif room == "bangs":
            y = rng.normal(0, 1e-3, played.size)
            for at in rng.integers(0, played.size - 2000, 4):
                y[at:at + 2000] += 0.5 * np.exp(-np.arange(2000) / 300) * rng.normal(0, 1, 2000)
        else:
            envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))
            y = 0.05 * envelope ** 2 * rng.normal(0, 1, played.size)
        reading = analyse(played, np.clip(y, -1, 1), probe)
        assert not reading.found, (room, seed, reading)
        assert reading.erl_at_least_db is not None


def test_the_bound_is_where_detection_starts():
    """An echo a little weaker than the bound is not found; a little stronger is found: the
    bound is the capture's real limit. Near it the noise inside the echo's own window makes
    the loss uncertain: within 2 dB 6 dB above the bound, within 0.5 dB 15 dB above it."""
    probe = chirp()
    played = layout(probe)
    quiet = analyse(played, echo_of(played, delay=0, erl_db=200, noise_dbfs=-50), probe)
    bound = quiet.erl_at_least_db
    assert bound is not None
    weaker = analyse(played, echo_of(played, delay=2000, erl_db=bound + 3, noise_dbfs=-50),
                     probe)
    stronger = analyse(played, echo_of(played, delay=2000, erl_db=bound - 3, noise_dbfs=-50),
                       probe)
    assert not weaker.found
    assert stronger.found
    for seed in range(6):
        for margin, tolerance in ((6, 2.0), (15, 0.5)):
            clear = analyse(played, echo_of(played, delay=2000, erl_db=bound - margin,
                                            noise_dbfs=-50, seed=seed), probe)
            assert clear.found and clear.erl_db == pytest.approx(bound - margin, abs=tolerance)


def test_a_spread_echo_counts_its_early_energy():
    """Direct sound plus a reflection 10 ms later at half the amplitude: both are in the
    window, so the loss is that of their summed energy."""
    probe = chirp()
    played = layout(probe)
    g = 10 ** (-20 / 20)
    y = np.zeros(played.size)
    y[1000:] += g * played[:-1000]
    y[1480:] += 0.5 * g * played[:-1480]
    y += np.random.default_rng(3).normal(0, 1e-4, y.size)
    reading = analyse(played, y, probe)
    expected = -10 * math.log10(g ** 2 * (1 + 0.25))
    assert reading.found and reading.lag_samples is not None
    assert abs(reading.lag_samples - 1000) <= 1
    assert reading.erl_db == pytest.approx(expected, abs=0.3)


def test_a_band_limited_echo_loses_what_it_does_not_carry():
    """Only the upper half of the band comes back (a tiny laptop speaker has no lows... or a
    filter): half the probe's energy is missing, about 3 dB more loss."""
    probe = chirp()
    played = layout(probe)
    spec = np.fft.rfft(played)
    freqs = np.fft.rfftfreq(played.size, 1 / SAMPLE_RATE)
    cut = 3525.0        # the middle of 250-6800 Hz: the flat chirp's energy halves there
    y = np.fft.irfft(np.where(freqs >= cut, spec, 0), played.size) * 10 ** (-10 / 20)
    y = np.roll(y, 480)
    reading = analyse(played, y, probe)
    assert reading.found and reading.lag_samples is not None
    assert abs(reading.lag_samples - 480) <= 1
    assert reading.erl_db == pytest.approx(13.0, abs=0.5)


def test_digital_silence_is_said_not_measured():
    probe = chirp()
    played = layout(probe)
    reading = analyse(played, np.zeros(played.size, dtype=np.int16), probe)
    assert reading.silent and not reading.found and reading.erl_at_least_db is None


def test_too_short_a_recording_is_refused():
    probe = chirp()
    with pytest.raises(ValueError):
        analyze_echo(probe, probe, SAMPLE_RATE, probe_start=0, probe_len=probe.size,
                     max_lag=MAX_LAG)


# ------------------------------------------------------------------ judging

POLICY = load_policy()


def found(erl: float, delay: float = 40.0) -> EchoReading:
    return EchoReading("desk", SAMPLE_RATE, probe_dbfs=-36.0, found=True, erl_db=erl,
                       echo_dbfs=-36.0 - erl, erl_at_least_db=70.0, delay_ms=delay,
                       round_trip_ms=delay + 60, clock="timestamps", recorded_s=1.46)


def test_laptop_speakers_fail_with_use_the_headset():
    result = evaluate_echo(found(12.0), POLICY)
    assert result.status is Status.FAIL and result.value == 12.0 and result.unit == "dB"
    assert result.fix is not None and "headset" in result.fix and "hear" in result.fix
    assert result.details["delay_ms"] == 40.0 and result.details["echo_found"] is True


def test_levels_follow_the_policy():
    assert evaluate_echo(found(60.0), POLICY).status is Status.PASS
    assert evaluate_echo(found(40.0), POLICY).status is Status.WARN
    assert evaluate_echo(found(30.0), POLICY).status is Status.FAIL   # reaching a level counts


def test_no_echo_passes_with_the_loss_it_proves():
    reading = EchoReading("headset", SAMPLE_RATE, probe_dbfs=-36.0, erl_at_least_db=63.4)
    result = evaluate_echo(reading, POLICY)
    assert result.status is Status.PASS and result.value == 63.4 and result.fix is None
    assert "no echo" in result.message and "at least 63 dB" in result.message
    assert result.details["erl_at_least_db"] == 63.4 and result.details["echo_found"] is False


@pytest.mark.parametrize("bound", [22.0, 38.0, 44.9])
def test_a_noisy_room_warns_with_the_bound_never_fails_or_unknown(bound):
    """Nothing heard, but the noise hid echoes weaker than the warn level: the bound is said
    ("at least X dB") with the room's fix; no echo was heard, so never a fail."""
    reading = EchoReading("headset", SAMPLE_RATE, probe_dbfs=-36.0, erl_at_least_db=bound)
    result = evaluate_echo(reading, POLICY)
    assert result.status is Status.WARN and result.value == bound
    assert "noisy" in result.message and f"at least {bound:.0f} dB" in result.message
    assert result.fix is not None and "quieter" in result.fix
    assert result.details["echo_found"] is False


def test_the_bound_is_judged_against_the_sites_own_warn_level(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[checks."audio.echo"]\nwarn = 35\nfail = 20\n')
    reading = EchoReading("headset", SAMPLE_RATE, probe_dbfs=-36.0, erl_at_least_db=38.0)
    assert evaluate_echo(reading, load_policy(site)).status is Status.PASS


def test_a_failed_stream_and_a_muted_microphone_are_unknown_with_a_reason():
    broken = evaluate_echo(EchoReading(None, SAMPLE_RATE, problem="no device"), POLICY)
    assert broken.status is Status.UNKNOWN and "no device" in broken.message and broken.fix
    muted = evaluate_echo(EchoReading("x", SAMPLE_RATE, probe_dbfs=-36.0, silent=True), POLICY)
    assert muted.status is Status.UNKNOWN and "silence" in muted.message


def test_messages_are_ids_and_parameters_in_every_language():
    from agent_kit.core.i18n import render

    cases = [found(12.0), EchoReading("h", SAMPLE_RATE, probe_dbfs=-36.0, erl_at_least_db=60.0),
             EchoReading("h", SAMPLE_RATE, probe_dbfs=-36.0, erl_at_least_db=30.0)]
    for reading in cases:
        result = evaluate_echo(reading, POLICY)
        assert result.msg is not None
        english = render(result.msg, "en")
        for lang in ("ja", "ko", "sv"):
            text = render(result.msg, lang)
            assert text and text != english, (lang, text)
        if result.fix_msg is not None:
            assert all(render(result.fix_msg, lang) != render(result.fix_msg, "en")
                       for lang in ("ja", "ko", "sv"))


@pytest.mark.parametrize(("key", "value"), [("probe_dbfs", 0), ("probe_dbfs", -80),
                                            ("probe_s", 5), ("probe_dbfs", "loud"),
                                            ("probe_dbfs", "nan")])
def test_a_malformed_probe_setting_is_refused_clearly(tmp_path, key, value):
    path = tmp_path / "p.toml"
    literal = value if not isinstance(value, str) or value == "nan" else f'"{value}"'
    path.write_text(f'[checks."audio.echo"]\n{key} = {literal}\n')
    with pytest.raises(PolicyError, match=key):
        load_policy(path)


# ------------------------------------------------------------------ privacy

ECHO_CODE = ("probes/audio/echo.py", "probes/audio/echo_io.py", "agent_kit/run/echo_step.py",
             "agent_kit/evaluate/echo.py")
NO_AUDIO_OUT = {"open", "write", "tofile", "save", "savez", "savetxt", "dump", "print",
                "debug", "info", "warning", "error", "exception", "upload", "post"}


def test_the_echo_code_keeps_audio_in_memory():
    """Privacy (with the lab's no-file checks: tests/test_audio_lab.py runs the echo test in
    ``check --only audio`` and finds no file; tests/test_echo_lab.py the same on a laptop
    desk): the echo test's code writes nowhere, logs nothing, and its reading is numbers only."""
    import ast
    import dataclasses
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for name in ECHO_CODE:
        tree = ast.parse((root / name).read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                           else [node.module or ""])
                assert not any(m.split(".")[0] in {"logging", "wave", "soundfile", "tempfile",
                                                   "pickle", "httpx", "socket"}
                               for m in modules), (name, modules)
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else (
                    func.attr if isinstance(func, ast.Attribute) else "")
                assert called not in NO_AUDIO_OUT, (name, node.lineno, called)
    for field in dataclasses.fields(EchoReading):
        assert field.type in ("str | None", "int", "float | None", "bool", "str", "float"), field
