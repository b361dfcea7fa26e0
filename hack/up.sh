#!/usr/bin/env bash
# `make up`: install Overseer on a cluster and sync the example jobs into it.
#
# The cluster is KUBECONFIG's when that is set, otherwise the local one
# (hack/cluster.sh up, which returns at once when it runs already). Then, each
# step idempotent, so a second run only redoes what changed:
#   1. local cluster: build the images (cached) and import those that changed; make sure
#      its ingress controller runs (hack/ingress.sh: Traefik on port 8480 of this machine);
#   2. namespaces overseer-system and overseer-examples, Pod Security `restricted`;
#   3. the CRDs, by server-side apply (helm installs crds/ once and never upgrades them);
#   4. helm upgrade --install overseer charts/overseer, waiting until the operator, the API
#      and the bundled S3 store are ready, and checking that every claim is Bound; on the
#      local cluster with the API's Ingress (class traefik, host overseer.local), checked
#      to answer through the controller;
#   5. examples/jobs committed into a bare git repository that git daemon serves on
#      an address the pods reach (the node's InternalIP when the node is this machine);
#   6. an OverseerRepository for it in overseer-examples; wait until its jobs exist;
#   7. run three example jobs (hack/run-examples.py) and show their events and output.
#
# Environment:
#   OVERSEER_WATCH_NAMESPACES  namespaces the operator serves, space separated, or "all"
#                              for every namespace (the chart's clusterWide). Default: overseer-examples only, so that
#                              the test suite's operators (run on this machine against the
#                              same cluster, one per test namespace) are left alone.
#                              overseer-examples is always added.
#   OVERSEER_IMAGE             operator image (repository:tag) on a cluster other than the
#                              local one; default localhost/overseer/operator:dev
#   OVERSEER_INGRESS_HOST      the API's host name behind the local cluster's ingress
#                              controller (default overseer.local)
#   OVERSEER_INGRESS_PORT      the port it listens on, on this machine (default 8480)
#   OVERSEER_GIT_PORT          port for git daemon (default 9418, else the next free one)
#   OVERSEER_EXAMPLES_DIR      state folder: served repository, git daemon PID and log
#                              (default /var/lib/overseer-examples)
# hack/down.sh undoes all of it but the cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/lib.sh"

CONTAINERD_SOCK=/run/overseer-cluster/containerd.sock # hack/cluster.sh's
OPERATOR_REF=localhost/overseer/operator:dev
FIELD_MANAGER=overseer-make-up
t0=$(now_ms)

examples_state_dir() {
  local dir=${OVERSEER_EXAMPLES_DIR:-/var/lib/overseer-examples}
  if mkdir -p "$dir" 2>/dev/null && [[ -w $dir ]]; then echo "$dir"; return; fi
  dir=${XDG_STATE_HOME:-$HOME/.local/state}/overseer-examples
  mkdir -p "$dir" && echo "$dir"
}

# --- 0. the cluster -------------------------------------------------------------
if [[ -n ${KUBECONFIG:-} && $KUBECONFIG != "$CLUSTER_STATE/admin.kubeconfig" ]]; then
  local_cluster=false
  step "using the cluster of KUBECONFIG=$KUBECONFIG"
  if ! command -v kubectl >/dev/null || ! command -v helm >/dev/null; then
    info "kubectl or helm not on PATH: using the ones hack/build-kube.sh builds (cached)"
    if [[ -s $CLUSTER_STATE/bin-path ]]; then bin=$(cat "$CLUSTER_STATE/bin-path"); else bin=$("$here/build-kube.sh"); fi
    PATH=$bin:$PATH
  fi
else
  local_cluster=true
  step "using the local cluster (hack/cluster.sh up)"
  env_lines=$("$here/cluster.sh" up | tail -2)
  eval "$env_lines"
fi
kubectl get --raw /readyz >/dev/null 2>&1 ||
  die "the cluster does not answer (kubectl get --raw /readyz failed); check KUBECONFIG and the cluster"
info "context $(kubectl config current-context), server $(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')"

