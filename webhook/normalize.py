"""Canonical forms of injected entries, so "identical" means what the apiserver will store.

Why: a pod that reaches the webhook again (reinvocation, or a manifest copied from a running pod) carries
entries the webhook injected earlier, but after the apiserver's defaulting and serialisation: a secret
volume has `defaultMode: 420`, a `fieldRef` has `apiVersion: v1`, `readOnly: false` and `value: ""` are
gone, `1024Mi` became `1Gi`. Comparing raw dicts would call our own output a conflict. Both sides are
therefore put through the same defaulting before they are compared; what is written into the pod is
always the PodDefault's entry exactly as the user wrote it.

Only the defaults of the types a PodDefault injects at pod level are listed (EnvVar, EnvFromSource,
Volume, VolumeMount, Toleration, LocalObjectReference); they come from k8s.io/kubernetes
pkg/apis/core/v1/defaults.go and are checked against the real apiserver in the integration tests.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_MODE_DEFAULTED = ("secret", "configMap", "downwardAPI", "projected")
_QUANTITY_KEYS = frozenset({"sizeLimit", "divisor"})
_QUANTITY_MAPS = frozenset({"requests", "limits", "capacity"})

_SUFFIX = {
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$")


def parse_quantity(value: Any) -> Decimal | Any:
    """A resource.Quantity as an exact number (`1Gi` == `1024Mi`); anything unparsable is returned as is."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return value
    m = _QUANTITY.match(value.strip())
    if not m:
        return value
    try:
        number = Decimal(m.group(1))
        if m.group(2):
            return number * (Decimal(10) ** int(m.group(2)[1:]))
        return number * _SUFFIX[m.group(3) or ""]
    except (InvalidOperation, ValueError):
        return value


def _is_empty(value: Any) -> bool:
    # Go's omitempty drops these when the apiserver serialises; `false` of a *bool is kept by Go, but every
    # such pointer among the injected types (optional, readOnly) means the same as absent. `{}` goes too:
    # an empty map is dropped, and a source without a type (`{name: x}`) is defaulted to `emptyDir: {}`.
    return value is None or value == "" or value is False or value == [] or value == {}


def _canonical(value: Any, key: str | None = None, parent: str | None = None) -> Any:
    """Drops empty values and canonicalises quantities, recursively; lists keep their order."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            cv = _canonical(v, k, key)
            if not _is_empty(cv):
                out[k] = cv
        return out
    if isinstance(value, list):
        return [_canonical(v, None, key) for v in value]
    if key in _QUANTITY_KEYS or parent in _QUANTITY_MAPS:
        q = parse_quantity(value)
        # A zero divisor is how the apiserver serialises "not set" (Quantity is not a pointer).
        if key == "divisor" and q == 0:
            return None
        return q
    return value


def _default_field_refs(value: Any) -> None:
    """`fieldRef.apiVersion` defaults to v1 wherever it occurs (env, downwardAPI, projected)."""
    if isinstance(value, dict):
        ref = value.get("fieldRef")
        if isinstance(ref, dict) and not ref.get("apiVersion"):
            ref["apiVersion"] = "v1"
        for v in value.values():
            _default_field_refs(v)
    elif isinstance(value, list):
        for v in value:
            _default_field_refs(v)


def _default_volume(volume: dict[str, Any]) -> None:
    for source in _MODE_DEFAULTED:
        src = volume.get(source)
        if isinstance(src, dict) and src.get("defaultMode") is None:
            src["defaultMode"] = 420
    projected = volume.get("projected")
    if isinstance(projected, dict):
        for item in projected.get("sources") or []:
            token = item.get("serviceAccountToken") if isinstance(item, dict) else None
            if isinstance(token, dict) and token.get("expirationSeconds") is None:
                token["expirationSeconds"] = 3600
    iscsi = volume.get("iscsi")
    if isinstance(iscsi, dict) and not iscsi.get("iscsiInterface"):
        iscsi["iscsiInterface"] = "default"
    rbd = volume.get("rbd")
    if isinstance(rbd, dict):
        rbd.setdefault("pool", "rbd")
        rbd.setdefault("user", "admin")
        rbd.setdefault("keyring", "/etc/ceph/keyring")
    azure = volume.get("azureDisk")
    if isinstance(azure, dict):
        azure.setdefault("cachingMode", "ReadWrite")
        azure.setdefault("fsType", "ext4")
        azure.setdefault("kind", "Shared")
    scaleio = volume.get("scaleIO")
    if isinstance(scaleio, dict):
        scaleio.setdefault("storageMode", "ThinProvisioned")
        scaleio.setdefault("fsType", "xfs")
    ephemeral = volume.get("ephemeral")
    if isinstance(ephemeral, dict):
        spec = (ephemeral.get("volumeClaimTemplate") or {}).get("spec")
        if isinstance(spec, dict):
            spec.setdefault("volumeMode", "Filesystem")
    _default_field_refs(volume)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def volume(entry: dict[str, Any]) -> Any:
    v = _copy(entry)
    _default_volume(v)
    return _canonical(v)


def env_var(entry: dict[str, Any]) -> Any:
    v = _copy(entry)
    _default_field_refs(v)
    return _canonical(v)


def plain(entry: Any) -> Any:
    """For types without apiserver defaults (VolumeMount, EnvFromSource, Toleration, references)."""
    return _canonical(entry)
