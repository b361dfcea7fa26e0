#!/usr/bin/env bash
# Builds the local cluster's dynamic storage provisioner, rancher's
# local-path-provisioner (a PersistentVolume per claim, a folder on the node),
# from its upstream Go module into a cache folder, once: a second run with the
# same version and script returns at once. The module and its dependencies come
# from the Go module proxy as upstream's go.mod and go.sum pin them, checked
# against the Go checksum database. Prints the binary's path on stdout; progress
# goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

MODULE=github.com/rancher/local-path-provisioner
VERSION=v0.0.30
cache=${OVERSEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/overseer}
key=$(sha256sum <"$0" | cut -c1-12)
dir="$cache/local-path-provisioner/$VERSION-$key"
binary="$dir/local-path-provisioner"

if [[ -x $binary ]]; then
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || die "Go is needed to build the storage provisioner; install it (https://go.dev/doc/install) and retry"
step "building local-path-provisioner $VERSION (the local cluster's storage provisioner) from $MODULE"
start=$(now_ms)
# The module cache is read-only, so build from a copy, with upstream's own go.mod and
# go.sum (the zip's vendor/ holds only modules.txt: drop it and fetch the modules).
src=$(cd /tmp && go mod download -json "$MODULE@$VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -n $src && -f $src/go.sum ]] || die "go mod download $MODULE@$VERSION gave no source"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$src/." "$scratch/src"
chmod -R u+w "$scratch/src"
rm -rf "$scratch/src/vendor"
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
# Static (no cgo), so the image needs no C library.
(cd "$scratch/src" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
  go build -trimpath -ldflags "-s -w -X main.VERSION=$VERSION" -o "$dir.tmp/local-path-provisioner" .)
rm -rf "$dir"
mv "$dir.tmp" "$dir"
info "built in $(( ($(now_ms) - start) / 1000 ))s"
echo "$binary"
