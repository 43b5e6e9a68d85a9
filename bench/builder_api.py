"""Builder API latency against the local apiserver: POST -> Job created, and listing with many builds.

    .venv/bin/python bench/builder_api.py [--builds 1000] [--kubeconfig .local/kubeconfig]

Each POST goes through the whole path (TokenReview + SubjectAccessReviews, reuse lookup, the namespace limit
check before and after creating the Job). Every build is cancelled right after it is created, so the namespace
fills up with finished builds the way it does in use (a handful active, many finished) and the limit check
stays small. Then GET .../builds is timed with all of them present. The app runs in-process (ASGI); the
apiserver is real. Prints figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client as kc
from kubernetes import config as kconfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder import constants as c  # noqa: E402
from builder.app import create_app  # noqa: E402
from builder.settings import Settings  # noqa: E402

REG = "registry.local:5000"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def setup(api: Any, ns: str) -> str:
    core, rbac = kc.CoreV1Api(api), kc.RbacAuthorizationV1Api(api)
    core.create_namespace({"metadata": {"name": ns, "labels": {"notebook-platform.io/test": "true"}}})
    core.create_namespaced_service_account(ns, {"metadata": {"name": "notebook"}})
    rules = [{"apiGroups": [c.API_GROUP], "resources": [c.RESOURCE], "verbs": ["create", "get", "list", "delete"]},
             {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get"]}]
    rbac.create_namespaced_role(ns, {"metadata": {"name": "builder"}, "rules": rules})
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "builder"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "builder"},
        "subjects": [{"kind": "ServiceAccount", "name": "notebook", "namespace": ns}]})
    tr = core.create_namespaced_service_account_token("notebook", ns, {"spec": {"expirationSeconds": 7200}})
    return str(tr.status.token)


async def run(kubeconfig: Path, builds: int, list_rounds: int) -> dict[str, Any]:
    api = kconfig.new_client_from_config(config_file=str(kubeconfig))
    ns = f"bench-builder-{secrets.token_hex(3)}"
    token = setup(api, ns)
    headers = {"Authorization": f"Bearer {token}"}
    settings = Settings(kubeconfig=kubeconfig, registry=REG, max_concurrent_builds_per_namespace=5)
    app = create_app(settings)
    base = f"/api/v1/namespaces/{ns}/builds"
    body = {"context": {"pvc": "workspace", "path": "proj"}, "destination": f"{REG}/{ns}/app:v1"}
    post_ms: list[float] = []
    list_ms: list[float] = []
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://builder", timeout=60
        ) as http:
            t0 = time.perf_counter()
            for i in range(builds):
                start = time.perf_counter()
                r = await http.post(base, json=body, headers=headers)
                post_ms.append((time.perf_counter() - start) * 1000)
                if r.status_code != 201:
                    raise SystemExit(f"POST {i} -> {r.status_code} {r.text}")
                d = await http.delete(f"{base}/{r.json()['metadata']['name']}", headers=headers)
                if d.status_code != 200:
                    raise SystemExit(f"DELETE {i} -> {d.status_code} {d.text}")
                if (i + 1) % 100 == 0:
                    print(f"  {i + 1} builds, POST p50 so far {statistics.median(post_ms):.1f} ms", flush=True)
            fill_s = time.perf_counter() - t0
            present = len(kc.BatchV1Api(api).list_namespaced_job(ns, label_selector=c.BUILD_SELECTOR).items)
            for _ in range(list_rounds):
                start = time.perf_counter()
                r = await http.get(base, headers=headers)
                list_ms.append((time.perf_counter() - start) * 1000)
                assert r.status_code == 200
            listed = len(r.json()["items"])
    finally:
        kc.CoreV1Api(api).delete_namespace(ns, propagation_policy="Background")
        api.close()
    return {
        "bench": "builder_api",
        "builds": builds,
        "jobs_present": present,
        "listed": listed,
        "post_ms_p50": round(pct(post_ms, 50), 1),
        "post_ms_p99": round(pct(post_ms, 99), 1),
        "post_first100_ms_p50": round(statistics.median(post_ms[:100]), 1),
        "post_last100_ms_p50": round(statistics.median(post_ms[-100:]), 1),
        "list_ms_p50": round(pct(list_ms, 50), 1),
        "list_ms_p99": round(pct(list_ms, 99), 1),
        "fill_seconds": round(fill_s, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--builds", type=int, default=1000)
    p.add_argument("--list-rounds", type=int, default=30)
    p.add_argument("--kubeconfig", type=Path,
                   default=Path(os.environ.get("NBP_KUBECONFIG", ROOT / ".local" / "kubeconfig")))
    a = p.parse_args()
    out = asyncio.run(run(a.kubeconfig, a.builds, a.list_rounds))
    print(f"POST -> Job created: p50 {out['post_ms_p50']} ms, p99 {out['post_ms_p99']} ms "
          f"(first 100: {out['post_first100_ms_p50']} ms, last 100: {out['post_last100_ms_p50']} ms)")
    print(f"GET list with {out['listed']} builds: p50 {out['list_ms_p50']} ms, p99 {out['list_ms_p99']} ms")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
