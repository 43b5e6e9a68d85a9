#!/usr/bin/env bash
# Regenerates the Go wrapper modules under hack/go/ from the pins in hack/versions.env.
# Run it only when a pin changes; the generated go.mod/go.sum files are committed, so a normal
# build never needs it. Why wrappers at all: k8s.io/kubernetes and etcd's server module carry
# `replace` directives that make `go install pkg@version` fail (see docs/local-cluster.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"

pin_k8s() {
  local dir="$here/go/k8s" gomod
  rm -f "$dir/go.mod" "$dir/go.sum"
  (cd "$dir" && go mod init notebook-platform.local/hack/k8s >/dev/null 2>&1)
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  # Every staging module k8s.io/kubernetes replaces with ./staging/... is published on its own.
  grep -Eo '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | sort -u |
    while read -r m; do
      (cd "$dir" && go mod edit "-replace=$m=$m@$KUBERNETES_STAGING_VERSION")
    done
  (cd "$dir" && go mod edit -godebug=default=go1.24 &&
    go get "k8s.io/kubernetes@$KUBERNETES_VERSION" &&
    for t in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
      go get -tool "k8s.io/kubernetes/cmd/$t@$KUBERNETES_VERSION"
    done && go mod tidy)
}

pin_etcd() {
  local dir="$here/go/etcd"
  rm -f "$dir/go.mod" "$dir/go.sum"
  (cd "$dir" && go mod init notebook-platform.local/hack/etcd >/dev/null 2>&1 &&
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go mod tidy)
}

pin_tools() {
  local dir="$here/go/tools"
  rm -f "$dir/go.mod" "$dir/go.sum"
  (cd "$dir" && go mod init notebook-platform.local/hack/tools >/dev/null 2>&1 &&
    go get -tool "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" &&
    go get -tool "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION" &&
    go mod tidy)
}

# pin_tool DIR PACKAGE VERSION [GODEBUG]: a wrapper module whose only tool is PACKAGE.
pin_tool() {
  local dir="$here/go/$1"
  rm -f "$dir/go.mod" "$dir/go.sum"
  (cd "$dir" && go mod init "notebook-platform.local/hack/$1" >/dev/null 2>&1 &&
    go get -tool "$2@$3" && { [ -z "${4:-}" ] || go mod edit "-godebug=default=$4"; } && go mod tidy)
}

pin_node() {
  # Kaniko: the maintained fork (github.com/osscontainertools/kaniko) is not served by the module
  # proxy here (403); upstream's last release has no replace directives and builds as is.
  pin_tool kaniko github.com/GoogleContainerTools/kaniko/cmd/executor "$KANIKO_VERSION" go1.24
  pin_tool coredns github.com/coredns/coredns "$COREDNS_VERSION"
  pin_tool lpp github.com/rancher/local-path-provisioner "$LPP_VERSION" go1.23
  # nbp-cri (our own few CRI calls) follows the Kubernetes pin.
  (cd "$here/go/cri" && go get "k8s.io/cri-api@$KUBERNETES_STAGING_VERSION" && go mod tidy)
}

pin_k8s
pin_etcd
pin_tools
pin_node
