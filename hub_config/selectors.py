"""Which pod labels make a set of PodDefaults apply: label-selector satisfiability, pure.

A PodDefault applies to a pod when its `spec.selector` (a Kubernetes LabelSelector) matches the pod's labels.
The spawn form offers PodDefaults as "configurations"; choosing some means finding one label set that every
chosen selector matches, and saying why when there is none. Kubeflow's form only reads `matchLabels`, so a
PodDefault selecting with `matchExpressions` was silently never applied; here every operator counts:

- `matchLabels k: v` and `k In [v, ...]` need the label, with the first value all chosen selectors accept;
- `k Exists` needs the label with any value ("true" unless something forbids it);
- `k NotIn [...]` and `k DoesNotExist` are satisfied by not setting the label, but still constrain the value
  another chosen PodDefault (or the hub itself, through `base_labels`) needs.

Semantics follow the apiserver (`metav1.LabelSelectorAsSelector`) and our webhook: an empty selector `{}`
matches every pod, a missing (null) one matches none; `In`/`NotIn` with no values, `Exists`/`DoesNotExist`
with values and unknown operators are invalid, so such a PodDefault can never be applied and is reported as
unavailable, not raised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Values tried for `Exists` when nothing else fixes the value; the first one not forbidden by a NotIn wins.
_EXISTS_VALUES = ("true", "enabled", "yes", "1")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class SelectionConflict:
    """Why no label set satisfies the chosen PodDefaults; `names` are the PodDefaults involved."""

    reason: str
    names: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Requirement:
    """One constraint on one label key, remembering which PodDefault asked for it (for messages)."""

    key: str
    operator: str  # "Equals" (from matchLabels) or one of OPERATORS
    values: tuple[str, ...]
    source: str

    def describe(self) -> str:
        if self.operator == "Equals":
            return f"{self.source}: {self.key}={self.values[0]}"
        if self.operator in ("Exists", "DoesNotExist"):
            return f"{self.source}: {self.key} {self.operator}"
        return f"{self.source}: {self.key} {self.operator} ({', '.join(self.values)})"


def is_valid_label_key(key: str) -> bool:
    """A qualified name: optional DNS-subdomain prefix and '/', then a 1-63 character name."""
    if not isinstance(key, str) or not key:
        return False
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_NAME.match(name))


def is_valid_label_value(value: str) -> bool:
    """Empty, or up to 63 alphanumerics with '-', '_', '.' inside."""
    return isinstance(value, str) and (value == "" or (len(value) <= 63 and bool(_NAME.match(value))))


def selector_of(poddefault: Mapping[str, Any]) -> Any:
    """The PodDefault's selector as stored: a map, or None when missing (which matches no pod)."""
    spec = poddefault.get("spec")
    return spec.get("selector") if isinstance(spec, Mapping) else None


def name_of(poddefault: Mapping[str, Any]) -> str:
    return str((poddefault.get("metadata") or {}).get("name", ""))


def requirements(selector: Any, source: str = "") -> list[Requirement] | SelectionConflict:
    """Flattens a LabelSelector into requirements, or says why the selector is invalid."""
    if selector is None:
        return SelectionConflict(f"{source}: has no selector, so it never applies to any pod", (source,))
    if not isinstance(selector, Mapping):
        return SelectionConflict(f"{source}: selector is not a map", (source,))
    reqs: list[Requirement] = []
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        return SelectionConflict(f"{source}: matchLabels is not a map", (source,))
    for key, value in match_labels.items():
        if not is_valid_label_key(key):
            return SelectionConflict(f"{source}: {key!r} is not a valid label key", (source,))
        if not isinstance(value, str) or not is_valid_label_value(value):
            return SelectionConflict(f"{source}: {value!r} is not a valid label value for {key}", (source,))
        reqs.append(Requirement(key, "Equals", (value,), source))
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, Sequence) or isinstance(expressions, str):
        return SelectionConflict(f"{source}: matchExpressions is not a list", (source,))
    for expr in expressions:
        if not isinstance(expr, Mapping):
            return SelectionConflict(f"{source}: a matchExpression is not a map", (source,))
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if not isinstance(key, str) or not is_valid_label_key(key):
            return SelectionConflict(f"{source}: {key!r} is not a valid label key", (source,))
        if op not in OPERATORS:
            return SelectionConflict(f"{source}: unknown selector operator {op!r} on {key}", (source,))
        if not isinstance(values, Sequence) or isinstance(values, str):
            return SelectionConflict(f"{source}: values of {key} {op} is not a list", (source,))
        values = tuple(str(v) for v in values)
        if op in ("In", "NotIn") and not values:
            return SelectionConflict(f"{source}: {key} {op} has no values, so no pod can ever match", (source,))
        if op in ("Exists", "DoesNotExist") and values:
            return SelectionConflict(f"{source}: {key} {op} must not list values", (source,))
        reqs.append(Requirement(key, op, values, source))
    return reqs


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """The apiserver's matching rule, so the form can say which PodDefaults a label set will trigger."""
    reqs = requirements(selector)
    if isinstance(reqs, SelectionConflict):
        return False
    for r in reqs:
        present = r.key in labels
        value = labels.get(r.key)
        if r.operator in ("Equals", "In") and not (present and value in r.values):
            return False
        if r.operator == "NotIn" and present and value in r.values:
            return False
        if r.operator == "Exists" and not present:
            return False
        if r.operator == "DoesNotExist" and present:
            return False
    return True


