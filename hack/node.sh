#!/usr/bin/env bash
# The local node: a real kubelet on this machine, joined to the control plane of hack/cluster.sh.
#
#   hack/node.sh up       start (or reuse) registry, containerd, kubelet, kube-proxy, CoreDNS and the
#                         RWX provisioner; idempotent, quick when everything already runs
#   hack/node.sh down     stop what `up` started (PIDs in .local/run) and remove the pods' network
#                         namespaces, mounts, links and iptables chains it created
#   hack/node.sh status   say what runs
#
# Parts: Debian's containerd + runc + CNI plugins (bridge, host-local, loopback, portmap) and
# docker-registry; kubelet and kube-proxy from the pinned Kubernetes module; CoreDNS and
# local-path-provisioner from their Go modules, run as pods from images made by hack/images.sh.
# Everything lives under .local/ (configs in .local/node, state in .local/{containerd,kubelet,...},
# sockets and PIDs in .local/run, logs in .local/logs). docs/local-cluster.md explains the design.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/lib.sh"
# shellcheck source=/dev/null
. "$here/versions.env"

NODE_LINK=nbp0            # host-only bridge that carries NODE_IP
POD_BRIDGE=nbpbr0         # the pod bridge (the CNI bridge plugin creates it)
REGISTRY=$NODE_IP:$REGISTRY_PORT
NODE_DIR=$LOCAL/node      # rendered configuration
CTR_ROOT=$LOCAL/containerd
CTR_STATE=$RUN/containerd
CTR_SOCK=$CTR_STATE/containerd.sock
CTR_CERTS_D=$NODE_DIR/certs.d
CNI_CONF_DIR=$NODE_DIR/cni
CNI_IPAM_DIR=$LOCAL/cni-ipam
KUBELET_ROOT=$LOCAL/kubelet
REGISTRY_DATA=$LOCAL/registry
SHARED_STORAGE=$LOCAL/storage/shared
KUBECTL=("$BIN/kubectl" --kubeconfig "$LOCAL/kubeconfig")
# Variables the templates in hack/node/ may use (envsubst replaces only these).
TEMPLATE_VARS='${NODE_NAME} ${NODE_IP} ${REGISTRY} ${DNS_IP} ${PKI} ${LOGS} ${CTR_ROOT} ${CTR_STATE}
  ${CTR_SOCK} ${CTR_CERTS_D} ${CNI_CONF_DIR} ${CNI_IPAM_DIR} ${POD_BRIDGE} ${POD_CIDR} ${CLUSTER_CIDR}
  ${REGISTRY_DATA} ${SHARED_STORAGE} ${PAUSE_IMAGE} ${COREDNS_VERSION} ${LPP_VERSION} ${DEBIAN_SUITE}'
DNS_IP=$DNS_SERVICE_IP
POD_CIDR=""
export NODE_NAME NODE_IP REGISTRY DNS_IP PKI LOGS CTR_ROOT CTR_STATE CTR_SOCK CTR_CERTS_D CNI_CONF_DIR \
  CNI_IPAM_DIR POD_BRIDGE POD_CIDR CLUSTER_CIDR REGISTRY_DATA SHARED_STORAGE PAUSE_IMAGE COREDNS_VERSION \
  LPP_VERSION DEBIAN_SUITE

# Debian packages the node needs, by the command that shows each one is there.
DEB_PACKAGES="containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins
  docker-registry:docker-registry catatonit:catatonit debootstrap:debootstrap iptables:iptables
  conntrack:conntrack socat:socat envsubst:gettext-base"
NODE_BINARIES="kubelet kube-proxy kubectl crane nbp-cri coredns local-path-provisioner executor"

