#!/usr/bin/env bash
# Copies the CustomResourceDefinitions of cert-manager and the Prometheus Operator, at the versions pinned in
# versions.env, from their Go modules (the module proxy serves them; no release download) into
# .local/crds/, and prints that directory. The chart's cert-manager and ServiceMonitor objects are
# validated against these real schemas (tests/integration/chart). Cached: a second run copies nothing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$ROOT/hack/versions.env"

out=$LOCAL/crds
stamp="$out/.stamp"
want="cert-manager $CERT_MANAGER_VERSION prometheus-operator $PROMETHEUS_OPERATOR_VERSION"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$out"
  exit 0
fi

module_dir() {  # module@version -> its directory in the module cache (downloaded if needed)
  local dir
  dir=$(cd "$ROOT/hack" && go mod download -json "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or ""); sys.exit(0 if d.get("Dir") else d.get("Error"))')
  [ -d "$dir" ] || die "could not download $1"
  printf '%s\n' "$dir"
}

mkdir -p "$out"
rm -f "$out"/*.yaml "$stamp"
cm=$(module_dir "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION")
for kind in certificates certificaterequests issuers clusterissuers; do
  cp "$cm/deploy/crds/cert-manager.io_$kind.yaml" "$out/"
done
po=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
cp "$po/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$out/"
chmod u+w "$out"/*.yaml
printf '%s\n' "$want" > "$stamp"
echo "$out"