def _value_for_key(
    key: str, reqs: list[Requirement], base: str | None
) -> str | SelectionConflict | None:
    """The label value that satisfies every requirement on `key` (None: leave unset or as the hub sets it)."""
    names = tuple(dict.fromkeys(r.source for r in reqs))
    listed = "; ".join(r.describe() for r in reqs)
    needs = [r for r in reqs if r.operator in ("Equals", "In", "Exists")]
    absent = [r for r in reqs if r.operator == "DoesNotExist"]
    forbidden = {v for r in reqs if r.operator == "NotIn" for v in r.values}
    if needs and absent:
        return SelectionConflict(f"label {key} must be both set and unset ({listed})", names)
    if absent:
        if base is not None:
            return SelectionConflict(f"label {key} must be unset, but the hub sets {key}={base} ({listed})", names)
        return None
    allowed: list[str] | None = None
    for r in needs:
        if r.operator in ("Equals", "In"):
            vals = [v for v in r.values if is_valid_label_value(v)]
            allowed = vals if allowed is None else [v for v in allowed if v in vals]
    candidates = None if allowed is None else [v for v in allowed if v not in forbidden]
    if base is not None:
        if base in forbidden or (candidates is not None and base not in candidates):
            return SelectionConflict(f"label {key} is set by the hub to {base!r}, which {listed} does not allow",
                                     names)
        return None
    if not needs:
        return None  # only NotIn: satisfied by not setting the label
    if candidates is None:  # only Exists
        return next((v for v in _EXISTS_VALUES if v not in forbidden),
                    next(f"true-{i}" for i in range(len(forbidden) + 1) if f"true-{i}" not in forbidden))
    if not candidates:
        return SelectionConflict(f"no value of label {key} satisfies all of: {listed}", names)
    return candidates[0]


def labels_for_requirements(
    reqs: Iterable[Requirement], base_labels: Mapping[str, str] | None = None
) -> dict[str, str] | SelectionConflict:
    """Smallest label set (added to `base_labels`) meeting every requirement, or the first conflict."""
    base = base_labels or {}
    by_key: dict[str, list[Requirement]] = {}
    for r in reqs:
        by_key.setdefault(r.key, []).append(r)
    out: dict[str, str] = {}
    for key, key_reqs in by_key.items():
        value = _value_for_key(key, key_reqs, base.get(key))
        if isinstance(value, SelectionConflict):
            return value
        if value is not None:
            out[key] = value
    return out


def labels_for_selection(
    poddefaults: Sequence[Mapping[str, Any]],
    chosen_names: Iterable[str],
    base_labels: Mapping[str, str] | None = None,
) -> dict[str, str] | SelectionConflict:
    """Labels to put on the notebook pod so every chosen PodDefault applies, or why that is impossible.

    `base_labels` are the labels the hub puts on the pod anyway: a PodDefault may not require changing them
    (that would detach the pod from KubeSpawner), and a NotIn/DoesNotExist on them is checked too.
    """
    by_name = {name_of(pd): pd for pd in poddefaults}
    chosen = list(dict.fromkeys(chosen_names))
    unknown = [n for n in chosen if n not in by_name]
    if unknown:
        return SelectionConflict(f"unknown configuration(s): {', '.join(unknown)}", tuple(unknown))
    reqs: list[Requirement] = []
    for name in chosen:
        r = requirements(selector_of(by_name[name]), source=name)
        if isinstance(r, SelectionConflict):
            return r
        reqs.extend(r)
    return labels_for_requirements(reqs, base_labels)


def applied_poddefaults(poddefaults: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> list[str]:
    """Names of the PodDefaults a pod with `labels` gets (chosen or not: the webhook applies all matches)."""
    return [name_of(pd) for pd in poddefaults if selector_matches(selector_of(pd), labels)]
