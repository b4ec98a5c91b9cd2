#!/usr/bin/env bash
# Builds a builder image from Debian packages with no image registry: debootstrap a rootfs with
# the packages listed in deploy/builders/<name>/packages.txt, then `docker import` it.
#
# Usage: deploy/builders/build.sh NAME [--force]
# The image is tagged crossdock/builder-<distro>:<suite> (for debian-bookworm:
# crossdock/builder-debian:bookworm) and labelled io.crossdock.recipe-digest with the sha256 of
# its recipe (this script and packages.txt); a run whose recipe digest matches the existing
# image's label does nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/lib.sh

name="${1:?usage: deploy/builders/build.sh NAME [--force]}"
force="${2:-}"
recipe_dir="deploy/builders/$name"
[[ -f $recipe_dir/packages.txt ]] || die "no builder recipe at $recipe_dir/packages.txt"
distro="${name%%-*}" suite="${name#*-}"
image="crossdock/builder-$distro:$suite"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

digest=$(cat deploy/builders/build.sh "$recipe_dir/packages.txt" | sha256sum | cut -c1-64)
current=$(docker image inspect -f '{{ index .Config.Labels "io.crossdock.recipe-digest" }}' "$image" 2>/dev/null || true)
if [[ $current == "$digest" && $force != --force ]]; then
  say "builder image $image: ok (recipe ${digest:0:12})"
  exit 0
fi

packages=$(grep -v '^\s*#' "$recipe_dir/packages.txt" | xargs | tr ' ' ',')
work=$(mktemp -d /var/tmp/crossdock-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
say "builder image $image: debootstrap $suite with $packages (about 2 minutes)"
debootstrap --variant=minbase --include="$packages" "$suite" "$work/rootfs" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
tar -C "$work/rootfs" -c . | docker import \
  --change "LABEL io.crossdock.recipe-digest=$digest" \
  --change "LABEL io.crossdock.builder=$name" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'WORKDIR /src' \
  - "$image" >/dev/null
docker tag "$image" "$image-${digest:0:12}"
say "builder image $image: built (recipe ${digest:0:12})"