diagnose() {
  echo "--- operator pods" >&2
  kubectl -n "$NAMESPACE" get pods -o wide -l app.kubernetes.io/component=operator >&2 || true
  kubectl -n "$NAMESPACE" describe pods -l app.kubernetes.io/component=operator 2>/dev/null | tail -25 >&2 || true
  echo "--- operator log (last 40 lines)" >&2
  kubectl -n "$NAMESPACE" logs "deploy/$RELEASE-operator" -c operator --tail=40 >&2 || true
  echo "--- API log (last 20 lines)" >&2
  kubectl -n "$NAMESPACE" logs "deploy/$RELEASE-api" --tail=20 >&2 || true
  echo "--- store: pods, claims (last 20 log lines)" >&2
  kubectl -n "$NAMESPACE" get pods,pvc -l app.kubernetes.io/component=store >&2 || true
  kubectl -n "$NAMESPACE" logs "statefulset/$RELEASE-store" --tail=20 >&2 || true
}

# --- 1. images (local cluster) ----------------------------------------------------
helm_args=()
if $local_cluster; then
  step "building the images (cached) and importing those that changed"
  images=$("$here/build-images.sh")
  imported=0
  present=$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q)
  while read -r ref archive; do
    # The same record hack/cluster.sh keeps of what it imported, so neither imports twice.
    marker="$CLUSTER_STATE/images/${ref//\//_}"
    if [[ $(cat "$marker" 2>/dev/null) == "$archive" ]] && grep -qx "$ref" <<<"$present"; then
      continue
    fi
    info "importing $ref"
    ctr --address "$CONTAINERD_SOCK" -n k8s.io images import --no-unpack "$archive" >/dev/null
    mkdir -p "$CLUSTER_STATE/images"
    echo "$archive" >"$marker"
    imported=$((imported + 1))
  done <<<"$images"
  (( imported )) || info "all images up to date"
  step "the ingress controller (hack/ingress.sh up)"
  OVERSEER_IMAGES=$images "$here/ingress.sh" up
  ingress_host=${OVERSEER_INGRESS_HOST:-overseer.local}
  ingress_port=${OVERSEER_INGRESS_PORT:-8480}
  public_url=http://$ingress_host:$ingress_port
  helm_args+=(--set api.ingress.enabled=true --set-string "api.ingress.host=$ingress_host"
              --set-string api.ingress.className=traefik --set-string "api.publicUrl=$public_url")
  # The tag stays "dev": naming the archive in a pod annotation restarts the operator
  # and the API (one image) when, and only when, their image changed.
  operator_archive=$(awk -v ref="$OPERATOR_REF" '$1 == ref { print $2 }' <<<"$images")
  archive_name=$(basename "$operator_archive" .tar)
  helm_args+=(--set-string "operator.podAnnotations.overseer\.dev/image-archive=$archive_name"
              --set-string "api.podAnnotations.overseer\.dev/image-archive=$archive_name")
elif [[ -n ${OVERSEER_IMAGE:-} ]]; then
  helm_args+=(--set "image.repository=${OVERSEER_IMAGE%:*}" --set "image.tag=${OVERSEER_IMAGE##*:}")
else
  info "the nodes need the image $OPERATOR_REF: build operator/Dockerfile and load it"
  info "(kind load docker-image ..., k3d image import ...), or set OVERSEER_IMAGE=repository:tag"
fi

# --- 2. namespaces ----------------------------------------------------------------
watch=${OVERSEER_WATCH_NAMESPACES:-$EXAMPLES_NS}
if [[ $watch == all ]]; then
  watch_set='clusterWide=true'
  watch_text="every namespace (clusterWide)"
else
  watch=$(tr ', ' '\n\n' <<<"$watch $EXAMPLES_NS" | awk 'NF && !seen[$0]++' | paste -sd, -)
  watch_set="watchNamespaces=[\"${watch//,/\",\"}\"]"
  watch_text="namespaces ${watch//,/, }"
fi
step "namespaces $NAMESPACE and $EXAMPLES_NS, under the restricted Pod Security Standard"
namespace_gone() { ! kubectl get namespace "$1" >/dev/null 2>&1; }
for ns in "$NAMESPACE" "$EXAMPLES_NS"; do
  if [[ $(kubectl get namespace "$ns" -o jsonpath='{.status.phase}' 2>/dev/null) == Terminating ]]; then
    info "namespace $ns is being deleted (make down?): waiting until it is gone"
    wait_until 180 "namespace $ns to be deleted" namespace_gone "$ns"
  fi
  kubectl apply --server-side --field-manager="$FIELD_MANAGER" -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
    pod-security.kubernetes.io/audit: restricted
