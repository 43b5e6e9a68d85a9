"""The pure core: (pod, [PodDefault]) -> mutated pod, or PodDefaultConflict.

Semantics are Kubeflow's admission-webhook, field by field, so existing PodDefaults behave the same:

- selection: PodDefaults of the pod's namespace whose `spec.selector` matches the pod's labels; pods
  annotated `poddefault.admission.kubeflow.org/exclude: "true"` and mirror pods are left alone;
- `env`, `volumeMounts`, `envFrom` go into every container of `spec.containers` (not initContainers);
  `command`/`args` only into containers that have none (never into `istio-proxy`);
- `volumes`, `tolerations`, `imagePullSecrets` go into the pod spec; `labels`, `annotations` into metadata;
- env by name, volumes by name, volumeMounts by name and by mountPath, tolerations by key,
  imagePullSecrets by name, labels/annotations by key: identical entries merge, different ones conflict,
  whether the other side is another PodDefault or the pod itself;
- `serviceAccountName`, `automountServiceAccountToken` are set (the pod's own value is overridden);
- `initContainers` and `sidecars` are added by name;
- each applied PodDefault is recorded as `poddefault.admission.kubeflow.org/poddefault-<name>: <rv>`.

Where this goes beyond Kubeflow, it is so that the result is a function of the inputs and applying it twice
changes nothing (the apiserver may call a webhook again, with `reinvocationPolicy: IfNeeded`):

- PodDefaults are applied in name order, whatever the order of the list;
- "identical" is judged after the apiserver's defaulting (see `normalize.py`), so our own output, read back
  from the apiserver, is not a conflict with itself;
- labels a PodDefault adds take part in selection (repeated until no new PodDefault matches): otherwise a
  second pass would select PodDefaults the first one did not;
- `envFrom` entries already present are not appended again;
- a container that a PodDefault brings as a sidecar is its own: other PodDefaults' env, mounts and command
  do not go into it, and a pod container of the same name is kept as is (the apiserver defaults and adds
  token mounts to our sidecar, so comparing would reject our own output on reinvocation);
- two PodDefaults that set different `serviceAccountName` or `automountServiceAccountToken`, or bring
  different containers under one name, are a conflict (Kubeflow let the last one win).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from webhook import constants as c
from webhook import normalize
from webhook.model import CompiledPodDefault, compile_poddefault

POD = ""  # the source name for entries the pod already had
Canon = Callable[[Any], Any]
Entry = tuple[str, Any, Any]  # (source, entry, canonical form)


def json_copy(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars); several times faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


class Conflict(NamedTuple):
    """Two sources want different values for one key of one field."""

    field: str
    key: str | None  # None for single-valued fields such as serviceAccountName
    first: str  # a PodDefault name, or POD
    second: str  # a PodDefault name
    container: str | None = None

    def describe(self) -> str:
        what = self.field if self.key is None else f"{self.field} {json.dumps(self.key)}"
        if self.first == self.second:
            return f'PodDefault "{self.first}" sets {what} twice, differently'
        if self.first == POD:
            where = f' (container "{self.container}")' if self.container else ""
            who = f'PodDefault "{self.second}" and the pod{where}'
        else:
            who = f'PodDefaults "{self.first}" and "{self.second}"'
        return f"{who} set {what} differently"


class PodDefaultConflict(Exception):
    """The matching PodDefaults cannot all be applied: at least one field would get two values."""

    def __init__(self, pod: str, conflicts: list[Conflict]) -> None:
        self.pod = pod
        self.conflicts = conflicts
        super().__init__(self.message)

    @property
    def poddefaults(self) -> list[str]:
        """Names of the PodDefaults involved, for Events on each of them."""
        return sorted({n for cf in self.conflicts for n in (cf.first, cf.second) if n != POD})

    @property
    def message(self) -> str:
        details = "; ".join(cf.describe() for cf in self.conflicts)
        return (
            f"PodDefault conflict on pod {self.pod}: {details}. Make the entries identical or remove one, "
            "or stop a PodDefault from selecting this pod (change the pod's labels or the PodDefault's "
            f'selector, or annotate the pod {c.EXCLUDE_ANNOTATION}: "true").'
        )


@dataclass(frozen=True)
class Mutation:
    """The mutated pod and the names of the PodDefaults applied, in the order applied."""

    pod: dict[str, Any]
    applied: list[str]


def apply_poddefaults(pod: dict[str, Any], poddefaults: list[dict[str, Any]]) -> dict[str, Any]:
    """Returns a new pod with the matching PodDefaults applied; raises PodDefaultConflict on a conflict.

    Selects for itself (namespace, selector, exclusion); never modifies its inputs.
    """
    return mutate(pod, [compile_poddefault(pd) for pd in poddefaults]).pod


def pod_display_name(pod: dict[str, Any]) -> str:
    """`namespace/name`, or `namespace/generateName*` for pods named by the apiserver."""
    meta = pod.get("metadata") or {}
    name = meta.get("name") or (f"{meta['generateName']}*" if meta.get("generateName") else "<unnamed>")
    return f"{meta.get('namespace') or ''}/{name}"


def is_excluded(pod: dict[str, Any]) -> bool:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return annotations.get(c.EXCLUDE_ANNOTATION) == "true" or c.MIRROR_POD_ANNOTATION in annotations


def select(pod: dict[str, Any], poddefaults: Iterable[CompiledPodDefault]) -> list[CompiledPodDefault]:
    """The PodDefaults that apply to the pod, in name order, including those selected by labels that
    other selected PodDefaults add (repeated until nothing new matches)."""
    return _select(pod, _candidates(pod, poddefaults))


def _select(pod: dict[str, Any], candidates: list[CompiledPodDefault]) -> list[CompiledPodDefault]:
    labels = dict((pod.get("metadata") or {}).get("labels") or {})
    chosen: dict[str, CompiledPodDefault] = {}
    while True:
        new = [pd for pd in candidates if pd.name not in chosen and pd.matches(labels)]
        if not new:
            return sorted(chosen.values(), key=lambda pd: pd.name)
        added = False
        for pd in new:
            chosen[pd.name] = pd
            for key, value in (pd.spec.get("labels") or {}).items():
                if key not in labels:
                    labels[key] = value
                    added = True
        if not added:  # same labels: another pass would select nothing new
            return sorted(chosen.values(), key=lambda pd: pd.name)


def _candidates(pod: dict[str, Any], poddefaults: Iterable[CompiledPodDefault]) -> list[CompiledPodDefault]:
    """Valid PodDefaults of the pod's namespace, one per name, sorted by name."""
    namespace = (pod.get("metadata") or {}).get("namespace") or ""
    by_name: dict[str, CompiledPodDefault] = {}
    for pd in poddefaults:
        if pd.namespace != namespace or pd.error is not None:
            continue
        seen = by_name.get(pd.name)
        # Two objects with one name cannot come from the API; if a caller passes them, pick one that
        # does not depend on the list's order.
        if seen is None or _tiebreak(pd) > _tiebreak(seen):
            by_name[pd.name] = pd
    return [by_name[n] for n in sorted(by_name)]


