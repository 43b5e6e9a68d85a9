"""Label selectors (`metav1.LabelSelector`) compiled into predicates over a pod's labels.

Compiled once per PodDefault resourceVersion by the cache, so admission does no parsing. Semantics follow
`metav1.LabelSelectorAsSelector`: all requirements must hold; an empty selector `{}` matches every pod; a
missing (null) selector matches nothing. A selector the apiserver would reject (unknown operator, `In`
without values, `Exists` with values) is compiled into one that matches nothing, and the reason is kept so
the cache can log it: a broken PodDefault must not block every pod in its namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Labels = Mapping[str, str]
Requirement = Callable[[Labels], bool]


class InvalidSelector(ValueError):
    """The selector is not one the apiserver would accept for a LabelSelector."""


@dataclass(frozen=True)
class Selector:
    """A compiled label selector; `error` says why it matches nothing when it is invalid."""

    requirements: tuple[Requirement, ...]
    matches_nothing: bool = False
    error: str | None = None

    def matches(self, labels: Labels) -> bool:
        if self.matches_nothing:
            return False
        for req in self.requirements:  # noqa: SIM110  (a plain loop, no generator: runs per PodDefault per admission)
            if not req(labels):
                return False
        return True


NOTHING = Selector((), matches_nothing=True)


def _requirement(expr: Any) -> Requirement:
    if not isinstance(expr, Mapping):
        raise InvalidSelector(f"matchExpressions entry is not an object: {expr!r}")
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if not isinstance(key, str) or not key:
        raise InvalidSelector(f"matchExpressions entry without a key: {expr!r}")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidSelector(f"matchExpressions values for {key!r} must be a list of strings")
    allowed = frozenset(values)
    if op == "In":
        if not allowed:
            raise InvalidSelector(f"operator In on {key!r} needs at least one value")
        return lambda labels: key in labels and labels[key] in allowed
    if op == "NotIn":
        if not allowed:
            raise InvalidSelector(f"operator NotIn on {key!r} needs at least one value")
        return lambda labels: key not in labels or labels[key] not in allowed
    if op == "Exists":
        if allowed:
            raise InvalidSelector(f"operator Exists on {key!r} takes no values")
        return lambda labels: key in labels
    if op == "DoesNotExist":
        if allowed:
            raise InvalidSelector(f"operator DoesNotExist on {key!r} takes no values")
        return lambda labels: key not in labels
    raise InvalidSelector(f"unknown operator {op!r} on {key!r} (use In, NotIn, Exists or DoesNotExist)")


def _equals(key: str, value: str) -> Requirement:
    return lambda labels: labels.get(key) == value


def compile_selector(selector: Any) -> Selector:
    """Turns a LabelSelector dict into a `Selector`; never raises (invalid ones match nothing)."""
    if selector is None:
        return NOTHING
    try:
        if not isinstance(selector, Mapping):
            raise InvalidSelector(f"selector is not an object: {selector!r}")
        reqs: list[Requirement] = []
        match_labels = selector.get("matchLabels") or {}
        if not isinstance(match_labels, Mapping):
            raise InvalidSelector("matchLabels is not an object")
        for key, value in match_labels.items():
            if not isinstance(value, str):
                raise InvalidSelector(f"matchLabels value for {key!r} is not a string")
            reqs.append(_equals(key, value))
        expressions = selector.get("matchExpressions") or []
        if not isinstance(expressions, list):
            raise InvalidSelector("matchExpressions is not a list")
        reqs.extend(_requirement(e) for e in expressions)
        return Selector(tuple(reqs))
    except InvalidSelector as e:
        return Selector((), matches_nothing=True, error=str(e))
