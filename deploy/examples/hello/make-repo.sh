#!/usr/bin/env bash
# Turns Debian's GNU hello source package into a git repository with a .crossdock.yml, as a
# bare repository at DEST (made anew), with:
#   refs/heads/main         GNU hello as Debian ships it, plus .crossdock.yml; tagged v2.10
#   refs/heads/greeting     one commit on top (the head of pull request 123)
#   refs/pull/123/head      the same commit, as GitHub names a pull request's head
#   refs/pull/124/head      a commit on no branch here: a pull request from a fork
# Prints "main=<sha> pr123=<sha> pr124=<sha>". The source package is downloaded once (extract_source_package
# in deploy/lib.sh).
#
# Usage: deploy/examples/hello/make-repo.sh DEST [RECIPE]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../lib.sh"
dest="${1:?usage: make-repo.sh DEST [RECIPE]}"
recipe="${2:-$here/crossdock.yml}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
extract_source_package hello "$work/hello"
cp "$recipe" "$work/hello/.crossdock.yml"
export GIT_AUTHOR_NAME=Crossdock GIT_AUTHOR_EMAIL=crossdock@localhost
export GIT_COMMITTER_NAME=Crossdock GIT_COMMITTER_EMAIL=crossdock@localhost
export GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'
git -C "$work/hello" init -q -b main
git -C "$work/hello" add -A
git -C "$work/hello" commit -q -m 'GNU hello 2.10 from Debian, with a Crossdock recipe'
git -C "$work/hello" tag -a v2.10 -m 'hello 2.10'
git -C "$work/hello" checkout -q -b greeting
echo '* Crossdock: built from pull request 123.' >>"$work/hello/NEWS"
git -C "$work/hello" commit -q -am 'Mention Crossdock in NEWS'
git -C "$work/hello" checkout -q -b fork main
echo '* A change from a fork.' >>"$work/hello/NEWS"
git -C "$work/hello" commit -q -am 'A fork changes NEWS'
rm -rf "$dest"
git init -q --bare "$dest"
git -C "$dest" config uploadpack.allowAnySHA1InWant true
git -C "$dest" config http.receivepack false
git -C "$work/hello" push -q "$dest" main greeting v2.10 greeting:refs/pull/123/head \
  fork:refs/pull/124/head
echo "main=$(git -C "$dest" rev-parse main) pr123=$(git -C "$dest" rev-parse refs/pull/123/head)" \
  "pr124=$(git -C "$dest" rev-parse refs/pull/124/head)"