def _tiebreak(pd: CompiledPodDefault) -> tuple[int, str]:
    rv = pd.resource_version
    return (int(rv) if rv.isdigit() else -1, json.dumps(pd.obj, sort_keys=True, default=str))


def mutate(pod: dict[str, Any], poddefaults: Iterable[CompiledPodDefault]) -> Mutation:
    """`apply_poddefaults` on precompiled PodDefaults (the cache compiles them once per resourceVersion)."""
    result = json_copy(pod)
    if is_excluded(pod):
        return Mutation(result, [])
    candidates = _candidates(pod, poddefaults)
    chosen = _select(pod, candidates)
    if not chosen:
        return Mutation(result, [])
    conflicts: list[Conflict] = []
    meta = result.setdefault("metadata", {})
    spec = result.setdefault("spec", {})

    _merge_pod_spec(spec, chosen, conflicts)
    sidecars = _sidecar_names(pod, chosen, candidates)
    for ctr in spec.get("containers") or []:
        if ctr.get("name") not in sidecars:
            _merge_container(ctr, chosen, conflicts)
    _add_containers(spec, "initContainers", "initContainers", chosen, conflicts)
    _add_containers(spec, "containers", "sidecars", chosen, conflicts)
    _set(meta, "labels", _merge_map(meta.get("labels"), [(pd.name, pd.spec.get("labels")) for pd in chosen],
                                    "label", conflicts))
    annotations = _merge_map(meta.get("annotations"), [(pd.name, pd.spec.get("annotations")) for pd in chosen],
                             "annotation", conflicts, ignore=lambda k: k.startswith(c.APPLIED_ANNOTATION_PREFIX))
    annotations = dict(annotations if annotations is not None else meta.get("annotations") or {})
    for pd in chosen:
        annotations[c.APPLIED_ANNOTATION_PREFIX + pd.name] = pd.resource_version
    meta["annotations"] = annotations

    if conflicts:
        raise PodDefaultConflict(pod_display_name(pod), list(dict.fromkeys(conflicts)))
    return Mutation(result, [pd.name for pd in chosen])


