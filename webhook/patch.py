"""RFC 6902 JSON Patch from the original pod to the mutated one, as small per-field operations.

Why not a full-document replace or a generic diff: the apiserver applies our patch to the object as it is
at that point, and small `add` operations (append an env var, add one annotation) say exactly what we
changed, read well in audit logs, and keep working when another webhook touched other fields. The
mutation only ever adds keys, appends list entries or sets scalars, which this diff expresses directly;
for anything else it falls back to `replace`, so any (before, after) pair still yields a correct patch.
"""

from __future__ import annotations

from typing import Any

Op = dict[str, Any]


def escape(token: str) -> str:
    """A JSON Pointer reference token: `~` -> `~0`, then `/` -> `~1` (RFC 6901, order matters)."""
    return token.replace("~", "~0").replace("/", "~1")


def same(a: Any, b: Any) -> bool:
    """JSON equality (Python's == says True == 1 and 1 == 1.0; JSON documents do not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def make_patch(before: Any, after: Any) -> list[Op]:
    """Operations that turn `before` into `after` when applied in order."""
    ops: list[Op] = []
    _diff(before, after, "", ops)
    return ops


def _diff(a: Any, b: Any, path: str, ops: list[Op]) -> None:
    # Containers are walked once, key by key (no `same` on whole subtrees at every level: that made the
    # diff quadratic in the pod's depth); scalars and replaced values are compared with `same`.
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            if key not in b:
                ops.append({"op": "remove", "path": f"{path}/{escape(key)}"})
        for key, value in b.items():
            sub = f"{path}/{escape(key)}"
            if key in a:
                _diff(a[key], value, sub, ops)
            else:
                ops.append({"op": "add", "path": sub, "value": value})
        return
    if isinstance(a, list) and isinstance(b, list) and len(b) >= len(a):
        for i, item in enumerate(a):
            _diff(item, b[i], f"{path}/{i}", ops)
        for i in range(len(a), len(b)):
            ops.append({"op": "add", "path": f"{path}/{i}", "value": b[i]})
        return
    if not same(a, b):
        ops.append({"op": "replace", "path": path, "value": b})