YAML
done
if [[ $watch != all ]]; then
  for ns in ${watch//,/ }; do
    kubectl get namespace "$ns" >/dev/null 2>&1 ||
      die "namespace $ns (OVERSEER_WATCH_NAMESPACES) does not exist: create it first"
  done
fi

# --- 3. CRDs ----------------------------------------------------------------------
step "CRDs from charts/overseer/crds (server-side apply)"
kubectl apply --server-side --force-conflicts -f "$top/charts/overseer/crds/" |
  sed 's/^/    /' >&2
for plural in overseerrepositories overseerjobs overseerexecutions; do
  kubectl wait --for=condition=Established "crd/$plural.overseer.dev" --timeout=60s >/dev/null
done

# --- 4. the chart -----------------------------------------------------------------
step "helm upgrade --install $RELEASE charts/overseer -n $NAMESPACE (operator serving $watch_text)"
if ! out=$(helm upgrade --install "$RELEASE" "$top/charts/overseer" --namespace "$NAMESPACE" \
    --create-namespace --wait --timeout 5m --history-max 5 \
    --set-json "$watch_set" "${helm_args[@]}" 2>&1); then
  echo "$out" >&2
  diagnose
  die "helm could not install or upgrade the release: see above"
fi
info "$(awk '/^(STATUS|REVISION):/ { printf "%s ", $0 }' <<<"$out")"
step "waiting for the operator, the API and the store to be ready"
for workload in "deploy/$RELEASE-operator" "deploy/$RELEASE-api" "statefulset/$RELEASE-store"; do
  if ! kubectl -n "$NAMESPACE" rollout status "$workload" --timeout=180s >/dev/null; then
    diagnose
    die "$workload did not become ready"
  fi
done
# The release's claims (the store's) must have found a volume: the provisioner works.
# (Only this namespace's: elsewhere a claim may wait, unbound, for its first pod.)
unbound=$(kubectl -n "$NAMESPACE" get pvc --no-headers -o custom-columns=NAME:.metadata.name,PHASE:.status.phase |
  awk '$2 != "Bound"')
if [[ -n $unbound ]]; then
  kubectl get pvc -A >&2
  diagnose
  die "claims in $NAMESPACE not Bound (is there a default StorageClass? kubectl get storageclass): $unbound"
fi
info "claims (kubectl get pvc -A): $(kubectl get pvc -A --no-headers | awk '{printf "%s/%s %s; ", $1, $2, $3}')"
pod=$(kubectl -n "$NAMESPACE" get pods -l app.kubernetes.io/component=operator,app.kubernetes.io/instance=$RELEASE \
  --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}')
info "pod $pod is Running and ready"
if [[ -n ${public_url:-} ]]; then
  # The Ingress is routed once Traefik has read it and the API's endpoints (a second or so).
  through_ingress() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Host: $ingress_host" \
      "http://127.0.0.1:$ingress_port/readyz") == 200 ]]
  }
  if ! wait_until 60 "the API at $public_url (through Traefik, 127.0.0.1:$ingress_port)" through_ingress; then
    kubectl -n overseer-ingress logs deploy/traefik --tail=20 >&2 || true
    die "the API does not answer through the ingress controller: see Traefik's log above"
  fi
  info "the API answers at $public_url (Host $ingress_host on 127.0.0.1:$ingress_port)"
fi

# --- 5. the example repository, over git:// -----------------------------------------
step "serving examples/jobs to the operator with git daemon"
state=$(examples_state_dir)
repos=$state/repos
bare=$repos/jobs.git
[[ -d $bare ]] || git init -q --bare --initial-branch=main "$bare"
export GIT_AUTHOR_NAME="make up" GIT_AUTHOR_EMAIL=make-up@overseer.invalid
export GIT_COMMITTER_NAME="make up" GIT_COMMITTER_EMAIL=make-up@overseer.invalid
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Commit examples/jobs as it is on disk (edits included) when it differs from the last commit.
tree=$(cd "$top/examples/jobs" && GIT_DIR=$bare GIT_WORK_TREE=. GIT_INDEX_FILE=$scratch/index git add -A . &&
  GIT_DIR=$bare GIT_INDEX_FILE=$scratch/index git write-tree)
