#!/usr/bin/env bash
# The local single-node Kubernetes cluster: up, down, status.
#
#   hack/cluster.sh up      build (cached) and start etcd, the control plane,
#                           containerd, the kubelet, kube-proxy and a NetworkPolicy
#                           enforcer (kube-network-policies); import the
#                           local images; wait until the node is Ready; deploy
#                           the storage provisioner (default StorageClass) and
#                           the ingress controller (hack/ingress.sh: Traefik on the
#                           node's port 8480, IngressClass traefik, the default)
#   hack/cluster.sh down    stop all of it, unmount, remove network state
#   hack/cluster.sh status  say what runs
#   hack/cluster.sh stop-apiserver | start-apiserver | restart-containerd
#                           faults for the chaos tests: stop or restart one component
#
# State lives in $OVERSEER_CLUSTER_DIR (default /var/lib/overseer-cluster),
# runtime files in /run/overseer-cluster, logs in $OVERSEER_CLUSTER_DIR/logs.
# The last line of `up` is `export KUBECONFIG=...`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

STATE=${OVERSEER_CLUSTER_DIR:-/var/lib/overseer-cluster}
RUN=/run/overseer-cluster
LOGS=$STATE/logs
PKI=$STATE/pki
NODE_NAME=overseer-local
CONTEXT=overseer-local
POD_CIDR=10.88.0.0/16
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
API_PORT=6443
CONTAINERD_SOCK=$RUN/containerd.sock
# PersistentVolumes of the local-path StorageClass: folders here, removed by down.
STORAGE_DIR=$STATE/storage
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy kube-network-policies)
NETPOL_TABLE=kube-network-policies # its nftables table (inet)

host_ip() {
  # The address pods use to reach the host (API server endpoint, webhook receivers in tests).
  ip -4 -o route get 192.0.2.255 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1
}

pid_of() { local f="$RUN/pids/$1.pid"; [[ -s $f ]] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }
running() { pid_of "$1" >/dev/null; }

# start NAME COMMAND...: runs COMMAND in its own session, logs to $LOGS/NAME.log.
start() {
  local name=$1; shift
  if running "$name"; then info "$name already running (pid $(pid_of "$name"))"; return; fi
  info "starting $name"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/pids/$name.pid"
}