def _sidecar_names(pod: dict[str, Any], chosen: list[CompiledPodDefault],
                   candidates: list[CompiledPodDefault]) -> frozenset[str]:
    """Sidecar names of the PodDefaults applied now or recorded on the pod as applied before."""
    recorded = {k[len(c.APPLIED_ANNOTATION_PREFIX):]
                for k in ((pod.get("metadata") or {}).get("annotations") or {})
                if k.startswith(c.APPLIED_ANNOTATION_PREFIX)}
    names: set[str] = set()
    for pd in chosen:
        names |= pd.sidecar_names
    for pd in candidates if recorded else ():
        if pd.name in recorded:
            names |= pd.sidecar_names
    return frozenset(names)


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    """Writes only when something changed, so an untouched field keeps its exact original form."""
    if value is not None:
        target[key] = value


def _entries(chosen: list[CompiledPodDefault], field: str, canon: Canon = normalize.plain) -> list[Entry]:
    """(source, entry, canonical form) for every entry of `field` in the PodDefaults, in order."""
    return [(pd.name, entry, pd.canonical(field, i, canon))
            for pd in chosen for i, entry in enumerate(pd.spec.get(field) or [])]


def _merge_pod_spec(spec: dict[str, Any], chosen: list[CompiledPodDefault], conflicts: list[Conflict]) -> None:
    by_name = [("name", lambda e: e.get("name", ""))]
    _set(spec, "volumes", _merge_keyed(spec.get("volumes"), _entries(chosen, "volumes", normalize.volume), by_name,
                                       normalize.volume, "volume", conflicts))
    _set(spec, "tolerations", _merge_keyed(spec.get("tolerations"), _entries(chosen, "tolerations"),
                                           [("key", lambda e: e.get("key") or "")], normalize.plain,
                                           "toleration", conflicts))
    _set(spec, "imagePullSecrets", _merge_keyed(spec.get("imagePullSecrets"), _entries(chosen, "imagePullSecrets"),
                                                by_name, normalize.plain, "imagePullSecret", conflicts))
    sa = _single_value(chosen, "serviceAccountName", conflicts)
    if sa is not None:
        spec["serviceAccountName"] = sa
        if "serviceAccount" in spec:  # the deprecated alias; keep the object self-consistent
            spec["serviceAccount"] = sa
    automount = _single_value(chosen, "automountServiceAccountToken", conflicts)
    if automount is not None:
        spec["automountServiceAccountToken"] = automount


def _single_value(chosen: list[CompiledPodDefault], field: str, conflicts: list[Conflict]) -> Any:
    """The one value the PodDefaults agree on for a scalar field, or None if none sets it."""
    first: tuple[str, Any] | None = None
    for pd in chosen:
        value = pd.spec.get(field)
        if value is None or value == "":
            continue
        if first is None:
            first = (pd.name, value)
        elif value != first[1]:
            conflicts.append(Conflict(field, None, first[0], pd.name))
    return None if first is None else first[1]


