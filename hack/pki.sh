#!/usr/bin/env bash
# Creates the local cluster's certificate authority, component certificates, service-account keys
# and kubeconfigs under .local/pki and .local/. Idempotent: existing files are kept, so a restarted
# cluster keeps its identity and clients keep working.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/lib.sh"

mkdir -p "$PKI"
umask 077

ca() {
  [ -f "$PKI/ca.crt" ] && return
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=notebook-platform-local-ca" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
}

# cert NAME CN ORG SANS: a key and a certificate signed by the local CA.
cert() {
  local name=$1 cn=$2 org=$3 sans=$4 ext
  [ -f "$PKI/$name.crt" ] && return
  ext=$(mktemp)
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$sans" ]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$sans"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } > "$ext"
  local subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org/CN=$cn"
  openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$PKI/$name.key" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$ext" "$PKI/$name.csr"
}

# kubeconfig FILE CERTNAME: a kubeconfig for the apiserver on loopback with a client certificate.
kubeconfig() {
  local file=$1 name=$2
  [ -f "$file" ] && return
  cat > "$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/$name.crt")
    client-key-data: $(base64 -w0 < "$PKI/$name.key")
contexts:
- name: local
  context: {cluster: local, user: $name}
current-context: local
EOF
}

ca
cert apiserver kube-apiserver "" \
  "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$SERVICE_IP"
cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ""
cert admin admin system:masters ""
cert controller-manager system:kube-controller-manager "" ""
cert scheduler system:kube-scheduler "" ""
# The node: one kubelet certificate serves (on NODE_IP) and authenticates it as system:node:NAME.
cert kubelet "system:node:$NODE_NAME" system:nodes "DNS:$NODE_NAME,IP:$NODE_IP"
cert kube-proxy system:kube-proxy "" ""
[ -f "$PKI/sa.key" ] || {
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}
kubeconfig "$LOCAL/kubeconfig" admin
kubeconfig "$PKI/controller-manager.kubeconfig" controller-manager
kubeconfig "$PKI/scheduler.kubeconfig" scheduler
kubeconfig "$PKI/kubelet.kubeconfig" kubelet
kubeconfig "$PKI/kube-proxy.kubeconfig" kube-proxy