kubectl_admin() { "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

# --- certificates and kubeconfigs -------------------------------------------
cert() { # cert NAME CN [O] [SANS]
  local name=$1 cn=$2 org=${3:-} sans=${4:-}
  [[ -e $PKI/$name.crt ]] && return
  local subj="/CN=$cn"; [[ -n $org ]] && subj="/O=$org$subj"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  local ext="$PKI/$name.ext"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' >"$ext"
  [[ -n $sans ]] && printf 'subjectAltName=%s\n' "$sans" >>"$ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

kubeconfig() { # kubeconfig FILE CERTNAME [CONTEXT]
  local file=$1 name=$2 context=${3:-$2}
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: $CONTEXT
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $name
  user:
    client-certificate: $PKI/$name.crt
    client-key: $PKI/$name.key
contexts:
- name: $context
  context: {cluster: $CONTEXT, user: $name}
current-context: $context
KC
}

make_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  if [[ ! -e $PKI/ca.crt ]]; then
    step "generating certificates and kubeconfigs"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
      -days 3650 -subj "/CN=overseer-local-ca" 2>/dev/null
  fi
  local ip=$1
  cert apiserver kube-apiserver "" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$KUBERNETES_SVC_IP,IP:$ip"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert admin overseer-admin system:masters
  cert controller-manager system:kube-controller-manager
  cert scheduler system:kube-scheduler
  cert kubelet "system:node:$NODE_NAME" system:nodes "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$ip"
  cert kube-proxy system:kube-proxy
  cert kube-network-policies system:kube-network-policies
  [[ -e $PKI/sa.key ]] || { openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null; openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null; }
  # The context name marks this as a test cluster for the test fixtures.
  kubeconfig "$STATE/admin.kubeconfig" admin "$CONTEXT"
  for c in controller-manager scheduler kubelet kube-proxy; do kubeconfig "$STATE/$c.kubeconfig" "$c"; done
}

# restrict_oom prints true when this process may not lower OOM scores (no CAP_SYS_RESOURCE).
restrict_oom() {
  local eff; eff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
  (( (16#$eff >> 24) & 1 )) && echo false || echo true
}

write_configs() {
  local ip=$1
  mkdir -p "$STATE/cni/net.d" "$STATE/containerd" "$STATE/kubelet"
  cat >"$STATE/cni/net.d/10-overseer.conflist" <<CNI
{
  "cniVersion": "0.4.0",
  "name": "overseer",
  "plugins": [
    {"type": "bridge", "bridge": "overseer0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$STATE/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CNI
  cat >"$STATE/containerd/config.toml" <<TOML
version = 2
root = "$STATE/containerd/root"
state = "$RUN/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/overseer/pause:3.10"
  # Without CAP_SYS_RESOURCE (some VMs and containers) the kubelet's negative
  # OOM scores for sandboxes fail every pod start; clamp them to containerd's own.
  restrict_oom_score_adj = $(restrict_oom)
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
TOML
  cat >"$STATE/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
failSwapOn: false
# Images cannot be pulled again here, so never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
serializeImagePulls: false
containerLogMaxSize: 100Mi
containerLogMaxFiles: 3
resolvConf: /etc/resolv.conf
podCIDR: $POD_CIDR
maxPods: 110
YAML
  # Every write call is audited (metadata only), so tests and benchmarks can count
  # what a component really sent instead of assuming it.
  cat >"$STATE/audit-policy.yaml" <<YAML
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  verbs: [get, list, watch]
- level: None
  resources: [{group: coordination.k8s.io, resources: [leases]}]
- level: Metadata
YAML
  cat >"$STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
bindAddress: $ip
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0}
YAML
}

# The NetworkPolicy enforcer reads policies, pods, namespaces and nodes: nothing else.
netpol_rbac() {
  kubectl_admin apply --server-side --field-manager=overseer-cluster -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "overseer-local:kube-network-policies"}
rules:
  - apiGroups: [""]
    resources: [pods, namespaces, nodes]
    verbs: [get, list, watch]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "overseer-local:kube-network-policies"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "overseer-local:kube-network-policies"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:kube-network-policies"}]
YAML
}

# start_netpol: kube-network-policies on the host, like kube-proxy. It sends to its
# nfnetlink queue only the packets from and to pods that a NetworkPolicy selects, so
# pods of namespaces without one are left alone; --fail-open lets packets through
# while it is not running (docs/local-cluster.rst).
start_netpol() {
  netpol_rbac
  start kube-network-policies "$NETPOL" --api-server "https://127.0.0.1:$API_PORT" \
    --ca-file "$PKI/ca.crt" --cert-file "$PKI/kube-network-policies.crt" \
    --key-file "$PKI/kube-network-policies.key" --hostname-override "$NODE_NAME" \
    --fail-open --netfilter-bug-1766-fix=false --metrics-bind-address 127.0.0.1:9080 --v 1
}

prepare_host() {
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || modprobe br_netfilter 2>/dev/null ||
    die "br_netfilter is not available: kube-proxy needs bridged traffic to pass iptables"
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
  swapoff -a 2>/dev/null || true
}

# start_apiserver IP: start kube-apiserver (advertising IP) and wait until it is ready.
start_apiserver() {
  local ip=$1
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 --bind-address 0.0.0.0 --secure-port "$API_PORT" \
    --advertise-address "$ip" --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true \
    --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction,PodSecurity --profiling=false \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --audit-policy-file "$STATE/audit-policy.yaml" --audit-log-path "$LOGS/audit.log" \
    --audit-log-maxsize 100 --audit-log-maxbackup 1 --v 1
  wait_until 120 "the API server" kubectl_admin get --raw /readyz
}

cmd_up() {
  local t0; t0=$(now_ms)
  if running kube-apiserver && running kubelet && [[ -e $STATE/admin.kubeconfig ]]; then
    BIN=$(cat "$STATE/bin-path")
    if kubectl_admin get --raw /readyz >/dev/null 2>&1; then
      step "cluster already running"
      if ! running kube-network-policies; then # started before the enforcer was part of it
        NETPOL=$("$here/build-netpol.sh")
        cert kube-network-policies system:kube-network-policies
        start_netpol
      fi
      print_env; return
    fi
  fi
  [[ $(id -u) == 0 ]] || die "the local cluster needs root (it runs containerd and the kubelet): run as root"
  if [[ -d $STATE || -d $RUN ]]; then
    # A cluster whose processes were killed (a reboot, a CI sandbox) leaves mounts,
    # shims and half-written state behind: start from a clean slate instead.
    step "cleaning up what a previous cluster left behind"
    cmd_down >/dev/null 2>&1 || true
  fi
  step "building Kubernetes components (cached after the first run)"
  BIN=$("$here/build-kube.sh")
  step "building the NetworkPolicy enforcer (cached after the first run)"
  NETPOL=$("$here/build-netpol.sh")
  step "building images"
  local images; images=$("$here/build-images.sh")

  local ip; ip=$(host_ip)
  [[ -n $ip ]] || die "no IPv4 address with a route found; the API server needs one that pods can reach"
  mkdir -p "$STATE" "$RUN/pids" "$LOGS"
  echo "$BIN" >"$STATE/bin-path"
  make_pki "$ip"
  write_configs "$ip"
  prepare_host

  step "starting etcd"
  start etcd "$BIN/etcd" --name default --data-dir "$STATE/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster default=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
    --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn
  wait_until 60 "etcd" curl -fsS http://127.0.0.1:2379/health

  step "starting containerd"
  start containerd containerd --config "$STATE/containerd/config.toml"

  step "starting the control plane"
  start_apiserver "$ip"
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials=true --leader-elect=false --bind-address 127.0.0.1 \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" --v 1
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" --leader-elect=false --bind-address 127.0.0.1 --v 1

  wait_until 60 "containerd" ctr --address "$CONTAINERD_SOCK" version
  step "importing local images into containerd"
  local ref archive
  while read -r ref archive; do
    if ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q | grep -x "$ref" >/dev/null &&
       [[ $(cat "$STATE/images/${ref//\//_}" 2>/dev/null) == "$archive" ]]; then
      continue
    fi
    info "$ref"
    ctr --address "$CONTAINERD_SOCK" -n k8s.io images import --no-unpack "$archive" >/dev/null
    mkdir -p "$STATE/images"; echo "$archive" >"$STATE/images/${ref//\//_}"
  done <<<"$images"

  step "starting the node (kubelet, kube-proxy, kube-network-policies)"
  start kubelet "$BIN/kubelet" --config "$STATE/kubelet/config.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
    --root-dir "$STATE/kubelet" --hostname-override "$NODE_NAME" --node-ip "$ip" --v 1
  start kube-proxy "$BIN/kube-proxy" --config "$STATE/kube-proxy.yaml" --v 1
  start_netpol

  step "waiting for the node to be Ready"
  wait_until 180 "node $NODE_NAME to register" kubectl_admin get node "$NODE_NAME"
  kubectl_admin wait --for=condition=Ready "node/$NODE_NAME" --timeout=180s >/dev/null
  wait_until 120 "the default service account" kubectl_admin -n default get serviceaccount default
  step "checking that Services work through kube-proxy"
  wait_until 120 "the kubernetes Service at $KUBERNETES_SVC_IP" \
    curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://$KUBERNETES_SVC_IP/readyz"
  deploy_provisioner "$images"
  step "deploying the ingress controller (Traefik, IngressClass traefik, the default)"
  OVERSEER_IMAGES=$images "$here/ingress.sh" up
  info "cluster up in $(( ($(now_ms) - t0) / 1000 ))s; logs in $LOGS"
  print_env
}

# deploy_provisioner IMAGES: local-path-provisioner (hack/local-path-provisioner.yaml) and
# its StorageClass, the default, so that PersistentVolumeClaims bind.
deploy_provisioner() {
  step "deploying the storage provisioner (StorageClass local-path, the default)"
  local image helper
  image=$(awk '$1 ~ "^localhost/overseer/local-path-provisioner:" { print $1 }' <<<"$1")
  helper=$(awk '$1 ~ "^localhost/overseer/testbox:" { print $1 }' <<<"$1")
  [[ -n $image && -n $helper ]] || die "hack/build-images.sh gave no provisioner or testbox image"
  mkdir -p "$STORAGE_DIR"
  sed -e "s|@STORAGE_DIR@|$STORAGE_DIR|g" -e "s|@IMAGE@|$image|g" -e "s|@HELPER_IMAGE@|$helper|g" \
    "$here/local-path-provisioner.yaml" | kubectl_admin apply --server-side --force-conflicts \
    --field-manager=overseer-cluster -f - >/dev/null
  kubectl_admin -n local-path-storage rollout status deploy/local-path-provisioner --timeout=120s >/dev/null
}

print_env() {
  echo "export PATH=$BIN:\$PATH"
  echo "export KUBECONFIG=$STATE/admin.kubeconfig"
}

kill_tree_by_pidfile() {
  local name=$1 pid
  pid=$(pid_of "$name") || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$RUN/pids/$name.pid"
}

cmd_down() {
  step "stopping the local cluster"
  local c
  for c in kube-network-policies kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver; do
    kill_tree_by_pidfile "$c"
  done
  nft delete table inet "$NETPOL_TABLE" 2>/dev/null || true
  # Containers outlive containerd (each has its shim): kill them by their cgroups, then the shims.
  local procs
  procs=$(cat /sys/fs/cgroup/pids/kubepods/cgroup.procs /sys/fs/cgroup/pids/kubepods/*/cgroup.procs \
    /sys/fs/cgroup/pids/kubepods/*/*/cgroup.procs /sys/fs/cgroup/pids/kubepods/*/*/*/cgroup.procs 2>/dev/null || true)
  [[ -n $procs ]] && { info "killing $(wc -w <<<"$procs") container processes"; kill -KILL $procs 2>/dev/null || true; }
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null || true
  kill_tree_by_pidfile containerd
  kill_tree_by_pidfile etcd
  local pid
  for pid in $(pgrep -f "$STATE|$RUN" 2>/dev/null || true); do
    [[ $pid == $$ || $pid == $BASHPID ]] && continue
    kill -KILL "$pid" 2>/dev/null || true
  done

  info "unmounting"
  local m
  for m in $(awk '{print $2}' /proc/mounts | grep -E "^($STATE|$RUN|/run/netns/cni-|/var/run/netns/cni-)" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  rm -f /run/netns/cni-* 2>/dev/null || true

  info "removing network and cgroup state"
  ip link del overseer0 2>/dev/null || true
  local save attempt
  for save in iptables ip6tables; do
    command -v "$save-save" >/dev/null || continue
    # Retried: a restore races with anything else holding the xtables lock. (No
    # grep -q here: it would close the pipe early, and pipefail would see SIGPIPE.)
    for attempt in 1 2 3 4 5; do
      (( $("$save-save" 2>/dev/null | grep -cE 'KUBE-|CNI-') )) || break
      "$save-save" | grep -vE 'KUBE-|CNI-' | "$save-restore" -w 5 2>/dev/null || sleep 1
    done
  done
  local cg
  for cg in /sys/fs/cgroup/*/kubepods; do
    [[ -d $cg ]] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rm -rf "$RUN" "$STATE"
  step "local cluster stopped"
}

cmd_status() {
  local c any=0
  for c in "${COMPONENTS[@]}"; do
    if running "$c"; then printf '%-24s running (pid %s)\n' "$c" "$(pid_of "$c")"; any=1
    else printf '%-24s stopped\n' "$c"; fi
  done
  if (( any )) && [[ -e $STATE/bin-path ]]; then
    BIN=$(cat "$STATE/bin-path")
    kubectl_admin get nodes -o wide 2>/dev/null || true
    echo "export KUBECONFIG=$STATE/admin.kubeconfig"
  fi
}

# --- faults, for the chaos tests (tests/e2e/test_chaos_*.py, make chaos) ---------------
# Each stops or restarts one component of the running cluster and nothing else; the
# state, the certificates and every other process stay as they are.

running_cluster() {
  [[ -e $STATE/bin-path ]] || die "no local cluster here ($STATE): run $0 up first"
  BIN=$(cat "$STATE/bin-path")
}

cmd_stop_apiserver() {
  running_cluster
  running kube-apiserver || { info "kube-apiserver is not running"; return; }
  step "stopping kube-apiserver"
  kill_tree_by_pidfile kube-apiserver
}

cmd_start_apiserver() {
  running_cluster
  local ip; ip=$(host_ip)
  step "starting kube-apiserver"
  start_apiserver "$ip"
}

cmd_restart_containerd() {
  # Only containerd itself: the containers' shims (and so the containers) live on, as
  # in a runtime upgrade or crash; the kubelet reconnects on its own.
  running_cluster
  local pid; pid=$(pid_of containerd) || die "containerd is not running"
  step "restarting containerd (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN/pids/containerd.pid"
  start containerd containerd --config "$STATE/containerd/config.toml"
  wait_until 60 "containerd" ctr --address "$CONTAINERD_SOCK" version
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  stop-apiserver) cmd_stop_apiserver ;;
  start-apiserver) cmd_start_apiserver ;;
  restart-containerd) cmd_restart_containerd ;;
  *) echo "usage: $0 up|down|status|stop-apiserver|start-apiserver|restart-containerd" >&2; exit 2 ;;
esac
