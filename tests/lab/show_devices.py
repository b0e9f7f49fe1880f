"""Lab demo: ``agent-kit devices`` against a private PulseAudio with a typical home desk.

Builds, with ``tests/lab/pulse.py``, a USB headset (microphone and speaker, the system's
defaults), the laptop's built-in microphone and speakers, a webcam's microphone and a Bluetooth
headset's microphone in the hands-free profile, then runs the real CLI against that server and
prints what it printed (the output pasted in the README comes from here).

    python -m tests.lab.show_devices [--json] [--default-source NAME]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from tests.lab.pulse import pulse_server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="run agent-kit devices --json")
    parser.add_argument("--default-source", default="headset_mic",
                        help="which microphone is the system default (headset_mic, builtin_mic, "
                             "webcam_mic, bt_headset_mic)")
    args = parser.parse_args()
    with pulse_server(set_process_env=False) as server:
        server.add_speaker("headset_out", "Jabra Evolve2 40", bus="usb", form_factor="headset",
                           default=True)
        server.add_microphone("headset_mic", "Jabra Evolve2 40", bus="usb",
                              form_factor="headset", vendor_id="0b0e", product_id="24f1")
        server.add_speaker("builtin_out", "Built-in Audio Analog Stereo", bus="pci",
                           form_factor="internal")
        server.add_microphone("builtin_mic", "Built-in Audio Analog Stereo", bus="pci",
                              form_factor="internal")
        server.add_microphone("webcam_mic", "HD Pro Webcam C920", bus="usb",
                              form_factor="webcam", vendor_id="046d", product_id="082d")
        server.add_microphone("bt_headset_mic", "WH-1000XM4", bus="bluetooth",
                              form_factor="headset",
                              extra={"bluetooth.protocol": "headset_head_unit",
                                     "api.bluez5.codec": "cvsd"})
        server.set_default_source(args.default_source)
        cmd = [sys.executable, "-m", "agent_kit.face.cli", "devices", "--lang", "en"]
        if args.json:
            cmd.append("--json")
        proc = subprocess.run(cmd, env=server.env, capture_output=True, text=True, timeout=60)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
