#!/usr/bin/env bash
# Builds the pinned single-binary S3 server (versitygw, whose POSIX backend keeps
# buckets as folders and objects as files) from its upstream Go module into a
# cache folder, once: a second run with the same version and script returns at
# once. The last line printed on stdout is the binary's path; progress goes to
# stderr. Run it as `versitygw --access KEY --secret SECRET --port :PORT posix DIR`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

MODULE=github.com/versity/versitygw
VERSION=v1.8.0
cache=${OVERSEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/overseer}
key=$(cat "$0" | sha256sum | cut -c1-12)
dir="$cache/s3-server/versitygw-$VERSION-$key"
binary="$dir/versitygw"

if [[ -x $binary ]]; then
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || die "Go is needed to build the S3 server; install it (https://go.dev/doc/install) and retry"
step "building versitygw $VERSION (the S3 server of the archive) from $MODULE"
info "first run only: ~150 MB of Go modules, a few minutes on 2 cores; later runs reuse the cache"
start=$(now_ms)
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
# go install with a version builds the module as its own go.mod and go.sum pin it,
# checked against the Go checksum database; -trimpath and no VCS stamp: reproducible.
( while sleep 30; do info "still compiling... $(( ($(now_ms) - start) / 1000 ))s"; done ) &
heartbeat=$!
trap 'kill $heartbeat 2>/dev/null || true' EXIT
GOBIN="$dir.tmp" GOFLAGS=-buildvcs=false go install -trimpath -ldflags "-s -w" "$MODULE/cmd/versitygw@$VERSION"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
info "built in $(( ($(now_ms) - start) / 1000 ))s"
echo "$binary"
