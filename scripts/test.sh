#!/usr/bin/env bash
# The whole test suite, lab included, on a fresh Debian 12 machine as root.
#
# Two passes over the same tests (arguments go to both, e.g. a test file or -k):
# 1. everything not marked `timing`, in parallel (pytest-xdist, one worker per core, each
#    module on one worker so a module's shared lab is built once);
# 2. the `timing` tests (rates, delays, real-time audio: they measure this machine's time and
#    need it to themselves), one at a time.
# A pass that selects nothing is fine; any failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
mkdir -p test-artifacts
workers=$(python3 -c 'import os; print(max(1, min(4, os.cpu_count() or 1)))')
status=0
run() {
  local rc=0
  python3 -m pytest -p no:cacheprovider --timeout=600 "$@" || rc=$?
  # 5: no test selected by this pass
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=$rc; fi
}
# pytest-benchmark (preinstalled on some machines) warns under xdist, and warnings are errors here
run -n "$workers" --dist loadfile -p no:benchmark -m "not timing" "$@"
run -p no:xdist -m timing "$@"
exit "$status"
