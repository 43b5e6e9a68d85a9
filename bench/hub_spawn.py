"""Hub spawn-path benchmark: the pure form/selector work, and namespace provisioning on the real apiserver.

    .venv/bin/python bench/hub_spawn.py [--users 10] [--kubeconfig .local/kubeconfig]

Prints one line per figure; the last line is one JSON object with all of them. Provisioning figures are
skipped (null) when no kubeconfig is reachable. Namespaces it creates carry `notebook-platform.io/test=true`
and are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from hub_config import constants as k
from hub_config.form import configurations, labels_for_selection, render_form
from hub_config.namespaces import ensure_user_namespace, namespace_name
from hub_config.profiles import profile_list
from hub_config.settings import HubSettings

ROOT = Path(__file__).resolve().parent.parent


def poddefaults(n: int) -> list[dict[str, Any]]:
    """A realistic mix: matchLabels, In, Exists, NotIn, plus hostile descriptions."""
    out = []
    for i in range(n):
        selector: dict[str, Any] = [
            {"matchLabels": {f"pd-{i}": "true"}},
            {"matchExpressions": [{"key": f"tier-{i % 5}", "operator": "In", "values": ["gold", "silver"]}]},
            {"matchExpressions": [{"key": f"gpu-{i}", "operator": "Exists"},
                                  {"key": "cpu-only", "operator": "DoesNotExist"}]},
            {"matchLabels": {f"x-{i}": "1"}, "matchExpressions": [{"key": "env", "operator": "NotIn",
                                                                   "values": ["prod"]}]},
        ][i % 4]
        out.append({"metadata": {"name": f"pd-{i:03d}"},
                    "spec": {"desc": f"<b>config {i}</b> & more", "selector": selector}})
    return out


def timed(fn: Any, repeat: int) -> float:
    """Seconds per call, best of 3 batches (the pure code is what we measure, not the scheduler)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def pure_figures() -> dict[str, float]:
    pds = poddefaults(100)
    names = [p["metadata"]["name"] for p in pds[:10]]
    settings = HubSettings(profiles=[{"slug": f"p{i}", "display_name": f"P{i}", "gpus": i % 2} for i in range(6)],
                           images=[{"slug": f"i{i}", "display_name": f"I{i}", "image": f"img:{i}"} for i in range(4)])
    profiles = profile_list(settings)
    base = {"component": "singleuser-server"}
    configs = configurations(pds, preselected=names[:3], base_labels=base)
    return {
        "labels_for_selection_10_of_100_us": timed(lambda: labels_for_selection(pds, names, base), 500) * 1e6,
        "configurations_100_ms": timed(lambda: configurations(pds, names[:3], base), 50) * 1e3,
        "render_form_100_ms": timed(lambda: render_form(profiles, configs, {}, "/hub/spawn-preview"), 50) * 1e3,
    }


async def provisioning_figures(kubeconfig: Path, users: int) -> dict[str, float | None]:
    from kubernetes_asyncio import client, config

    api = await config.new_client_from_config(config_file=str(kubeconfig))
    settings = HubSettings(namespace_prefix="nbp-bench-", namespace_labels={k.TEST_LABEL: "true"},
                           builder={"url": "http://builder:8080", "registry": "registry:5000"})
    names = [f"bench-{secrets.token_hex(4)}" for _ in range(users)]
    first, again = [], []
    try:
        for user in names:
            ns = namespace_name(user, settings.namespace_prefix)
            t0 = time.perf_counter()
            await ensure_user_namespace(api, user, ns, settings)
            t1 = time.perf_counter()
            await ensure_user_namespace(api, user, ns, settings)
            first.append(t1 - t0)
            again.append(time.perf_counter() - t1)
        # One user, many concurrent spawns (e.g. several named servers at once).
        one = names[0]
        t0 = time.perf_counter()
        await asyncio.gather(*(ensure_user_namespace(api, one, namespace_name(one, settings.namespace_prefix),
                                                     settings) for _ in range(8)))
        concurrent = time.perf_counter() - t0
    finally:
        core = client.CoreV1Api(api)
        for user in names:
            with contextlib.suppress(client.ApiException):
                await core.delete_namespace(namespace_name(user, settings.namespace_prefix))
        await api.close()

    def p95(xs: list[float]) -> float:
        return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]

    return {
        "provision_first_p50_ms": statistics.median(first) * 1e3,
        "provision_first_p95_ms": p95(first) * 1e3,
        "provision_repeat_p50_ms": statistics.median(again) * 1e3,
        "provision_repeat_p95_ms": p95(again) * 1e3,
        "provision_8_concurrent_same_user_ms": concurrent * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--kubeconfig", type=Path, default=ROOT / ".local" / "kubeconfig")
    args = parser.parse_args()
    figures: dict[str, Any] = {"users": args.users}
    figures.update(pure_figures())
    if args.kubeconfig.is_file():
        figures.update(asyncio.run(provisioning_figures(args.kubeconfig, args.users)))
    else:
        figures["provision_first_p50_ms"] = None
    for key, value in figures.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    print(json.dumps({"bench": "hub_spawn", **{key: (round(v, 3) if isinstance(v, float) else v)
                                              for key, v in figures.items()}}))


if __name__ == "__main__":
    main()
