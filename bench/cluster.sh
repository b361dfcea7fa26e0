#!/usr/bin/env bash
# Measures the local cluster: cold build time (optional, --cold: compiles
# everything from an empty Go build and module cache, 15-40 minutes), warm
# `cluster-up` time (binaries and images cached, cluster stopped), the time a
# second `cluster-up` takes on a running cluster, and the memory the running
# cluster uses. Prints the figures; asserts nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/hack/lib.sh"

secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }

if [[ ${1:-} == --cold ]]; then
  tmp=$(mktemp -d)
  trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
  t=$(now_ms)
  GOCACHE=$tmp/gocache GOMODCACHE=$tmp/gomod GOFLAGS="-modcacherw -buildvcs=false" \
    OVERSEER_CACHE=$tmp/cache "$here/hack/build-kube.sh" >/dev/null
  cold_ms=$(( $(now_ms) - t ))
  printf 'cold build (empty Go caches, incl. module download): %ss\n' "$(secs $cold_ms)"
fi

"$here/hack/cluster.sh" down >/dev/null 2>&1
t=$(now_ms); "$here/hack/cluster.sh" up >/dev/null 2>&1; warm_ms=$(( $(now_ms) - t ))
t=$(now_ms); "$here/hack/cluster.sh" up >/dev/null 2>&1; again_ms=$(( $(now_ms) - t ))
sleep 20  # let the components settle before reading memory
total=0
printf '%-26s %10s\n' component "RSS (MiB)"
for pidfile in /run/overseer-cluster/pids/*.pid; do
  name=$(basename "$pidfile" .pid)
  kb=$(awk '/^VmRSS/ {print $2}' "/proc/$(cat "$pidfile")/status" 2>/dev/null || echo 0)
  total=$(( total + kb ))
  printf '%-26s %10d\n' "$name" $(( kb / 1024 ))
done
shims=$(pgrep -f 'containerd-shim-runc-v2 .*overseer-cluster' | xargs -r -I{} awk '/^VmRSS/ {print $2}' /proc/{}/status | paste -sd+ | bc 2>/dev/null || echo 0)
printf '%-26s %10d\n' "containerd shims" $(( ${shims:-0} / 1024 ))
printf '%-26s %10d\n' total $(( (total + ${shims:-0}) / 1024 ))
printf 'warm cluster-up (cached, cluster stopped): %ss\n' "$(secs $warm_ms)"
printf 'cluster-up on a running cluster: %ss\n' "$(secs $again_ms)"
