#!/usr/bin/env bash
# The project's own images, built by Kaniko running as a pod on the local node (hack/node.sh up first).
#
#   hack/project-images.sh [TARGET...]     targets of the top-level Dockerfile: webhook builder hub proxy notebook
#
# TAG = project version + a hash of the inputs (Dockerfile, pyproject.toml, the services' sources,
# package-lock.json, the base image's digest, the build Python's version). When the registry already has
# every requested TARGET:TAG, nothing is built (a second run takes a second or two). Otherwise the context is
# assembled under .local/build/context (the Dockerfile, a wheelhouse made here with `pip wheel`, and
# node_modules from `npm ci`), mounted into the Kaniko pod read-only; each missing target is one Kaniko Job in
# the namespace nbp-images, one at a time, pushing NODE_IP:5000/notebook-platform/TARGET:TAG with layer
# caching in NODE_IP:5000/notebook-platform/cache. Kaniko's log of each build goes to
# .local/logs/images/TARGET.log. The tag is written to .local/build/project-images.env (PROJECT_IMAGES_TAG).
#
# NBP_IMAGES_FORCE=1 builds even when the tag exists (e.g. to pick up newer third-party wheels).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=/dev/null
. "$here/lib.sh"
# shellcheck source=/dev/null
. "$here/versions.env"
REGISTRY=$NODE_IP:$REGISTRY_PORT
CONTEXT=$LOCAL/build/context
NS=nbp-images
IMAGE_LOGS=$LOGS/images
ALL_TARGETS="webhook builder hub proxy notebook"
# The wheelhouse is resolved by the same Python the images get (Debian's), or a wheel may demand a newer one.
PY=${NBP_PYTHON:-$LOCAL/build/debian-python/bin/python}
kubectl() { "$BIN/kubectl" --kubeconfig "$LOCAL/kubeconfig" "$@"; }
crane() { "$BIN/crane" "$@"; }
psay() { printf '%s\n' "project-images: $*"; }
pdie() { printf '%s\n' "project-images: error: $*" >&2; exit 1; }

targets=${*:-$ALL_TARGETS}
for t in $targets; do
  case " $ALL_TARGETS " in *" $t "*) ;; *) pdie "unknown target $t (known: $ALL_TARGETS)";; esac
done
[ -x "$PY" ] || /usr/bin/python3 -m venv "$LOCAL/build/debian-python"
pyversion=$("$PY" -c 'import sys; print(sys.version.split()[0])')

# -- the tag: a hash of everything the images are made from ----------------------------------------------
base_digest=$(crane digest --insecure "$REGISTRY/nbp/base:$DEBIAN_SUITE" 2>/dev/null) \
  || pdie "no base image $REGISTRY/nbp/base:$DEBIAN_SUITE in the registry: run make node (hack/images.sh) first"
