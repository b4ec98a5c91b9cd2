#!/usr/bin/env bash
# Turns Debian source package PACKAGE into a one-commit git repository with deploy/examples/
# PACKAGE/crossdock.yml as its .crossdock.yml (or RECIPE) and the example's other files (e.g. a
# Dockerfile) at its root, as a bare repository at DEST (made anew), and prints "sha=<sha>". The source package is downloaded once (extract_source_package
# in deploy/lib.sh). The commit is the same for the same inputs (fixed author and dates).
#
# Usage: deploy/examples/make-source-repo.sh PACKAGE DEST [RECIPE]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
package="${1:?usage: make-source-repo.sh PACKAGE DEST [RECIPE]}"
dest="${2:?usage: make-source-repo.sh PACKAGE DEST [RECIPE]}"
recipe="${3:-$here/$package/crossdock.yml}"
[[ -f $recipe ]] || die "no recipe $recipe"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
extract_source_package "$package" "$work/src"
cp "$recipe" "$work/src/.crossdock.yml"
find "$here/$package" -maxdepth 1 -type f ! -name crossdock.yml -exec cp -t "$work/src" {} +
export GIT_AUTHOR_NAME=Crossdock GIT_AUTHOR_EMAIL=crossdock@localhost
export GIT_COMMITTER_NAME=Crossdock GIT_COMMITTER_EMAIL=crossdock@localhost
export GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'
git -C "$work/src" init -q -b main
git -C "$work/src" add -A -f
git -C "$work/src" commit -q -m "$package from Debian, with a Crossdock recipe"
rm -rf "$dest"
git init -q --bare "$dest"
git -C "$dest" config uploadpack.allowAnySHA1InWant true
git -C "$work/src" push -q "$dest" main
echo "sha=$(git -C "$dest" rev-parse main)"
