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

# extract_source_package PACKAGE DIR: unpacks Debian source package PACKAGE (bookworm's version)
# into DIR, which must not exist. The package is downloaded once into
# $CROSSDOCK_STATE_DIR/cache/sources/PACKAGE (needs the deb-src entry deploy/setup.sh adds).
extract_source_package() {
  local package="$1" dir="$2" cache="$CROSSDOCK_STATE_DIR/cache/sources/$1"
  if ! compgen -G "$cache/${package}_*.dsc" >/dev/null; then
    mkdir -p "$cache"
    (cd "$cache" && apt-get source --download-only -qq "$package" >/dev/null 2>&1) ||
      (apt-get update -qq && cd "$cache" && apt-get source --download-only -qq "$package" >/dev/null) ||
      die "apt-get source $package failed: run deploy/setup.sh first (it adds the deb-src entry)"
  fi
  dpkg-source --no-check -x "$(compgen -G "$cache/${package}_*.dsc" | head -1)" "$dir" >/dev/null 2>&1 ||
    die "dpkg-source could not unpack $package"
}