inputs_hash() {
  (
    cd "$root"
    printf 'python %s\nbase %s\n' "$pyversion" "$base_digest"
    find Dockerfile pyproject.toml package.json package-lock.json webhook builder hub_config \
      -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -c1-12
}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml")
tag=$version-$(inputs_hash)
mkdir -p "$LOCAL/build" "$IMAGE_LOGS"
printf 'PROJECT_IMAGES_REGISTRY=%s\nPROJECT_IMAGES_TAG=%s\n' "$REGISTRY" "$tag" > "$LOCAL/build/project-images.env"

missing=""
for t in $targets; do
  if [ "${NBP_IMAGES_FORCE:-0}" = 1 ] || ! crane digest --insecure "$REGISTRY/notebook-platform/$t:$tag" >/dev/null 2>&1; then
    missing="$missing $t"
  fi
done
missing=${missing# }
if [ -z "$missing" ]; then
  psay "up to date: $REGISTRY/notebook-platform/{${targets// /,}}:$tag"
  exit 0
fi
psay "to build: $missing (tag $tag)"

# -- the build context ------------------------------------------------------------------------------------
t0=$SECONDS
mkdir -p "$CONTEXT/wheels"
if [ "$pyversion" != "$(cat "$CONTEXT/wheels/.python" 2>/dev/null)" ]; then
  rm -rf "$CONTEXT/wheels"; mkdir -p "$CONTEXT/wheels"
  echo "$pyversion" > "$CONTEXT/wheels/.python"
fi
psay "wheels for the build context (pip wheel with Python $pyversion; cached in $CONTEXT/wheels)"
"$PY" -m pip wheel -q --wheel-dir "$CONTEXT/wheels" "$root[hub]" jupyterlab >/dev/null
# The project's own wheel is rebuilt each time (its version does not change with its code).
rm -f "$CONTEXT"/wheels/notebook_platform-*.whl
"$PY" -m pip wheel -q --no-deps --wheel-dir "$CONTEXT/wheels" "$root" >/dev/null
psay "node_modules for the proxy (npm ci of package-lock.json)"
make -s -C "$root" node_modules/.installed
rm -rf "$CONTEXT/node_modules"
cp -a "$root/node_modules" "$CONTEXT/node_modules"
rm -f "$CONTEXT/node_modules/.installed"
cp "$root/Dockerfile" "$CONTEXT/Dockerfile"
psay "context ready in $((SECONDS - t0)) s ($(du -sh "$CONTEXT" | cut -f1))"

# -- one Kaniko Job per missing target, one at a time ---------------------------------------------------------
job_state() {  # Complete, Failed or empty
  kubectl -n "$NS" get job "$1" -o 'jsonpath={range .status.conditions[?(@.status=="True")]}{.type}{"\n"}{end}' \
    2>/dev/null | grep -E '^(Complete|Failed)$' | head -n 1 || true
}
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
for target in $missing; do
  job=build-$target
  log=$IMAGE_LOGS/$target.log
  kubectl -n "$NS" delete job "$job" --ignore-not-found --wait=true >/dev/null
  b0=$SECONDS
  kubectl -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: batch/v1
kind: Job
metadata:
  name: $job
  labels: {app.kubernetes.io/managed-by: notebook-platform, app.kubernetes.io/component: image-build}
spec:
  backoffLimit: 0
  activeDeadlineSeconds: 1800
  template:
    metadata:
      labels: {app.kubernetes.io/managed-by: notebook-platform, app.kubernetes.io/component: image-build}
    spec:
      restartPolicy: Never
      volumes:
        - name: context
          hostPath: {path: "$CONTEXT", type: Directory}
      containers:
        - name: kaniko
          image: $REGISTRY/nbp/kaniko-executor:$KANIKO_VERSION
          args:
            - --context=dir:///context
            - --dockerfile=/context/Dockerfile
            - --target=$target
            - --build-arg=BASE=$REGISTRY/nbp/base:$DEBIAN_SUITE
            - --destination=$REGISTRY/notebook-platform/$target:$tag
            - --digest-file=/dev/termination-log
            - --cache=true
            - --cache-repo=$REGISTRY/notebook-platform/cache
            - --insecure
            - --insecure-pull
            - --snapshot-mode=redo
          volumeMounts:
            - {name: context, mountPath: /context, readOnly: true}
YAML
  state=""
  last=0
  while [ -z "$state" ]; do
    sleep 2
    state=$(job_state "$job")
    if [ $((SECONDS - last)) -ge 20 ] && [ -z "$state" ]; then
      last=$SECONDS
      line=$(kubectl -n "$NS" logs "job/$job" --tail=1 2>/dev/null | sed "s/\x1b\[[0-9;]*m//g" | cut -c1-100 || true)
      psay "  $target: $((SECONDS - b0)) s ${line:+: $line}"
    fi
  done
  kubectl -n "$NS" logs "job/$job" > "$log" 2>&1 || true
  if [ "$state" != Complete ]; then
    tail -n 30 "$log" >&2 || true
    pdie "$target failed after $((SECONDS - b0)) s; Kaniko's log: $log (kubectl -n $NS logs job/$job)"
  fi
  digest=$(kubectl -n "$NS" get pods -l "job-name=$job" \
    -o 'jsonpath={.items[0].status.containerStatuses[0].state.terminated.message}')
  psay "$target: $REGISTRY/notebook-platform/$target:$tag ($digest) built by Kaniko in $((SECONDS - b0)) s"
  # Its log is saved and the image pushed: the finished Kaniko container's writable layer (the unpacked base
  # and every stage, 1-2 GiB for the hub and notebook images) would otherwise stay on disk until the next
  # build of this target. A failed Job stays for inspection.
  kubectl -n "$NS" delete job "$job" --wait=false >/dev/null
done
