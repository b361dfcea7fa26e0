#!/usr/bin/env bash
# Builds kube-network-policies (sigs.k8s.io/kube-network-policies, the Kubernetes
# SIG Network NetworkPolicy enforcer: nftables plus an nfnetlink queue, beside any
# CNI) from its Go module, pinned, into a cache folder, once: a second run with the
# same patch and script returns at once. Prints the binary's path on stdout;
# progress goes to stderr. hack/cluster.sh runs it on the node, like kube-proxy.
#
# hack/netpol/kube-network-policies.patch, applied to the module's source, makes two
# changes (docs/local-cluster.rst says why):
#   - packets go to the queue through the xtables NFQUEUE target (nft_compat), since
#     kernels built without nft_queue (CONFIG_NFT_QUEUE) refuse nftables' own
#     `queue` expression, which upstream uses;
#   - its rules sit in a chain that the input hook jumps to as well as postrouting:
#     a pod's packets to the node itself (the API server of a single-node cluster)
#     are delivered locally and never reach postrouting;
#   - --api-server, --ca-file, --cert-file and --key-file let it run outside a pod.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

MODULE=sigs.k8s.io/kube-network-policies
VERSION=v0.8.0
patch_file="$here/netpol/kube-network-policies.patch"
cache=${OVERSEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/overseer}
key=$(cat "$patch_file" "$0" | sha256sum | cut -c1-12)
out="$cache/netpol/$VERSION-$key"

if [[ -x $out/kube-network-policies ]]; then
  echo "$out/kube-network-policies"
  exit 0
fi

command -v go >/dev/null || die "Go is needed to build kube-network-policies; install it (https://go.dev/doc/install) and retry"
step "downloading $MODULE@$VERSION (Go module proxy)"
dir=$(cd "$cache" 2>/dev/null || mkdir -p "$cache"; GOFLAGS=-mod=mod go mod download -json "$MODULE@$VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d $dir ]] || die "go mod download $MODULE@$VERSION gave no source folder"
src="$out.src"
rm -rf "$src" "$out"
mkdir -p "$(dirname "$src")"
cp -r "$dir" "$src"
chmod -R u+w "$src"
patch -s -d "$src" -p1 <"$patch_file"
step "compiling kube-network-policies $VERSION"
start=$(now_ms)
( cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/kube-network-policies" ./cmd )
rm -rf "$src"
mv "$out.tmp" "$out"
info "built in $(( ($(now_ms) - start) / 1000 ))s"
echo "$out/kube-network-policies"
