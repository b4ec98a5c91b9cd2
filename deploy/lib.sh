# Shared helpers for deploy/*.sh. Source it; it defines functions only.
# Every step says what it did: "ok" when already done, "done" when it changed something.

CROSSDOCK_STATE_DIR="${CROSSDOCK_STATE_DIR:-/var/lib/crossdock}"
CROSSDOCK_ENV_FILE="$CROSSDOCK_STATE_DIR/crossdock.env"

say() { printf '[crossdock] %s\n' "$*"; }
die() { printf '[crossdock] error: %s\n' "$*" >&2; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then die "$what did not become ready within ${seconds}s"; fi
    sleep 0.2
  done
}
