# Shared helpers for the hack/ scripts. Sourced, not run.
# shellcheck shell=bash

# Names shared by the scripts that install Overseer (up.sh, down.sh, render-manifests.sh).
RELEASE=overseer                # the Helm release
NAMESPACE=overseer-system       # where the operator runs
EXAMPLES_NS=overseer-examples   # where make up syncs examples/jobs
REPOSITORY=examples             # the OverseerRepository make up creates
CLUSTER_STATE=${OVERSEER_CLUSTER_DIR:-/var/lib/overseer-cluster}  # hack/cluster.sh's state

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

# now_ms prints milliseconds since the epoch (for the timings we report).
now_ms() { date +%s%3N; }

# wait_until TIMEOUT_S DESCRIPTION COMMAND... retries COMMAND every half second.
wait_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then
      printf 'error: timed out after %ss waiting for %s\n' "$timeout" "$what" >&2
      return 1
    fi
    sleep 0.5
  done
}
