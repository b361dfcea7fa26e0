#!/usr/bin/env bash
# Builds the local cluster's ingress controller, Traefik (its Kubernetes Ingress
# provider routes the chart's Ingress; hack/ingress.sh deploys it), from its
# upstream Go module into a cache folder, once: a second run with the same
# version and recipe returns at once. The module and its dependencies come from
# the Go module proxy as upstream's go.mod and go.sum pin them, checked against
# the Go checksum database. Prints the binary's path on stdout; progress goes to
# stderr.
#
# v3.6 is the newest line that builds from the module proxy alone: v3.7's go.mod
# replaces github.com/traefik/traefik/dynamic/ext with a folder of the repository
# that is a module of its own, so it is not in the module's zip, and the proxy
# does not serve it (docs/decisions.rst).
#
# Traefik is large (about 2,500 packages, all its providers and ACME's DNS
# clients): the first build takes minutes on 2 cores (docs/local-cluster.rst);
# later ones reuse the cache folder, and a changed recipe Go's build cache.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

MODULE=github.com/traefik/traefik/v3
VERSION=v3.6.12
# What makes the binary: the version and these flags. (Not the script's digest, as in
# the other build scripts: a comment changed here must not cost a Traefik build.)
LDFLAGS="-s -w -X $MODULE/pkg/version.Version=$VERSION -X $MODULE/pkg/version.Codename=overseer-local"
cache=${OVERSEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/overseer}
key=$(echo "$VERSION CGO_ENABLED=0 -trimpath $LDFLAGS" | sha256sum | cut -c1-12)
dir="$cache/traefik/$VERSION-$key"
binary="$dir/traefik"

if [[ -x $binary ]]; then
  echo "$binary"
  exit 0
fi

# The tests deploy it when it is missing, but never build it (minutes): they say so.
[[ -z ${OVERSEER_TRAEFIK_CACHED_ONLY:-} ]] ||
  die "Traefik $VERSION is not built yet: run make images (or make cluster-up) once"
command -v go >/dev/null || die "Go is needed to build the ingress controller; install it (https://go.dev/doc/install) and retry"
step "building Traefik $VERSION (the local cluster's ingress controller) from $MODULE"
info "first run only: ~700 MB of Go modules and several minutes of compiling on 2 cores; later runs reuse the cache"
start=$(now_ms)
# The module cache is read-only, and go.mod has replace directives (go install
# MODULE@VERSION refuses those): build in a copy of the module, with its go.mod and go.sum.
src=$(cd /tmp && go mod download -json "$MODULE@$VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -n $src && -f $src/go.sum ]] || die "go mod download $MODULE@$VERSION gave no source"
scratch=$(mktemp -d)
( while sleep 60; do info "still compiling Traefik... $(( ($(now_ms) - start) / 1000 ))s"; done ) &
heartbeat=$!
trap 'kill $heartbeat 2>/dev/null || true; rm -rf "$scratch"' EXIT
cp -r "$src/." "$scratch/src"
chmod -R u+w "$scratch/src"
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
# Static (no cgo), so the image needs no C library. The web UI's assets are not in the
# module (upstream builds them with yarn): the dashboard is off, and not needed here.
(cd "$scratch/src" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
  go build -trimpath -ldflags "$LDFLAGS" -o "$dir.tmp/traefik" ./cmd/traefik)
rm -rf "$dir"
mv "$dir.tmp" "$dir"
info "built in $(( ($(now_ms) - start) / 1000 ))s ($(du -m "$binary" | cut -f1) MB)"
echo "$binary"
