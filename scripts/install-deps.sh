#!/usr/bin/env bash
# Installs what agent-kit and its test lab need on Debian 12, as root. Idempotent.
# Usage: scripts/install-deps.sh [run|test]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

# The desktop agent: PortAudio for sounddevice; PulseAudio for the audio devices on Linux
# (pulseaudio-utils: pactl lists them, parec records the microphone).
# The center: libopus0 for the scored test call's Opus codec (opuslib loads it).
APT_RUN=(libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins iproute2 libopus0)
# The lab: virtual headset feed, reference meters, namespaces, VPN, PostgreSQL, browser, Xvfb,
# and Japanese/Korean fonts for the translated window's screenshots.
APT_TEST=(sox espeak-ng iperf3 iputils-ping openvpn postgresql chromium chromium-driver xvfb xdotool
          python3-tk gettext imagemagick binutils fonts-ipafont-gothic fonts-nanum nftables
          wrk    # bench/center_load.py's load generator
          alsa-utils    # /usr/share/sounds/alsa/*.wav: a real 48 kHz voice (voice bandwidth lab)
          nodejs)   # the single sign-on lab's OpenID provider (npm's oidc-provider; npm below)

want=("${APT_RUN[@]}")
[ "$mode" = test ] && want+=("${APT_TEST[@]}")
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# npm: Debian's nodejs needs the npm package; NodeSource's nodejs carries npm itself and
# conflicts with that package, so it is installed only when the command is missing.
if [ "$mode" = test ] && ! command -v npm >/dev/null; then
  echo "installing Debian packages: npm"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --upgrade pip >/dev/null
if [ "$mode" = test ]; then
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[center,test,build]'
else
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[center]'
fi

if [ "$mode" = test ]; then
  # the OpenID provider of tests/test_oidc_lab.py, into its cache folder in /tmp
  python3 -m tests.lab.oidc install
fi
