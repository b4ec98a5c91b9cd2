#!/usr/bin/env bash
# Builds Crossdock's builder images from Debian packages, with no image registry, when their
# recipe changed or they are too old; make-image.sh does the making (debootstrap, then `docker
# load` of a one-layer image whose config names the architecture).
#
# Usage:
#   deploy/builders/build.sh NAME... [--force] [--max-age HOURS]   build these builders
#   deploy/builders/build.sh --all [--force] [--max-age HOURS]     build every builder
#   deploy/builders/build.sh --list                                list the builder images
#
# A builder is a directory deploy/builders/NAME with builder.conf (image=, suite=, arch= as a
# Debian architecture), packages.txt (Debian packages, one a line) and optionally rootfs/ (files
# copied over the installed system, e.g. CMake toolchain and Meson cross files). Its recipe
# digest is the sha256 of make-image.sh and every file of the builder; the image is labelled with it
# (io.crossdock.recipe-digest) and also tagged IMAGE-<first 12 hex digits>, so an image is
# versioned by its recipe's content. A build whose recipe digest matches the existing image's
# does nothing, unless --force, or unless --max-age and the image is older than HOURS (a
# scheduled refresh picks up Debian's updates: deploy/builders/crossdock-builders.timer).
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/lib.sh

builders_dir=deploy/builders

usage() { die "usage: $builders_dir/build.sh NAME...|--all [--force] [--max-age HOURS] | --list"; }

# read_conf NAME: sets image, suite, arch from deploy/builders/NAME/builder.conf.
read_conf() {
  local dir="$builders_dir/$1"
  [[ -f $dir/builder.conf && -f $dir/packages.txt ]] ||
    die "no builder $1: expected $dir/builder.conf and $dir/packages.txt"
  image="" suite="" arch=""
  # shellcheck disable=SC1090
  source "$dir/builder.conf"
  [[ -n $image && -n $suite && -n $arch ]] || die "$dir/builder.conf must set image=, suite= and arch="
}

# recipe_digest DIR: sha256 of make-image.sh and of DIR's files, names and contents.
recipe_digest() {
  {
    cat "$builders_dir/make-image.sh"
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-64
}

list() {
  printf '%-44s %-12s %-14s %-20s %s\n' IMAGE PLATFORM RECIPE CREATED 'IMAGE ID'
  local name
  for dir in "$builders_dir"/*/; do
    name=$(basename "$dir")
    read_conf "$name"
    local info
    if info=$(docker image inspect -f '{{.Os}}/{{.Architecture}} {{ index .Config.Labels "io.crossdock.recipe-digest" }} {{.Created}} {{.Id}}' "$image" 2>/dev/null); then
      read -r platform recipe created id <<<"$info"
      printf '%-44s %-12s %-14s %-20s %s\n' "$image" "$platform" "${recipe:0:12}" "${created:0:19}" "$id"
    else
      printf '%-44s %-12s %-14s %-20s %s\n' "$image" "-" "-" "-" "not built ($builders_dir/build.sh $name)"
    fi
  done
}

# build NAME FORCE MAX_AGE_HOURS
build() {
  local name="$1" force="$2" max_age="$3"
  read_conf "$name"
  local dir="$builders_dir/$name"
  local digest
  digest=$(recipe_digest "$dir")
  local current created
  current=$(docker image inspect -f '{{ index .Config.Labels "io.crossdock.recipe-digest" }}' "$image" 2>/dev/null || true)
  if [[ $current == "$digest" && $force != true ]]; then
    created=$(docker image inspect -f '{{.Created}}' "$image")
    local age_hours=$((($(date +%s) - $(date -d "$created" +%s)) / 3600))
    if [[ -z $max_age ]] || ((age_hours < max_age)); then
      say "builder image $image: ok (recipe ${digest:0:12}, ${age_hours} h old)"
      return 0
    fi
    say "builder image $image: ${age_hours} h old, refreshing"
  fi

  local started=$SECONDS
  bash "$builders_dir/make-image.sh" "$name" "$digest"
  say "builder image $image: built in $((SECONDS - started)) s (recipe ${digest:0:12}, $(docker image inspect -f '{{.Os}}/{{.Architecture}} {{.Id}}' "$image"))"
}

names=() force=false max_age="" all=false
while (($# > 0)); do
  case "$1" in
    --list) list; exit 0 ;;
    --all) all=true ;;
    --force) force=true ;;
    --max-age) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--max-age takes a number of hours"; max_age="$2"; shift ;;
    -*) usage ;;
    *) names+=("$1") ;;
  esac
  shift
done
if [[ $all == true ]]; then
  for dir in "$builders_dir"/*/; do names+=("$(basename "$dir")"); done
fi
((${#names[@]} > 0)) || usage
for name in "${names[@]}"; do build "$name" "$force" "$max_age"; done
