"""Operator profiles -> KubeSpawner's `profile_list`, pure.

We emit KubeSpawner's own `profile_list` format so that `kubespawner_override`, `profile_options` and the
`profile` user option keep their documented meaning: an operator who already knows KubeSpawner can read and
extend what we generate.
"""

from __future__ import annotations

import re
from typing import Any

from hub_config.settings import HubSettings, ImageChoice, Profile

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QTY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)$")


def quantity_to_bytes(quantity: str) -> int:
    """"2Gi" -> 2147483648. KubeSpawner's mem_* traits only know K/M/G/T, so we hand it plain bytes."""
    m = _QTY.match(quantity.strip())
    if not m:
        raise ValueError(f"{quantity!r} is not a memory quantity")
    number, suffix = float(m.group(1)), m.group(2)
    if suffix in _BINARY:
        return int(number * _BINARY[suffix])
    if suffix in _DECIMAL:
        return int(number * _DECIMAL[suffix])
    if suffix == "":
        return int(number)
    raise ValueError(f"{quantity!r}: unknown suffix {suffix!r}")


def gpu_tolerations(profile: Profile) -> list[dict[str, Any]]:
    """Explicit tolerations win; a GPU profile otherwise tolerates the conventional `<resource>` taint."""
    if profile.tolerations:
        return [dict(t) for t in profile.tolerations]
    if profile.gpus:
        return [{"key": profile.gpu_resource, "operator": "Exists", "effect": "NoSchedule"}]
    return []


def profile_override(profile: Profile) -> dict[str, Any]:
    """The `kubespawner_override` of one profile: sizes, GPUs, placement, image."""
    override: dict[str, Any] = {}
    if profile.cpu_guarantee is not None:
        override["cpu_guarantee"] = profile.cpu_guarantee
    if profile.cpu_limit is not None:
        override["cpu_limit"] = profile.cpu_limit
    if profile.mem_guarantee is not None:
        override["mem_guarantee"] = quantity_to_bytes(profile.mem_guarantee)
    if profile.mem_limit is not None:
        override["mem_limit"] = quantity_to_bytes(profile.mem_limit)
    if profile.gpus:
        # Extended resources: the limit is what the scheduler and quota see (requests default to it).
        override["extra_resource_limits"] = {profile.gpu_resource: str(profile.gpus)}
    tolerations = gpu_tolerations(profile)
    if tolerations:
        override["tolerations"] = tolerations
    if profile.node_selector:
        override["node_selector"] = dict(profile.node_selector)
    if profile.image:
        override["image"] = profile.image
    override.update(profile.kubespawner_override)
    return override


def image_option(images: list[ImageChoice]) -> dict[str, Any]:
    """KubeSpawner `profile_options` entry offering the operator's images (first is the default)."""
    default = next((i.slug for i in images if i.default), images[0].slug)
    return {
        "display_name": "Image",
        "choices": {
            i.slug: {"display_name": i.display_name, "default": i.slug == default,
                     "kubespawner_override": {"image": i.image}}
            for i in images
        },
    }


def profile_list(settings: HubSettings) -> list[dict[str, Any]]:
    """The `c.KubeSpawner.profile_list` for these settings, with exactly one default profile."""
    profiles = settings.profiles
    default_slug = next((p.slug for p in profiles if p.default), profiles[0].slug if profiles else None)
    out: list[dict[str, Any]] = []
    for p in profiles:
        entry: dict[str, Any] = {
            "slug": p.slug,
            "display_name": p.display_name,
            "description": p.description,
            "default": p.slug == default_slug,
            "kubespawner_override": profile_override(p),
        }
        if settings.images and not p.image:
            entry["profile_options"] = {"image": image_option(settings.images)}
        out.append(entry)
    return out