nsay() { printf '%s\n' "node: $*"; }
ndie() { printf '%s\n' "node: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------- helpers

# render TEMPLATE DEST: fills a template from hack/node/; returns 1 (and keeps DEST) when unchanged.
render() {
  local tmp
  tmp=$(mktemp)
  envsubst "$TEMPLATE_VARS" < "$here/node/$1" > "$tmp"
  if [ -f "$2" ] && cmp -s "$tmp" "$2"; then rm -f "$tmp"; return 1; fi
  mkdir -p "$(dirname "$2")"
  # Written in place, not renamed: containerd 1.6 reloads CNI configuration on write events only.
  cat "$tmp" > "$2"
  rm -f "$tmp"
}

# launch NAME CMD...: runs a component in its own session; its PID goes to .local/run/NAME.pid.
launch() {
  local name=$1; shift
  if [ -f "$RUN/$name.pid" ] && ! pid_alive "$name"; then rm -f "$RUN/$name.pid"; fi
  setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
  nsay "started $name (pid $!, log .local/logs/$name.log)"
}

stop() { stop_component "$1" 75 node; }

# wait_for WHAT SECONDS NAME CMD...: polls CMD; fails early when component NAME died.
wait_for() {
  local what=$1 timeout=$2 name=$3; shift 3
  local t0=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if [ -n "$name" ] && ! pid_alive "$name"; then
      tail -n 20 "$LOGS/$name.log" >&2 || true
      ndie "$name exited while waiting for $what; its log is .local/logs/$name.log"
    fi
    (( SECONDS - t0 > timeout )) && ndie "$what not ready after ${timeout}s (logs in .local/logs/)"
    sleep 0.25
  done
}

kubectl() { "${KUBECTL[@]}" "$@"; }

# ---------------------------------------------------------------------------------------------- checks

preflight() {
  [ "$(id -u)" = 0 ] || ndie "the node needs root (network namespaces, mounts, iptables, containerd)"
  local missing=() entry cmd pkg
  for entry in $DEB_PACKAGES; do
    cmd=${entry%%:*}; pkg=${entry#*:}
    if [ "${cmd#/}" != "$cmd" ]; then [ -e "$cmd" ] || missing+=("$pkg"); else command -v "$cmd" >/dev/null || missing+=("$pkg"); fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    nsay "installing Debian packages: ${missing[*]}"
    # The packages' own init scripts must not start a system-wide containerd or registry.
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
    [ $created = 1 ] && rm -f "$policy"
  fi
  local nb=()
  for b in $NODE_BINARIES; do [ -x "$BIN/$b" ] || nb+=("$b"); done
  [ ${#nb[@]} -eq 0 ] || ndie "missing binaries in .local/bin: ${nb[*]}; build them with 'hack/build.sh k8s tools node'"
  apiserver_ready || ndie "the control plane is not running; start it with 'make cluster' (or 'hack/cluster.sh up')"
  disk_check
}

# The kubelet evicts every pod once less than 1 GiB is free under .local (hack/node/kubelet.yaml), and a
# cold `make up` writes a few GiB (images, registry, Kaniko layers): say so before starting, not after.
MIN_FREE_MIB=${NBP_MIN_FREE_MIB:-4096}
disk_check() {
  local free
  free=$(df -Pm "$LOCAL" | awk 'NR == 2 { print $4 }')
  nsay "disk: $free MiB free under .local"
  [ "$free" -ge "$MIN_FREE_MIB" ] || ndie "only $free MiB free under .local; the node needs about $MIN_FREE_MIB MiB \
(images, registry, build layers) and its kubelet evicts every pod below 1 GiB; free some space \
or lower NBP_MIN_FREE_MIB at your own risk"
}

# ---------------------------------------------------------------------------------------------- host

# Values we change are saved once, so `down` puts back exactly what was there.
SYSCTLS="net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables"

host_up() {
  if [ ! -f "$RUN/node-sysctl.saved" ]; then
    for k in $SYSCTLS; do echo "$k=$(sysctl -n "$k")"; done > "$RUN/node-sysctl.saved"
  fi
  for k in $SYSCTLS; do sysctl -qw "$k=1"; done
  # Chains that existed before the node: `down` removes only KUBE-*/CNI-* chains not listed here.
  if [ ! -f "$RUN/node-iptables.before" ]; then
    for t in filter nat mangle; do
      for x in iptables ip6tables; do "$x-save" -t "$t" 2>/dev/null | sed -n "s/^:\([^ ]*\) .*/$x $t \1/p"; done
    done > "$RUN/node-iptables.before"
  fi
  if ! ip link show "$NODE_LINK" >/dev/null 2>&1; then
    ip link add "$NODE_LINK" type bridge
    echo "$NODE_LINK" >> "$RUN/node-links"
    nsay "created link $NODE_LINK for the node address $NODE_IP"
  fi
  case " $(ip -o -4 addr show dev "$NODE_LINK") " in
    *" $NODE_IP/"*) ;;
    *) ip addr add "$NODE_IP/32" dev "$NODE_LINK" ;;
  esac
  ip link set "$NODE_LINK" up
  mkdir -p "$NODE_DIR" "$CTR_ROOT" "$CTR_STATE" "$CNI_CONF_DIR" "$CNI_IPAM_DIR" "$KUBELET_ROOT" \
    "$REGISTRY_DATA" "$SHARED_STORAGE" "$LOGS/pods"
}

# ---------------------------------------------------------------------------------------------- registry

registry_ok() { curl -sf --max-time 2 "http://$REGISTRY/v2/" >/dev/null; }

registry_up() {
  if render registry.yml "$NODE_DIR/registry.yml" && pid_alive docker-registry; then
    nsay "registry configuration changed: restarting it"; stop docker-registry
  fi
  pid_alive docker-registry || launch docker-registry /usr/bin/docker-registry serve "$NODE_DIR/registry.yml"
  wait_for "registry at $REGISTRY" 30 docker-registry registry_ok
}

# ---------------------------------------------------------------------------------------------- containerd

cri() { "$BIN/nbp-cri" -endpoint "$CTR_SOCK" "$@"; }

containerd_up() {
  local changed=0
  render containerd.toml "$NODE_DIR/containerd.toml" && changed=1
  render hosts.toml "$CTR_CERTS_D/$REGISTRY/hosts.toml" && changed=1
  if [ $changed = 1 ] && pid_alive containerd; then
    nsay "containerd configuration changed: restarting it (running pods keep running)"; stop containerd
  fi
  pid_alive containerd || launch containerd /usr/bin/containerd --config "$NODE_DIR/containerd.toml"
  wait_for "containerd" 60 containerd cri -timeout 2s ready
}

# ---------------------------------------------------------------------------------------------- apiserver

# The apiserver listens on loopback only. Pods reach it as the `kubernetes` Service (10.96.0.1),
# whose endpoint is NODE_IP: a socat forwarder there hands connections to 127.0.0.1. The apiserver
# runs with --endpoint-reconciler-type=none, so the node publishes that endpoint itself.
apiserver_forward_up() {
  if ! pid_alive socat; then
    launch socat /usr/bin/socat "TCP-LISTEN:$APISERVER_PORT,bind=$NODE_IP,reuseaddr,fork" "TCP:127.0.0.1:$APISERVER_PORT"
  fi
  wait_for "apiserver forwarder on $NODE_IP:$APISERVER_PORT" 10 socat \
    curl -sf --max-time 2 --cacert "$PKI/ca.crt" --resolve "kubernetes:$APISERVER_PORT:$NODE_IP" "https://kubernetes:$APISERVER_PORT/readyz"
  kubectl apply --server-side --field-manager=notebook-platform-node -f - >/dev/null 2>&1 <<EOF
apiVersion: v1
kind: Endpoints
metadata:
  name: kubernetes
  namespace: default
  labels: {endpointslice.kubernetes.io/skip-mirror: "true"}
subsets:
  - addresses: [{ip: "$NODE_IP"}]
    ports: [{name: https, port: $APISERVER_PORT, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes
  namespace: default
  labels: {kubernetes.io/service-name: kubernetes}
addressType: IPv4
endpoints:
  - addresses: ["$NODE_IP"]
    conditions: {ready: true}
ports: [{name: https, port: $APISERVER_PORT, protocol: TCP}]
EOF
}

# ---------------------------------------------------------------------------------------------- kubelet

node_json() { kubectl get node "$NODE_NAME" -o json 2>/dev/null; }
node_registered() { kubectl get node "$NODE_NAME" >/dev/null 2>&1; }
node_pod_cidr() { kubectl get node "$NODE_NAME" -o 'jsonpath={.spec.podCIDR}' 2>/dev/null; }
node_ready() {
  [ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
has_pod_cidr() { [ -n "$(node_pod_cidr)" ]; }

kubelet_up() {
  if render kubelet.yaml "$NODE_DIR/kubelet.yaml" && pid_alive kubelet; then
    nsay "kubelet configuration changed: restarting it"; stop kubelet
  fi
  if ! pid_alive kubelet; then
    launch kubelet "$BIN/kubelet" --config="$NODE_DIR/kubelet.yaml" --kubeconfig="$PKI/kubelet.kubeconfig" \
      --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --root-dir="$KUBELET_ROOT" \
      --cert-dir="$KUBELET_ROOT/pki" --v=1
  fi
  wait_for "node $NODE_NAME to register" 90 kubelet node_registered
  # The controller-manager allocates the node's pod CIDR; the CNI configuration follows from it.
  wait_for "a pod CIDR for $NODE_NAME" 60 kubelet has_pod_cidr
  POD_CIDR=$(node_pod_cidr)
  render cni.conflist "$CNI_CONF_DIR/10-nbp.conflist" && nsay "pod network $POD_CIDR on $POD_BRIDGE"
  wait_for "node $NODE_NAME Ready" 120 kubelet node_ready
}

kube_proxy_up() {
  if render kube-proxy.yaml "$NODE_DIR/kube-proxy.yaml" && pid_alive kube-proxy; then
    nsay "kube-proxy configuration changed: restarting it"; stop kube-proxy
  fi
  pid_alive kube-proxy || launch kube-proxy "$BIN/kube-proxy" --config="$NODE_DIR/kube-proxy.yaml" --v=1
  wait_for "kube-proxy" 60 kube-proxy curl -sf --max-time 2 http://127.0.0.1:10256/healthz
}

# ---------------------------------------------------------------------------------------------- addons

addons_up() {
  render coredns.yaml "$NODE_DIR/coredns.yaml" || true
  render local-path.yaml "$NODE_DIR/local-path.yaml" || true
  kubectl apply --server-side --force-conflicts --field-manager=notebook-platform-node \
    -f "$NODE_DIR/coredns.yaml" -f "$NODE_DIR/local-path.yaml" | grep -v 'serverside-applied' || true
  kubectl -n kube-system rollout status deployment/coredns --timeout=180s >/dev/null
  kubectl -n local-path-storage rollout status deployment/local-path-provisioner --timeout=180s >/dev/null
  # Pod status in the API can be stale right after the node restarts: ask CoreDNS itself.
  wait_for "cluster DNS" 120 kubelet coredns_ready
}

coredns_ready() {
  local ip
  for ip in $(kubectl -n kube-system get pods -l app.kubernetes.io/name=coredns -o 'jsonpath={.items[*].status.podIP}'); do
    curl -sf --max-time 1 "http://$ip:8181/ready" >/dev/null && return 0
  done
  return 1
}

# ---------------------------------------------------------------------------------------------- up/down

all_up() {
  for c in docker-registry containerd socat kubelet kube-proxy; do pid_alive "$c" || return 1; done
  node_ready
}

up() {
  local t0=$SECONDS
  preflight
  mkdir -p "$RUN" "$LOGS"
  host_up
  registry_up
  containerd_up
  "$here/images.sh" node
  apiserver_forward_up
  kubelet_up
  kube_proxy_up
  addons_up
  nsay "ready in $((SECONDS - t0)) s: node $NODE_NAME at $NODE_IP, registry $REGISTRY (plain HTTP)"
}

# remove_chains TOOL: deletes the KUBE-*/CNI-* chains (and the rules that jump to them) that did
# not exist before `up`; kubelet, kube-proxy and the CNI plugins made them.
remove_chains() {
  local x=$1 t chains rule rules
  command -v "$x-save" >/dev/null || return 0
  for t in filter nat mangle; do
    chains=$("$x-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\|CNI-[^ ]*\) .*/\1/p' |
      while read -r c; do grep -qx "$x $t $c" "$RUN/node-iptables.before" 2>/dev/null || echo "$c"; done)
    [ -n "$chains" ] || continue
    # Rules in any chain that jump to one of ours.
    rules=$("$x-save" -t "$t" | grep -E -- "^-A .* -j ($(echo "$chains" | paste -sd'|'))( |$)" || true)
    while read -r rule; do
      [ -n "$rule" ] && { eval "$x -w -t $t -D ${rule#-A }" 2>/dev/null || true; }
    done <<<"$rules"
    for c in $chains; do "$x" -w -t "$t" -F "$c" 2>/dev/null || true; done
    for c in $chains; do "$x" -w -t "$t" -X "$c" 2>/dev/null || true; done
  done
}

down() {
  stop kube-proxy
  stop kubelet
  if pid_alive containerd; then
    # Stopping every sandbox through the CRI runs CNI DEL and removes its network namespace.
    cri -timeout 120s rmp >/dev/null || nsay "warning: some pod sandboxes could not be removed"
  fi
  stop containerd
  # Shims of containers that outlived containerd (none after rmp) name our socket in their arguments.
  local pid
  for pid in $(pgrep -f -- "-address $CTR_SOCK" 2>/dev/null || true); do
    grep -qa -- containerd-shim "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done
  stop socat
  stop docker-registry
  # Mounts under .local (pod volumes, container roots, network namespaces), deepest first.
  local m
  for m in $(awk -v p="$LOCAL/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  if [ -f "$RUN/node-iptables.before" ]; then
    "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
    remove_chains iptables
    remove_chains ip6tables
    rm -f "$RUN/node-iptables.before"
  fi
  if ip link show "$POD_BRIDGE" >/dev/null 2>&1; then ip link del "$POD_BRIDGE" && nsay "removed link $POD_BRIDGE"; fi
  if [ -f "$RUN/node-links" ]; then
    for l in $(cat "$RUN/node-links"); do
      ip link show "$l" >/dev/null 2>&1 && ip link del "$l" && nsay "removed link $l"
    done
    rm -f "$RUN/node-links"
  fi
  if [ -f "$RUN/node-sysctl.saved" ]; then
    while IFS= read -r kv; do sysctl -qw "$kv" 2>/dev/null || true; done < "$RUN/node-sysctl.saved"
    rm -f "$RUN/node-sysctl.saved"
  fi
}

status() {
  local rc=0
  for c in docker-registry containerd socat kubelet kube-proxy; do
    if pid_alive "$c"; then nsay "$c running (pid $(cat "$RUN/$c.pid"))"; else nsay "$c not running"; rc=1; fi
  done
  if node_ready; then nsay "node $NODE_NAME Ready"; else nsay "node $NODE_NAME not Ready"; rc=1; fi
  if registry_ok; then nsay "registry $REGISTRY ok"; else nsay "registry $REGISTRY not answering"; rc=1; fi
  return $rc
}

case ${1:-up} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) ndie "usage: hack/node.sh up|down|status" ;;
esac
