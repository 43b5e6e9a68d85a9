#!/usr/bin/env bash
# Images without Docker, pushed to the local registry (hack/node.sh starts it) with crane.
#
#   hack/images.sh node      everything the node needs: base, pause, kaniko, coredns, lpp
#   hack/images.sh NAME...   one or more of those
#
#   base     Debian minbase root file system from debootstrap, one layer
#   pause    catatonit in pause mode (`catatonit -P`), also imported into containerd's k8s.io
#            namespace under the sandbox_image name (nothing can be pulled from registry.k8s.io)
#   kaniko   the Kaniko executor built from its Go module, CA certificates, /kaniko
#   coredns  the CoreDNS binary built from its Go module
#   lpp      local-path-provisioner built from its Go module
#
# An image is rebuilt only when its inputs change: .local/images/NAME.stamp holds the hash of the
# inputs and the pushed reference; a missing image in the registry is pushed again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/lib.sh"
# shellcheck source=/dev/null
. "$here/versions.env"

REGISTRY=$NODE_IP:$REGISTRY_PORT
IMAGES=$LOCAL/images
CTR_SOCK=$RUN/containerd/containerd.sock
DEBIAN_MIRROR=${NBP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PLATFORM=linux/amd64
mkdir -p "$IMAGES"

isay() { printf '%s\n' "images: $*"; }
crane() { "$BIN/crane" --insecure "$@"; }

# fresh NAME REF INPUT...: true when the stamp matches the inputs and the registry has REF.
fresh() {
  local name=$1 ref=$2; shift 2
  local want
  want="$(cat "$@" | sha256sum | cut -c1-16) $ref"
  [ "$(cat "$IMAGES/$name.stamp" 2>/dev/null)" = "$want" ] && crane digest "$ref" >/dev/null 2>&1
}
stamp() {
  local name=$1 ref=$2; shift 2
  echo "$(cat "$@" | sha256sum | cut -c1-16) $ref" > "$IMAGES/$name.stamp"
}

# layer DIR TAR: a reproducible layer tarball of DIR's contents (root-owned, sorted, fixed times).
layer() {
  (cd "$1" && tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -cf "$2" -- $(ls -A))
}

# push_image REF LAYER MUTATE_ARGS...: one-layer image on an empty base, with its config.
push_image() {
  local ref=$1 tar=$2; shift 2
  crane append -f "$tar" -t "$ref" >/dev/null 2>>"$IMAGES/crane.log"
  crane mutate "$ref" --set-platform "$PLATFORM" "$@" -t "$ref" >/dev/null 2>>"$IMAGES/crane.log"
  isay "pushed $ref ($(crane digest "$ref"))"
}

image_base() {
  local ref=$REGISTRY/nbp/base:$DEBIAN_SUITE rootfs=$IMAGES/rootfs-$DEBIAN_SUITE
  if [ -f "$IMAGES/base.stamp" ] && [ -d "$rootfs" ] && fresh base "$ref" "$IMAGES/base.inputs"; then
    isay "base up to date ($ref)"; return
  fi
  local t0=$SECONDS
  if [ ! -x "$rootfs/bin/sh" ]; then
    isay "base: debootstrap --variant=minbase $DEBIAN_SUITE (about a minute)"
    rm -rf "$rootfs"
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" > "$IMAGES/debootstrap.log" 2>&1 ||
      { tail -n 20 "$IMAGES/debootstrap.log" >&2; exit 1; }
  fi
  # What the build machine leaves in a chroot has no place in an image.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/log/*.log "$rootfs"/etc/resolv.conf "$rootfs"/etc/hostname "$rootfs"/dev/* "$rootfs"/proc/* "$rootfs"/sys/*
  (cd "$rootfs" && tar --numeric-owner --sort=name -cf "$IMAGES/base.tar" -- $(ls -A))
  sha256sum "$IMAGES/base.tar" | cut -c1-64 > "$IMAGES/base.inputs"
  push_image "$ref" "$IMAGES/base.tar" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash \
    --label "org.opencontainers.image.description=Debian $DEBIAN_SUITE minbase (debootstrap)"
  rm -f "$IMAGES/base.tar"
  stamp base "$ref" "$IMAGES/base.inputs"
  isay "base built in $((SECONDS - t0)) s"
}

image_pause() {
  local tag=${PAUSE_IMAGE##*:} ref dir
  ref=$REGISTRY/nbp/pause:$tag
  local bin=/usr/bin/catatonit
  if ! fresh pause "$ref" "$bin"; then
    dir=$(mktemp -d)
    install -m 0755 "$bin" "$dir/catatonit"
    layer "$dir" "$IMAGES/pause.tar"
    rm -rf "$dir"
    push_image "$ref" "$IMAGES/pause.tar" --entrypoint /catatonit,-P --user 65535:65535
    rm -f "$IMAGES/pause.tar"
    stamp pause "$ref" "$bin"
    rm -f "$IMAGES/pause.imported"
  else
    isay "pause up to date ($ref)"
  fi
  # containerd's sandbox image: imported into the k8s.io namespace under the configured name.
  local digest
  digest=$(crane digest "$ref")
  [ -S "$CTR_SOCK" ] || { isay "containerd not running: pause image not imported"; return; }
  local present
  present=$(ctr -a "$CTR_SOCK" -n k8s.io images ls -q 2>/dev/null || true)
  if [ "$(cat "$IMAGES/pause.imported" 2>/dev/null)" != "$digest" ] || ! grep -qx "$PAUSE_IMAGE" <<<"$present"; then
    crane pull --platform "$PLATFORM" "$ref" "$IMAGES/pause-import.tar" 2>>"$IMAGES/crane.log"
    ctr -a "$CTR_SOCK" -n k8s.io images import --platform "$PLATFORM" "$IMAGES/pause-import.tar" >/dev/null
    ctr -a "$CTR_SOCK" -n k8s.io images tag --force "$ref" "$PAUSE_IMAGE" >/dev/null
    rm -f "$IMAGES/pause-import.tar"
    echo "$digest" > "$IMAGES/pause.imported"
    isay "imported $PAUSE_IMAGE into containerd (k8s.io)"
  fi
}

image_kaniko() {
  local ref=$REGISTRY/nbp/kaniko-executor:$KANIKO_VERSION bin=$BIN/executor certs=/etc/ssl/certs/ca-certificates.crt
  if fresh kaniko "$ref" "$bin" "$certs"; then isay "kaniko up to date ($ref)"; return; fi
  local t0=$SECONDS dir
  dir=$(mktemp -d)
  # The layout of the upstream executor image: everything of Kaniko's own under /kaniko, which
  # it leaves out of the images it builds.
  mkdir -p "$dir/kaniko/ssl/certs" "$dir/kaniko/.docker" "$dir/workspace" "$dir/etc" "$dir/tmp"
  chmod 1777 "$dir/tmp"
  install -m 0755 "$bin" "$dir/kaniko/executor"
  install -m 0644 "$certs" "$dir/kaniko/ssl/certs/ca-certificates.crt"
  echo 'hosts: files dns' > "$dir/etc/nsswitch.conf"
  layer "$dir" "$IMAGES/kaniko.tar"
  rm -rf "$dir"
  push_image "$ref" "$IMAGES/kaniko.tar" --entrypoint /kaniko/executor --workdir /workspace \
    --env HOME=/root --env USER=root --env PATH=/usr/local/bin:/kaniko \
    --env SSL_CERT_DIR=/kaniko/ssl/certs --env DOCKER_CONFIG=/kaniko/.docker/
  rm -f "$IMAGES/kaniko.tar"
  stamp kaniko "$ref" "$bin" "$certs"
  isay "kaniko built in $((SECONDS - t0)) s"
}

# static_image NAME REF BINARY PATH_IN_IMAGE MUTATE_ARGS...: one static binary on an empty base.
static_image() {
  local name=$1 ref=$2 bin=$3 path=$4; shift 4
  if fresh "$name" "$ref" "$bin"; then isay "$name up to date ($ref)"; return; fi
  local t0=$SECONDS dir
  dir=$(mktemp -d)
  mkdir -p "$dir/$(dirname "$path")" "$dir/tmp"
  chmod 1777 "$dir/tmp"
  install -m 0755 "$bin" "$dir/$path"
  layer "$dir" "$IMAGES/$name.tar"
  rm -rf "$dir"
  push_image "$ref" "$IMAGES/$name.tar" "$@"
  rm -f "$IMAGES/$name.tar"
  stamp "$name" "$ref" "$bin"
  isay "$name built in $((SECONDS - t0)) s"
}

image_coredns() {
  static_image coredns "$REGISTRY/nbp/coredns:$COREDNS_VERSION" "$BIN/coredns" coredns --entrypoint /coredns
}

image_lpp() {
  static_image lpp "$REGISTRY/nbp/local-path-provisioner:$LPP_VERSION" "$BIN/local-path-provisioner" \
    usr/bin/local-path-provisioner --env PATH=/usr/bin:/bin --entrypoint /usr/bin/local-path-provisioner
}

curl -sf --max-time 2 "http://$REGISTRY/v2/" >/dev/null ||
  { echo "images: error: the registry at $REGISTRY does not answer; start the node (hack/node.sh up)" >&2; exit 1; }
for what in "${@:-node}"; do
  case $what in
    node) image_base; image_pause; image_kaniko; image_coredns; image_lpp ;;
    base|pause|kaniko|coredns|lpp) "image_$what" ;;
    *) echo "images: error: unknown image $what (node|base|pause|kaniko|coredns|lpp)" >&2; exit 2 ;;
  esac
done
