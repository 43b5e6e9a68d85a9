#!/usr/bin/env bash
# The local control plane: etcd, kube-apiserver, kube-controller-manager and kube-scheduler as
# background processes on loopback, with a real CA, TLS, RBAC and the usual admission plugins.
#
#   hack/cluster.sh up       start, or reuse a healthy running cluster (idempotent)
#   hack/cluster.sh down     stop exactly the processes this script started (PIDs in .local/run)
#   hack/cluster.sh status   say what runs
#
# Logs go to .local/logs/<component>.log, the admin kubeconfig to .local/kubeconfig.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/lib.sh"

COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)

port_of() {
  case $1 in
    etcd) echo "$ETCD_CLIENT_PORT $ETCD_PEER_PORT" ;;
    kube-apiserver) echo "$APISERVER_PORT" ;;
    kube-controller-manager) echo "$CONTROLLER_MANAGER_PORT" ;;
    kube-scheduler) echo "$SCHEDULER_PORT" ;;
  esac
}

args_of() {
  case $1 in
    etcd) echo --name=local --data-dir="$ETCD_DATA" \
      --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
      --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
      --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster="local=http://127.0.0.1:$ETCD_PEER_PORT" \
      --listen-metrics-urls="" --quota-backend-bytes=4294967296 --log-level=warn ;;
    kube-apiserver) echo --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
      --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
      --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
      --client-ca-file="$PKI/ca.crt" \
      --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
      --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
      --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
      --kubelet-certificate-authority="$PKI/ca.crt" \
      --kubelet-preferred-address-types=InternalIP,Hostname \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
      --api-audiences=https://kubernetes.default.svc.cluster.local \
      --authorization-mode=Node,RBAC \
      --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,DefaultStorageClass,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota,NodeRestriction \
      --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
      --enable-aggregator-routing=true --profiling=false --v=1 ;;
    kube-controller-manager) echo --bind-address=127.0.0.1 --secure-port="$CONTROLLER_MANAGER_PORT" \
      --kubeconfig="$PKI/controller-manager.kubeconfig" \
      --authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
      --authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
      --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
      --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
      --use-service-account-credentials=true --leader-elect=false \
      --controllers='*,bootstrapsigner,tokencleaner' \
      --allocate-node-cidrs=true --cluster-cidr="$CLUSTER_CIDR" --service-cluster-ip-range="$SERVICE_CIDR" \
      --kube-api-qps=100 --kube-api-burst=200 \
      --profiling=false --v=1 ;;
    kube-scheduler) echo --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" \
      --kubeconfig="$PKI/scheduler.kubeconfig" \
      --authentication-kubeconfig="$PKI/scheduler.kubeconfig" \
      --authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
      --leader-elect=false --profiling=false --v=1 ;;
  esac
}

check_binaries() {
  local missing=()
  for c in "${COMPONENTS[@]}" kubectl; do [ -x "$BIN/$c" ] || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] || die "missing binaries in .local/bin: ${missing[*]}; build them with 'hack/build.sh' (or 'make binaries')"
}

# start NAME: launches one component in its own session, logs and PID under .local/.
start() {
  local name=$1 p owner
  if pid_alive "$name"; then
    say "$name already running (pid $(cat "$RUN/$name.pid"))"
    return
  fi
  if [ -f "$RUN/$name.pid" ]; then
    say "removing stale PID file for $name (pid $(cat "$RUN/$name.pid") is not running)"
    rm -f "$RUN/$name.pid"
  fi
  for p in $(port_of "$name"); do
    if port_in_use "$p"; then
      owner=$(port_owner "$p")
      die "port $p needed by $name is already in use${owner:+ by $owner}; stop that process or move the port (see hack/lib.sh: NBP_*_PORT)"
    fi
  done
  # shellcheck disable=SC2046
  setsid "$BIN/$name" $(args_of "$name") >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
  say "started $name (pid $!, log .local/logs/$name.log)"
}

wait_until() {
  local what=$1 timeout=$2; shift 2
  local t0=$SECONDS
  until "$@"; do
    if (( SECONDS - t0 > timeout )); then
      die "$what not ready after ${timeout}s; see the logs in .local/logs/"
    fi
    for c in "${COMPONENTS[@]}"; do
      if [ -f "$RUN/$c.pid" ] && ! pid_alive "$c"; then
        tail -n 15 "$LOGS/$c.log" >&2 || true
        die "$c exited during start; its log is .local/logs/$c.log"
      fi
    done
    sleep 0.2
  done
}

etcd_ready() { curl -sf --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }

component_healthy() { curl -sfk --max-time 2 "https://127.0.0.1:$1/healthz" >/dev/null 2>&1; }

all_running() {
  for c in "${COMPONENTS[@]}"; do pid_alive "$c" || return 1; done
  apiserver_ready
}

up() {
  local t0=$SECONDS
  if all_running; then
    say "already running and ready: kubeconfig .local/kubeconfig"
    return
  fi
  check_binaries
  mkdir -p "$RUN" "$LOGS" "$ETCD_DATA"
  # A component that died (e.g. the controller-manager exits when the apiserver goes away) leaves its
  # PID file behind; clear those first so only this start's processes are watched below.
  for c in "${COMPONENTS[@]}"; do
    if [ -f "$RUN/$c.pid" ] && ! pid_alive "$c"; then
      say "removing stale PID file for $c (pid $(cat "$RUN/$c.pid") is not running)"
      rm -f "$RUN/$c.pid"
    fi
  done
  chmod 700 "$ETCD_DATA"
  "$here/pki.sh"
  start etcd
  wait_until etcd 60 etcd_ready
  start kube-apiserver
  wait_until kube-apiserver 120 apiserver_ready
  start kube-controller-manager
  start kube-scheduler
  wait_until kube-controller-manager 60 component_healthy "$CONTROLLER_MANAGER_PORT"
  wait_until kube-scheduler 60 component_healthy "$SCHEDULER_PORT"
  say "ready in $((SECONDS - t0)) s: export KUBECONFIG=$LOCAL/kubeconfig"
}

stop() { stop_component "$1" 50 cluster; }

down() {
  local i
  for (( i=${#COMPONENTS[@]}-1; i>=0; i-- )); do stop "${COMPONENTS[$i]}"; done
}

status() {
  local rc=0
  for c in "${COMPONENTS[@]}"; do
    if pid_alive "$c"; then say "$c running (pid $(cat "$RUN/$c.pid"))"; else say "$c not running"; rc=1; fi
  done
  if apiserver_ready; then say "apiserver /readyz ok"; else say "apiserver not ready"; rc=1; fi
  return $rc
}

case ${1:-up} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: hack/cluster.sh up|down|status" ;;
esac