def _merge_container(ctr: dict[str, Any], chosen: list[CompiledPodDefault], conflicts: list[Conflict]) -> None:
    name = ctr.get("name", "")
    _set(ctr, "env", _merge_keyed(ctr.get("env"), _entries(chosen, "env", normalize.env_var),
                                  [("name", lambda e: e.get("name", ""))], normalize.env_var, "env", conflicts,
                                  container=name))
    _set(ctr, "volumeMounts", _merge_keyed(
        ctr.get("volumeMounts"), _entries(chosen, "volumeMounts"),
        [("name", lambda e: e.get("name", "")), ("mountPath", lambda e: e.get("mountPath", ""))],
        normalize.plain, "volumeMount", conflicts, container=name))
    _set(ctr, "envFrom", _append_new(ctr.get("envFrom"), _entries(chosen, "envFrom")))
    if name == c.ISTIO_PROXY_CONTAINER:
        return
    for field in ("command", "args"):
        if ctr.get(field):
            continue
        for pd in chosen:
            if pd.spec.get(field):
                ctr[field] = list(pd.spec[field])
                break


def _merge_keyed(existing: list[dict[str, Any]] | None, additions: list[Entry],
                 keys: list[tuple[str, Callable[[dict[str, Any]], Any]]], canon: Canon, field: str,
                 conflicts: list[Conflict], container: str | None = None) -> list[dict[str, Any]] | None:
    """Merges keyed list entries; returns the new list, or None when nothing was added.

    An entry is skipped when an identical one (after canonicalisation) is already there under its key,
    is a conflict when a different one holds any of its keys, and is appended otherwise. The pod's own
    entries never conflict with each other (the apiserver validates those).
    """
    out = list(existing or [])
    index: dict[tuple[str, Any], list[tuple[str, Any]]] = {}

    def remember(source: str, entry: dict[str, Any], canonical: Any) -> None:
        for kind, key_of in keys:
            index.setdefault((kind, key_of(entry)), []).append((source, canonical))

    for entry in out:
        remember(POD, entry, canon(entry))
    changed = False
    for source, entry, canonical in additions:
        present, clash = True, None
        for kind, key_of in keys:
            holders = index.get((kind, key_of(entry)))
            if not holders:
                present = False
            elif not any(h == canonical for _, h in holders):
                clash = (kind, key_of(entry), holders[0][0])
                break
        if clash is not None:
            kind, key, holder = clash
            label = field if kind == keys[0][0] else f"{field} {kind}"
            conflicts.append(Conflict(label, str(key), holder, source, container if holder == POD else None))
        elif not present:
            out.append(json_copy(entry))
            remember(source, entry, canonical)
            changed = True
    return out if changed else None


def _append_new(existing: list[dict[str, Any]] | None, additions: list[Entry]) -> list[dict[str, Any]] | None:
    """Appends entries not already present (Kubeflow appends blindly, which grows on every reapply)."""
    out = list(existing or [])
    seen = [normalize.plain(e) for e in out]
    changed = False
    for _, entry, canonical in additions:
        if canonical not in seen:
            out.append(json_copy(entry))
            seen.append(canonical)
            changed = True
    return out if changed else None


def _merge_map(existing: dict[str, str] | None, additions: list[tuple[str, dict[str, str] | None]], field: str,
               conflicts: list[Conflict], ignore: Callable[[str], bool] = lambda k: False) -> dict[str, str] | None:
    """Merges labels or annotations by key; returns the new map, or None when nothing was added."""
    out = dict(existing or {})
    owner = dict.fromkeys(out, POD)
    changed = False
    for source, values in additions:
        for key, value in (values or {}).items():
            if ignore(key):
                continue
            if key not in out:
                out[key], owner[key] = value, source
                changed = True
            elif out[key] != value:
                conflicts.append(Conflict(field, key, owner[key], source))
    return out if changed else None


def _add_containers(spec: dict[str, Any], target: str, field: str, chosen: list[CompiledPodDefault],
                    conflicts: list[Conflict]) -> None:
    """Adds PodDefault containers by name, once. A pod container of that name is kept as it is; two
    PodDefaults bringing different containers under one name conflict."""
    out = list(spec.get(target) or [])
    present = {ctr.get("name") for ctr in out}
    brought: dict[str, tuple[str, Any]] = {}
    changed = False
    for source, ctr, canonical in _entries(chosen, field):
        name = ctr.get("name", "")
        if name in brought:
            if brought[name][1] != canonical:
                conflicts.append(Conflict(field[:-1] if field.endswith("s") else field, name, brought[name][0], source))
            continue
        brought[name] = (source, canonical)
        if name not in present:
            out.append(json_copy(ctr))
            present.add(name)
            changed = True
    if changed:
        spec[target] = out
