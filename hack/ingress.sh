#!/usr/bin/env bash
# The local cluster's ingress controller, Traefik (hack/traefik.yaml): up, down, status.
#
#   hack/ingress.sh up      import its image (hack/build-images.sh, cached) into the
#                           cluster's containerd when it changed, apply hack/traefik.yaml
#                           and wait until it answers on the node's port
#   hack/ingress.sh down    delete its namespace, IngressClass and ClusterRole(Binding)
#   hack/ingress.sh status  say whether it runs, and where
#
# hack/cluster.sh up runs `up` (the local cluster comes with it); make up then gives the
# chart's Ingress the class traefik. Only for the local cluster: its image is in no registry.
#
# Environment:
#   OVERSEER_INGRESS_PORT   the node's port for HTTP (default 8480): every Ingress of
#                           class traefik at http://127.0.0.1:PORT/ (by its host)
#   OVERSEER_IMAGES         "REF ARCHIVE" lines of hack/build-images.sh, when the caller
#                           has them already (hack/cluster.sh); default: run it
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

CONTAINERD_SOCK=/run/overseer-cluster/containerd.sock # hack/cluster.sh's
INGRESS_NS=overseer-ingress
PORT=${OVERSEER_INGRESS_PORT:-8480}

[[ -e $CLUSTER_STATE/admin.kubeconfig && -s $CLUSTER_STATE/bin-path ]] ||
  die "no local cluster here ($CLUSTER_STATE): run hack/cluster.sh up first"
export KUBECONFIG=$CLUSTER_STATE/admin.kubeconfig
PATH=$(cat "$CLUSTER_STATE/bin-path"):$PATH

# answers: Traefik serves the port (its 404 for a host no Ingress names).
answers() {
  [[ $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: ingress-check.invalid' "http://127.0.0.1:$PORT/") == 404 ]]
}

# imported REF: containerd has the image. (No grep -q: with pipefail, ctr's SIGPIPE fails it.)
imported() {
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q | grep -x "$1" >/dev/null
}

cmd_up() {
  local images ref archive marker node_ip
  # Called alone (the tests, by hand) with the image of this version already imported,
  # it uses that one: hack/build-images.sh would also rebuild the other images.
  ref=localhost/overseer/traefik:$(sed -n 's/^VERSION=//p' "$here/build-traefik.sh")
  if [[ -n ${OVERSEER_IMAGES:-} ]] || ! imported "$ref"; then
    images=${OVERSEER_IMAGES:-$("$here/build-images.sh")}
    read -r ref archive < <(awk '$1 ~ "^localhost/overseer/traefik:" { print $1, $2 }' <<<"$images")
    [[ -n ${ref:-} ]] || die "hack/build-images.sh gave no traefik image"
  fi
  marker="$CLUSTER_STATE/images/${ref//\//_}"
  if [[ -n ${archive:-} && $(cat "$marker" 2>/dev/null) != "$archive" ]] || ! imported "$ref"; then
    info "importing $ref"
    ctr --address "$CONTAINERD_SOCK" -n k8s.io images import --no-unpack "$archive" >/dev/null
    mkdir -p "$CLUSTER_STATE/images"
    echo "$archive" >"$marker"
  fi
  if [[ -n $(ss -Hltn "sport = :$PORT") ]] && ! answers; then
    die "port $PORT is taken by another program (ss -ltnp 'sport = :$PORT'): set OVERSEER_INGRESS_PORT"
  fi
  node_ip=$(kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
  sed -e "s|@IMAGE@|$ref|g" -e "s|@PORT@|$PORT|g" -e "s|@HOST_IP@|${node_ip:-127.0.0.1}|g" \
    "$here/traefik.yaml" |
    kubectl apply --server-side --force-conflicts --field-manager=overseer-cluster -f - >/dev/null
  kubectl -n "$INGRESS_NS" rollout status deploy/traefik --timeout=120s >/dev/null
  wait_until 60 "Traefik to answer on 127.0.0.1:$PORT" answers
  info "Traefik ($ref) serves Ingresses of class traefik on http://127.0.0.1:$PORT/"
}

cmd_down() {
  kubectl delete namespace "$INGRESS_NS" --ignore-not-found --wait=true --timeout=120s >/dev/null
  kubectl delete ingressclass traefik --ignore-not-found >/dev/null
  kubectl delete clusterrolebinding,clusterrole overseer-local:traefik --ignore-not-found >/dev/null
  info "removed Traefik (namespace $INGRESS_NS, IngressClass traefik)"
}

cmd_status() {
  if kubectl -n "$INGRESS_NS" get deploy traefik >/dev/null 2>&1 && answers; then
    echo "traefik: running, http://127.0.0.1:$PORT/"
  else
    echo "traefik: not running"
    return 1
  fi
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) die "usage: $0 up|down|status" ;;
esac
