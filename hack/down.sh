#!/usr/bin/env bash
# Undoes hack/up.sh (`make up`), the cluster itself aside:
#   1. deletes the example OverseerRepository while the operator still runs (it
#      removes the finalizer it put there), then the overseer-examples namespace;
#   2. uninstalls the helm release and deletes namespace overseer-system (the CRDs stay: they would take every Overseer
#      resource of the cluster with them; docs/install.rst says how to remove them);
#   3. stops the git daemon serving examples/jobs, by the PID up.sh recorded, and
#      removes its state folder.
# The cluster is KUBECONFIG's, else the local one; when it does not answer (already
# stopped), steps 1 and 2 are skipped. `make down` then stops the local cluster
# (hack/cluster.sh down).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"


if [[ -z ${KUBECONFIG:-} && -e $CLUSTER_STATE/admin.kubeconfig ]]; then
  export KUBECONFIG=$CLUSTER_STATE/admin.kubeconfig
fi
if [[ -s $CLUSTER_STATE/bin-path ]]; then PATH=$(cat "$CLUSTER_STATE/bin-path"):$PATH; fi

if [[ -n ${KUBECONFIG:-} ]] && command -v kubectl >/dev/null &&
   kubectl get --raw /readyz >/dev/null 2>&1; then
  step "removing the example repository and namespace $EXAMPLES_NS"
  if kubectl -n "$EXAMPLES_NS" get overseerrepository "$REPOSITORY" >/dev/null 2>&1; then
    if ! kubectl -n "$EXAMPLES_NS" delete overseerrepository "$REPOSITORY" --timeout=60s >/dev/null 2>&1; then
      # The operator is gone or stuck: nothing else will ever remove its finalizer.
      info "the operator did not release $REPOSITORY in 60s: removing its finalizer"
      kubectl -n "$EXAMPLES_NS" patch overseerrepository "$REPOSITORY" --type=merge \
        -p '{"metadata":{"finalizers":null}}' >/dev/null || true
    fi
  fi
  kubectl delete namespace "$EXAMPLES_NS" --ignore-not-found --wait=false >/dev/null
  if command -v helm >/dev/null && helm status "$RELEASE" -n "$NAMESPACE" >/dev/null 2>&1; then
    step "helm uninstall $RELEASE -n $NAMESPACE (the CRDs stay)"
    helm uninstall "$RELEASE" -n "$NAMESPACE" --wait --timeout 2m >/dev/null
  fi
  # up.sh created it (helm never deletes namespaces).
  kubectl delete namespace "$NAMESPACE" --ignore-not-found --wait=false >/dev/null
else
  info "no cluster answers: nothing to remove from it"
fi

for state in "${OVERSEER_EXAMPLES_DIR:-/var/lib/overseer-examples}" \
             "${XDG_STATE_HOME:-$HOME/.local/state}/overseer-examples"; do
  [[ -d $state ]] || continue
  if [[ -s $state/git-daemon.pid ]]; then
    pid=$(cat "$state/git-daemon.pid")
    # Only the daemon up.sh started: check the process is still that git daemon.
    if kill -0 "$pid" 2>/dev/null && [[ $(tr '\0' ' ' <"/proc/$pid/cmdline") == *"--base-path=$state/repos "* ]]; then
      step "stopping git daemon (pid $pid)"
      kill "$pid"
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  rm -rf "$state"
  info "removed $state"
done
