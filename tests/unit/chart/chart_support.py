"""Rendering the chart with the pinned helm, for tests (importable as `chart_support`)."""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "notebook-platform"
HELM = ROOT / ".local" / "bin" / "helm"
ALL_ON = CHART / "ci" / "all-on-values.yaml"
NAMESPACE = "platform"
RELEASE = "nbp"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, check=check, timeout=120)


@functools.lru_cache(maxsize=32)
def _render(values_files: tuple[str, ...], sets: tuple[str, ...], set_json: tuple[str, ...]) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for f in values_files:
        args += ["-f", f]
    for s in sets:
        args += ["--set", s]
    for s in set_json:
        args += ["--set-json", s]
    return helm(*args).stdout


def render(*values_files: str | Path, sets: tuple[str, ...] = (), set_json: dict[str, Any] | None = None
           ) -> list[dict[str, Any]]:
    """The chart's objects for these values (helm runs once per set of values; each call parses afresh)."""
    sj = tuple(f"{k}={json.dumps(v)}" for k, v in (set_json or {}).items())
    text = _render(tuple(str(f) for f in values_files), sets, sj)
    return [d for d in yaml.safe_load_all(text) if d]


def find(objs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
    assert len(hits) == 1, f"expected one {kind} *{name_suffix}, got {[h['metadata']['name'] for h in hits]}"
    return hits[0]


def kinds(objs: list[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objs)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    """name -> value (or the valueFrom dict)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment).get("env", [])}


def values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())
