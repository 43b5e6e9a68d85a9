#!/usr/bin/env bash
# Builds the pinned upstream binaries into .local/bin from the wrapper modules in hack/go/.
# A group is rebuilt only when its pins (go.mod, go.sum, versions.env) change: a stamp file
# beside the binaries records the hash it was built from.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=/dev/null
. "$here/versions.env"
bin=${NBP_BIN:-$root/.local/bin}
cache_root=${NBP_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/notebook-platform/bin}
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

stamp_of() {
  # The pins and the module's own files, not this script: editing build.sh must not rebuild everything.
  local files=("$here/versions.env" "$here/go/$1/go.mod" "$here/go/$1/go.sum")
  shopt -s nullglob
  files+=("$here/go/$1"/*.go)
  shopt -u nullglob
  cat "${files[@]}" | sha256sum | cut -c1-16
}

# build GROUP LDFLAGS PACKAGE...: one `go build` per group so the compiler shares work across binaries.
build() {
  local group=$1 ldflags=$2; shift 2
  local want have=""
  want=$(stamp_of "$group")
  [ -f "$bin/.stamp-$group" ] && have=$(cat "$bin/.stamp-$group")
  local missing=0
  for p in "$@"; do [ -x "$bin/$(basename "$p")" ] || missing=1; done
  if [ "$want" = "$have" ] && [ $missing = 0 ]; then
    echo "build: $group up to date ($*)"
    return
  fi
  # Binaries built from the same pins are kept outside the work tree, so a fresh clone (CI) on a
  # machine that built them once only copies them.
  local cache="$cache_root/$group-$want" names=()
  for p in "$@"; do names+=("$(basename "$p")"); done
  if [ -d "$cache" ] && (cd "$cache" && ls "${names[@]}" >/dev/null 2>&1); then
    (cd "$cache" && cp -f "${names[@]}" "$bin/")
    echo "$want" > "$bin/.stamp-$group"
    echo "build: $group restored from the binary cache"
    return
  fi
  echo "build: $group: building $* (a cold build takes many minutes on 2 cores)"
  local t0=$SECONDS
  (cd "$here/go/$group" && go build -ldflags "-s -w $ldflags" -o "$bin/" "$@")
  echo "$want" > "$bin/.stamp-$group"
  mkdir -p "$cache.tmp" && (cd "$bin" && cp -f "${names[@]}" "$cache.tmp/") && rm -rf "$cache" && mv "$cache.tmp" "$cache"
  echo "build: $group done in $((SECONDS - t0)) s"
}

minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
k8s_ld=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ld+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

# `node` names the node's parts (hack/node.sh): each is its own module, as their dependencies clash.
groups=""
for g in ${*:-etcd k8s tools kwok}; do
  if [ "$g" = node ]; then groups+=" cri lpp kaniko coredns"; else groups+=" $g"; fi
done
for g in $groups; do
  case $g in
    etcd) build etcd "" notebook-platform.local/hack/etcd ;;
    k8s) build k8s "$k8s_ld" $(for t in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do echo "k8s.io/kubernetes/cmd/$t"; done) ;;
    tools) build tools "" helm.sh/helm/v3/cmd/helm github.com/google/go-containerregistry/cmd/crane ;;
    cri) build cri "" notebook-platform.local/hack/nbp-cri ;;
    lpp) build lpp "-X main.VERSION=$LPP_VERSION" github.com/rancher/local-path-provisioner ;;
    kaniko) build kaniko "-X github.com/GoogleContainerTools/kaniko/pkg/version.version=$KANIKO_VERSION" \
      github.com/GoogleContainerTools/kaniko/cmd/executor ;;
    coredns) build coredns "" github.com/coredns/coredns ;;
    kwok) build kwok "" sigs.k8s.io/kwok/cmd/kwok ;;
    *) echo "build: unknown group $g" >&2; exit 2 ;;
  esac
done
