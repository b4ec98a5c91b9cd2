#!/usr/bin/env bash
# Makes one builder image; deploy/builders/build.sh decides when (run that, not this). Its content
# is part of every builder's recipe digest, so a change here rebuilds every image; build.sh's own
# command-line handling and listing can change freely.
#
# Usage: deploy/builders/make-image.sh NAME DIGEST
#   NAME    a builder, deploy/builders/NAME (builder.conf, packages.txt, rootfs/)
#   DIGEST  its recipe digest (sha256 hex), put in the image's label and tag
#
# Steps: debootstrap a rootfs of the builder's architecture (a foreign one runs its second stage
# through QEMU user emulation), then `docker load` it as a one-layer image whose config names that
# architecture (`docker import` would label every image amd64). Tags IMAGE and IMAGE-<digest 12>.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/lib.sh

(($# == 2)) || die "usage: deploy/builders/make-image.sh NAME DIGEST (run deploy/builders/build.sh instead)"
name="$1" digest="$2"
dir="deploy/builders/$name"
image="" suite="" arch=""
# shellcheck disable=SC1091
source "$dir/builder.conf"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# oci_architecture DEBIAN_ARCH: "architecture variant" of the OCI image config.
oci_architecture() {
  case "$1" in
    amd64) echo "amd64 " ;;
    arm64) echo "arm64 v8" ;;
    armhf) echo "arm v7" ;;
    riscv64) echo "riscv64 " ;;
    *) die "builder arch $1 is not one of amd64, arm64, armhf, riscv64" ;;
  esac
}

packages=$(grep -v '^\s*#' "$dir/packages.txt" | xargs | tr ' ' ',')
work=$(mktemp -d /var/tmp/crossdock-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
say "builder image $image: debootstrap $suite for $arch with $packages (minutes; foreign architectures run under QEMU)"
# Downloaded packages are kept for the next build of this suite and architecture.
cache="$CROSSDOCK_STATE_DIR/cache/debootstrap/$suite-$arch"
mkdir -p "$cache"
debootstrap --variant=minbase --arch="$arch" --include="$packages" --cache-dir="$cache" \
  "$suite" "$work/rootfs" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  die "debootstrap of $name failed"
}
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
mkdir -p "$work/rootfs/src" "$work/rootfs/out"
if [[ -d $dir/rootfs ]]; then cp -a --no-preserve=ownership "$dir/rootfs/." "$work/rootfs/"; fi

# A docker-archive (the `docker save` format): the rootfs as one layer, a config that names
# the architecture, and a manifest with the tags.
mkdir "$work/image"
tar --numeric-owner -C "$work/rootfs" -cf "$work/image/layer.tar" .
diff_id=$(sha256sum "$work/image/layer.tar" | cut -c1-64)
read -r oci_arch oci_variant <<<"$(oci_architecture "$arch")"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
variant_field=""
if [[ -n $oci_variant ]]; then variant_field="\"variant\":\"$oci_variant\","; fi
cat >"$work/image/config.json" <<JSON
{"architecture":"$oci_arch",$variant_field"os":"linux","created":"$now",
 "config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LANG=C.UTF-8"],
 "WorkingDir":"/src",
 "Labels":{"io.crossdock.builder":"$name","io.crossdock.recipe-digest":"$digest","io.crossdock.suite":"$suite"}},
 "rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]},
 "history":[{"created":"$now","created_by":"deploy/builders/build.sh $name (debootstrap $suite $arch)"}]}
JSON
config_id=$(sha256sum "$work/image/config.json" | cut -c1-64)
mv "$work/image/config.json" "$work/image/$config_id.json"
printf '[{"Config":"%s.json","RepoTags":["%s","%s-%s"],"Layers":["layer.tar"]}]\n' \
  "$config_id" "$image" "$image" "${digest:0:12}" >"$work/image/manifest.json"
tar -C "$work/image" -c . | docker load >/dev/null
