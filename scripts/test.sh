#!/usr/bin/env bash
# The whole test suite, lab included, on a fresh Debian 12 machine as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
mkdir -p test-artifacts
exec python3 -m pytest -p no:cacheprovider --timeout=600 "$@"
