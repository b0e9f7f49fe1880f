#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine, as root: install agent-kit, start an embedded local
# center (SQLite in a temporary folder), enroll this workstation with it, and run the onboarding
# check against it. Exit code: the check's (0 ready, 1 not ready, 2 bad input).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh run

port=${AGENT_CENTER_PORT:-8750}
udp_port=${AGENT_CENTER_UDP_PORT:-8751}
work=$(mktemp -d)
export AGENT_KIT_HOME="$work/agent"              # this run's enrollment, not the user's
export AGENT_CENTER_ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
center_log="$work/center.log"

agent-center serve --data-dir "$work/center" --host 127.0.0.1 --port "$port" \
  --udp-port "$udp_port" >"$center_log" 2>&1 &
center_pid=$!
cleanup() { kill "$center_pid" 2>/dev/null || true; wait "$center_pid" 2>/dev/null || true; }
trap cleanup EXIT

url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  if python3 -c "import httpx,sys; sys.exit(httpx.get('$url/healthz', timeout=1).status_code != 200)" 2>/dev/null; then
    break
  fi
  kill -0 "$center_pid" 2>/dev/null || { echo "the center did not start:"; cat "$center_log"; exit 2; }
  sleep 0.2
done
echo "embedded center running at $url (log: $center_log)"

token=$(python3 - "$url" <<'PY'
import os, sys, httpx
r = httpx.post(f"{sys.argv[1]}/api/v1/tokens", json={"uses": 1, "ttl_s": 600, "note": "onboard.sh"},
               headers={"Authorization": f"Bearer {os.environ['AGENT_CENTER_ADMIN_TOKEN']}"})
r.raise_for_status()
print(r.json()["token"])
PY
)
agent-kit enroll --center "$url" --token "$token"

set +e
agent-kit check --center "$url" "$@"
rc=$?
set -e
exit $rc