head=$(git --git-dir="$bare" rev-parse -q --verify refs/heads/main || true)
if [[ -z $head || $(git --git-dir="$bare" rev-parse "$head^{tree}") != "$tree" ]]; then
  head=$(git --git-dir="$bare" commit-tree "$tree" ${head:+-p "$head"} -m "examples/jobs, committed by make up")
  git --git-dir="$bare" update-ref refs/heads/main "$head"
  info "committed examples/jobs as ${head:0:12}"
else
  info "examples/jobs unchanged since ${head:0:12}"
fi

# Where pods reach this machine: the node's InternalIP when the node is this machine
# (the local cluster), else the address of this machine's default route.
node_ip=$(kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
local_addresses=$(ip -4 -o addr show)
if [[ -n $node_ip && $local_addresses == *" inet $node_ip/"* ]]; then
  address=$node_ip
else
  address=$(ip -4 -o route get 192.0.2.255 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1)
  info "the node ($node_ip) is not this machine: serving on $address, which its pods must reach"
fi
[[ -n $address ]] || die "found no address for git daemon that the pods could reach"

daemon_alive() {
  local pid
  pid=$(cat "$state/git-daemon.pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && [[ $(tr '\0' ' ' <"/proc/$pid/cmdline") == *"--base-path=$repos "* ]]
}
port=
if daemon_alive && [[ $(cat "$state/git-daemon.addr" 2>/dev/null) == "$address":* ]]; then
  port=$(cut -d: -f2 <"$state/git-daemon.addr")
  info "git daemon already serves git://$address:$port/ (pid $(cat "$state/git-daemon.pid"))"
else
  if daemon_alive; then kill "$(cat "$state/git-daemon.pid")"; fi
  for candidate in ${OVERSEER_GIT_PORT:-$(seq 9418 9438)}; do
    if [[ -z $(ss -Hltn "sport = :$candidate") ]]; then port=$candidate; break; fi
  done
  [[ -n $port ]] || die "no free port for git daemon (tried ${OVERSEER_GIT_PORT:-9418-9438})"
  setsid git daemon --reuseaddr --export-all --informative-errors --base-path="$repos" \
    --listen="$address" --port="$port" "$repos" >>"$state/git-daemon.log" 2>&1 </dev/null &
  echo $! >"$state/git-daemon.pid"
  echo "$address:$port" >"$state/git-daemon.addr"
  info "started git daemon on git://$address:$port/ (pid $!, log $state/git-daemon.log)"
fi
url=git://$address:$port/jobs.git
wait_until 20 "git daemon at $url" git ls-remote "$url"

# --- 6. the OverseerRepository ------------------------------------------------------
step "OverseerRepository $EXAMPLES_NS/$REPOSITORY for $url"
kubectl apply --server-side --field-manager="$FIELD_MANAGER" -f - >/dev/null <<YAML
apiVersion: overseer.dev/v1alpha1
kind: OverseerRepository
metadata:
  name: $REPOSITORY
  namespace: $EXAMPLES_NS
spec:
  url: $url
  ref: main
  interval: 1m
YAML
synced=$(kubectl -n "$EXAMPLES_NS" get overseerrepository "$REPOSITORY" -o jsonpath='{.status.commit}')
if [[ -n $synced && $synced != "$head" ]]; then
  # Do not wait for the poll interval: ask for a sync now.
  kubectl -n "$EXAMPLES_NS" annotate --overwrite overseerrepository "$REPOSITORY" \
    "overseer.dev/requested-sync=$(date +%s.%N)" >/dev/null
fi
step "waiting for the operator to sync commit ${head:0:12} into OverseerJobs"
synced_head() {
  [[ $(kubectl -n "$EXAMPLES_NS" get overseerrepository "$REPOSITORY" -o jsonpath='{.status.commit}') == "$head" ]]
}
if ! wait_until 120 "the sync of $url at ${head:0:12}" synced_head; then
  kubectl -n "$EXAMPLES_NS" describe overseerrepository "$REPOSITORY" >&2 || true
  diagnose
  die "the example repository was not synced: see its status and the operator log above"
fi
errors=$(kubectl -n "$EXAMPLES_NS" get overseerrepository "$REPOSITORY" \
  -o jsonpath='{range .status.errors[*]}{.file}: {.message}{"\n"}{end}')
[[ -z $errors ]] || { info "the sync reported errors in job files:"; sed 's/^/      /' <<<"$errors" >&2; }

# --- 7. run example jobs -------------------------------------------------------------
step "running example jobs: an OverseerExecution each, as the REST API will create them"
examples_ok=true
if ! "$top/.venv/bin/python" "$here/run-examples.py" "$EXAMPLES_NS"; then
  examples_ok=false
  diagnose
fi

echo
kubectl get overseer -n "$EXAMPLES_NS"
echo
cat <<EOF
Overseer is up ($(( ($(now_ms) - t0) / 1000 ))s).
  operator   deploy/$RELEASE-operator in namespace $NAMESPACE, serving $watch_text
  api        svc/$RELEASE-api (deploy/$RELEASE-api, 2 replicas), /jobs serving $EXAMPLES_NS${public_url:+,
             at $public_url through the ingress controller (Traefik, 127.0.0.1:$ingress_port)}
  store      statefulset/$RELEASE-store, the output archive (S3) on a claim: kubectl get pvc -A
  examples   examples/jobs, served by git daemon at $url,
             synced into the OverseerJobs above, three of them run (OverseerExecutions)

Next:
EOF
next() { printf '  %-58s # %s\n' "$1" "$2"; }
if $local_cluster; then
  next 'eval "$(make -s cluster-up | tail -2)"' "kubectl and KUBECONFIG in this shell"
fi
next "kubectl get overseer -n $EXAMPLES_NS" "repositories and jobs"
next "kubectl describe osr $REPOSITORY -n $EXAMPLES_NS" "synced commit, conditions, errors"
next "kubectl get osj -n $EXAMPLES_NS -o yaml" "the jobs as synced from git"
next "kubectl get osx -n $EXAMPLES_NS" "executions: status, exit code, duration"
next ".venv/bin/python hack/run-examples.py $EXAMPLES_NS" "run the examples again"
next "TOKEN=\$(kubectl -n $NAMESPACE get secret $RELEASE-api-tokens -o jsonpath='{.data.admin-token}' | base64 -d)" "the API's admin token"
if [[ -n ${public_url:-} ]]; then
  next "curl -H 'Host: $ingress_host' -H \"Authorization: Bearer \$TOKEN\" 127.0.0.1:$ingress_port/jobs" "the example jobs, through the ingress"
  next "echo '127.0.0.1 $ingress_host' >>/etc/hosts" "then $public_url works as it is"
  next "OVERSEER_URL=$public_url OVERSEER_TOKEN=\$TOKEN .venv/bin/overseer jobs" "the same with the CLI (docs/cli.rst)"
  next "open $public_url/console/" "the web console, with that token (docs/console.rst)"
  next "kubectl -n $NAMESPACE port-forward svc/$RELEASE-api 8000:80 &" "or, from elsewhere, a port-forward to localhost:8000"
else
  next "kubectl -n $NAMESPACE port-forward svc/$RELEASE-api 8000:80 &" "the REST API on localhost:8000"
  next 'curl -H "Authorization: Bearer $TOKEN" localhost:8000/jobs' "the example jobs, through the API"
  next 'OVERSEER_TOKEN=$TOKEN .venv/bin/overseer jobs' "the same with the CLI (docs/cli.rst)"
  next "open http://localhost:8000/console/" "the web console, with that token (docs/console.rst)"
fi
next "kubectl logs -n $NAMESPACE deploy/$RELEASE-operator -c operator" "what the operator does"
next "edit examples/jobs/*.yml; make up" "committed and synced at once"
next "make down" "stop all of it"
$examples_ok || die "an example job did not complete: see its status above and the operator log"
