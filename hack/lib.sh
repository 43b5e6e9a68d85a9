#!/usr/bin/env bash
# Shared settings and helpers for the local-cluster scripts. Sourced, not run.
# Every port can be moved with an environment variable when the default is taken on a machine.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL=${NBP_LOCAL:-$ROOT/.local}
BIN=${NBP_BIN:-$LOCAL/bin}
PKI=$LOCAL/pki
RUN=$LOCAL/run
LOGS=$LOCAL/logs
ETCD_DATA=$LOCAL/etcd
APISERVER_PORT=${NBP_APISERVER_PORT:-6443}
ETCD_CLIENT_PORT=${NBP_ETCD_CLIENT_PORT:-2379}
ETCD_PEER_PORT=${NBP_ETCD_PEER_PORT:-2380}
CONTROLLER_MANAGER_PORT=${NBP_CONTROLLER_MANAGER_PORT:-10257}
SCHEDULER_PORT=${NBP_SCHEDULER_PORT:-10259}
SERVICE_CIDR=${NBP_SERVICE_CIDR:-10.96.0.0/16}
SERVICE_IP=${NBP_SERVICE_IP:-10.96.0.1}
CLUSTER_CIDR=${NBP_CLUSTER_CIDR:-10.244.0.0/16}
# The node (hack/node.sh). NODE_IP sits on a host-only bridge the node script creates: pods and
# containerd reach the registry and the apiserver there, and no other network sees it.
NODE_NAME=${NBP_NODE_NAME:-nbp-node}
NODE_IP=${NBP_NODE_IP:-10.250.0.1}
REGISTRY_PORT=${NBP_REGISTRY_PORT:-5000}
DNS_SERVICE_IP=${NBP_DNS_SERVICE_IP:-10.96.0.10}

say() { printf '%s\n' "cluster: $*"; }
die() { printf '%s\n' "cluster: error: $*" >&2; exit 1; }

# pid_alive NAME: true when .local/run/NAME.pid names a live process that is still that component.
# Right after a launch the child may not have exec'd yet (its command line is still the script's), so a
# live process whose command line does not match yet is given up to a second before it counts as foreign.
pid_alive() {
  local f="$RUN/$1.pid" pid i
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] || return 1
  for i in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$pid" 2>/dev/null || return 1
    grep -qa -- "$1" "/proc/$pid/cmdline" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# port_owner PORT: prints the process listening on a loopback/any TCP port, empty when free.
port_owner() {
  ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\("[^"]*",pid=[0-9]*\).*/\1/p' | head -n 1
}

port_in_use() { [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; }

apiserver_ready() {
  curl -sf --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1
}

# stop_component NAME TICKS PREFIX: TERM, then KILL after TICKS x 0.2 s; only the PID we recorded.
stop_component() {
  local name=$1 ticks=$2 prefix=$3 pid
  [ -f "$RUN/$name.pid" ] || return 0
  pid=$(cat "$RUN/$name.pid")
  if pid_alive "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 "$ticks"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    printf '%s\n' "$prefix: stopped $name (pid $pid)"
  fi
  rm -f "$RUN/$name.pid"
}
