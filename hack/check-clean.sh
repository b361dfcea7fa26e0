#!/usr/bin/env bash
# Fails when the local cluster left a process, a mount, a network interface
# an iptables rule or the NetworkPolicy enforcer's nftables table behind after
# `make cluster-down`.
set -uo pipefail
fail=0
report() { echo "left behind: $*" >&2; fail=1; }
procs=$(pgrep -a -f 'overseer-cluster|kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|kube-network-policies|etcd --name' | grep -v -e pgrep -e check-clean || true)
[[ -z $procs ]] || report "processes: $procs"
mounts=$(grep -E 'overseer-cluster|/run/netns/cni-' /proc/mounts || true)
[[ -z $mounts ]] || report "mounts: $mounts"
ip link show overseer0 >/dev/null 2>&1 && report "interface overseer0"
rules=$(iptables-save 2>/dev/null | grep -cE 'KUBE-|CNI-' || true)
(( rules == 0 )) || report "$rules iptables lines mentioning KUBE- or CNI-"
if command -v nft >/dev/null && nft list table inet kube-network-policies >/dev/null 2>&1; then
  report "nftables table inet kube-network-policies"
fi
[[ -d /var/lib/overseer-cluster || -d /run/overseer-cluster ]] && report "state folders"
(( fail )) || echo "clean: no process, mount, interface, rule or state folder left" >&2
exit $fail
