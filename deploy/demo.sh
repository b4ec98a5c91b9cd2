#!/usr/bin/env bash
# Quick start: brings the whole stack up on this machine (deploy/setup.sh), starts the portal
# and a worker in the background, turns Debian's GNU hello source package into a git repository
# with a .crossdock.yml, and cross-builds pull request 123 for linux/arm64 through the CLI, which
# takes the same grammar as Slack's /build. Prints the portal URL where the artifacts download.
#
# Usage: deploy/demo.sh [BUILD ARGS…]   (default: arm64 pr-123 in demo/hello)
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh
bash deploy/setup.sh
set -a; source "$CROSSDOCK_ENV_FILE"; set +a
export PORTAL_URL="${PORTAL_URL:-http://127.0.0.1:8080}"
run_dir="$CROSSDOCK_STATE_DIR/run"
mkdir -p "$run_dir"

# start_once NAME COMMAND…: starts COMMAND in the background unless NAME's pid file is alive.
start_once() {
  local name="$1"; shift
  local pid_file="$run_dir/$name.pid"
  if [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    say "$name: ok (pid $(cat "$pid_file"))"
    return
  fi
  nohup "$@" >>"/var/log/crossdock-$name.log" 2>&1 &
  echo $! >"$pid_file"
  say "$name: started (pid $!, log /var/log/crossdock-$name.log)"
}
start_once portal npx tsx portal/main.ts
WORKER_ID="$(hostname)-demo" WORKER_PLATFORMS=linux/amd64 start_once worker npx tsx worker/main.ts
wait_for portal 60 curl -fsS "$PORTAL_URL/healthz"

repo_dir="$CROSSDOCK_STATE_DIR/demo/git/demo/hello.git"
mkdir -p "$(dirname "$repo_dir")"
bash deploy/examples/hello/make-repo.sh "$repo_dir" >/dev/null
npx tsx bot/cli/main.ts repo add demo/hello --git-url "$repo_dir"
if (($# == 0)); then set -- arm64 pr-123 in demo/hello; fi
npx tsx bot/cli/main.ts build "$@" --wait
