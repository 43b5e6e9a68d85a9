"""Builder API latency against the local apiserver: POST -> Job created, and listing with many builds.

    .venv/bin/python bench/builder_api.py [--builds 1000] [--modes cache,live] [--pods] [--kubeconfig ...]
    .venv/bin/python bench/builder_api.py --builds 0 --kaniko [--kaniko-rounds 3] [--kaniko-workloads small,medium]

Each POST goes through the whole path (TokenReview + SubjectAccessReviews, reuse lookup, the namespace limit
check before and after creating the Job); after each, the same Job is created straight at the apiserver as the
baseline (the floor no builder can go under). `--modes` runs it with the builder's watch cache of build Jobs and
pods (the default setting: the reads are memory, the POST makes one apiserver call) and, as the baseline in the
same process, with every read going to the apiserver (`watch_cache: false`), and prints the ratios.
Every build is cancelled right after it is created, so the namespace
fills up with finished builds the way it does in use (a handful active, many finished) and the limit check
stays small. Then GET .../builds is timed with all of them present. The app runs in-process (ASGI); the
apiserver is real. `--builds 0` skips this part.

`--kaniko` (needs the platform `make up` installs, node and registry included) measures real builds through
the installed builder's REST API, as a user: a namespace provisioned by the hub's own code and settings, its
workspace claim, the `notebook` service account's token. Per workload and round, in a fresh repository (so the
first build is truly cold; Kaniko's cache is `<repository>/cache`): a cold build, then the same Dockerfile
with only the file of its last layer (`COPY`) changed. Each is timed from the POST to the `built` event of the
SSE log, and split into steps by the arrival time of Kaniko's log lines. Prints figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import re
import secrets
import statistics
import subprocess
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
from builder.job import render_job  # noqa: E402
from builder.model import BuildRequest  # noqa: E402
from builder.settings import Settings  # noqa: E402
from builder.validate import check_request  # noqa: E402

REG = "registry.local:5000"
PLATFORM_NAMESPACE = "notebook-platform"
BUILDER_SERVICE = "notebook-platform-builder"
HUB_SECRET = "notebook-platform-hub"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def wait_for_earlier_namespaces(kubeconfig: Path, timeout: float = 900) -> float:
    """Waits until no `bench-builder-*` namespace is left: deleting one deletes its 1,000 Jobs, and the builder's
    cluster-wide watch would receive all those events during the next measurement. Returns the seconds waited."""
    api = kconfig.new_client_from_config(config_file=str(kubeconfig))
    start = time.monotonic()
    try:
        while time.monotonic() - start < timeout:
            names = [n.metadata.name for n in kc.CoreV1Api(api).list_namespace().items]
            if not any(n.startswith("bench-builder-") for n in names):
                break
            time.sleep(2)
    finally:
        api.close()
    return time.monotonic() - start


def setup(api: Any, ns: str, pods: bool) -> str:
    core, rbac = kc.CoreV1Api(api), kc.RbacAuthorizationV1Api(api)
    core.create_namespace({"metadata": {"name": ns, "labels": {"notebook-platform.io/test": "true"}}})
    if not pods:  # the Job controller then creates no build pods (its creates are refused by the quota)
        core.create_namespaced_resource_quota(ns, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}})
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


async def run(kubeconfig: Path, builds: int, list_rounds: int, watch_cache: bool, pods: bool) -> dict[str, Any]:
    api = kconfig.new_client_from_config(config_file=str(kubeconfig))
    ns = f"bench-builder-{secrets.token_hex(3)}"
    token = setup(api, ns, pods)
    headers = {"Authorization": f"Bearer {token}"}
    # No workspace claim in the bench namespace: the volume agent's check (one HTTP request to a pod in the
    # namespace per POST) is not part of these figures.
    settings = Settings(kubeconfig=kubeconfig, registry=REG, max_concurrent_builds_per_namespace=5,
                        watch_cache=watch_cache, volume_agent=False)
    app = create_app(settings)
    base = f"/api/v1/namespaces/{ns}/builds"
    body = {"context": {"pvc": "workspace", "path": "proj"}, "destination": f"{REG}/{ns}/app:v1"}
    post_ms: list[float] = []
    raw_ms: list[float] = []
    list_ms: list[float] = []
    # The baseline, in the same loop: the same Job created straight through the apiserver (no builder), its
    # build labels removed so the builder never counts or lists it.
    raw_job = render_job(check_request(BuildRequest.model_validate(body), ns, settings), settings, ns, "bench")
    raw_job["metadata"]["labels"] = {"bench": "raw-create"}
    raw_job["spec"]["template"]["metadata"]["labels"] = {"bench": "raw-create"}
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://builder", timeout=60
        ) as http:
            while (await http.get("/readyz")).status_code != 200:  # the watch cache lists first
                await asyncio.sleep(0.05)
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
                start = time.perf_counter()
                await app.state.kube.create_job(ns, raw_job)
                raw_ms.append((time.perf_counter() - start) * 1000)
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
        "builds": builds,
        "jobs_present": present,
        "listed": listed,
        "post_ms_p50": round(pct(post_ms, 50), 1),
        "post_ms_p99": round(pct(post_ms, 99), 1),
        "post_first100_ms_p50": round(statistics.median(post_ms[:100]), 1),
        "post_last100_ms_p50": round(statistics.median(post_ms[-100:]), 1),
        "apiserver_create_ms_p50": round(pct(raw_ms, 50), 1),
        "apiserver_create_ms_p99": round(pct(raw_ms, 99), 1),
        "list_ms_p50": round(pct(list_ms, 50), 1),
        "list_ms_p99": round(pct(list_ms, 99), 1),
        "fill_seconds": round(fill_s, 1),
    }


# -- Kaniko: cold vs one-layer-changed builds through the installed builder ---------------------------------

# The slow layer: MIB of fresh random data kept in the image, and ROUNDS times `gzip -9` over 8 MiB of it (real
# CPU work, ~0.5 s a round here). Random output: a rebuilt layer never equals the cached one. Last, a small COPY.
KANIKO_DOCKERFILE = """\
FROM {base}
RUN mkdir /opt/slow && head -c {mib}M /dev/urandom > /opt/slow/data.bin \\
 && for i in $(seq {rounds}); do head -c 8M /opt/slow/data.bin | gzip -9 | sha256sum; done > /opt/slow/SUMS
COPY stamp.txt /stamp.txt
CMD ["cat", "/stamp.txt"]
"""
# name -> (MiB kept in the RUN layer, gzip rounds). `small` is tests/e2e/builder's Dockerfile.
KANIKO_WORKLOADS = {"small": (8, 6), "medium": (64, 24)}
# Kaniko's log lines (executor v1.24) that start a step; the first match of each, in log order.
KANIKO_STEPS = [
    ("Retrieving image manifest", "base manifest, cache lookup"),
    ("Unpacking rootfs", "unpack base image"),
    ("Initializing snapshotter", "initial snapshot"),
    ("Running: [", "RUN command"),
    ("Found cached layer", "extract cached layer"),
    ("Pushing layer", "push layer to cache"),
    ("COPY ", "COPY + snapshot"),
]
CACHE_HIT, CACHE_MISS = "Using caching version of cmd: RUN", "No cached layer found for cmd RUN"
PUSH_RE = re.compile(r"Pushing image to (\S+)")
CACHE_REF_RE = re.compile(r":[0-9a-f]{64}$")


def kaniko_steps(events: list[tuple[float, dict[str, Any]]], total: float) -> dict[str, float]:
    """Seconds per step: POST -> first log line (pod start), Kaniko's steps, last line -> `built`."""
    lines = [(t, str(d.get("message", ""))) for t, d in events if d.get("phase") == "log"]
    if not lines:
        return {}
    marks: list[tuple[float, str]] = [(0.0, "pod start")]
    seen: set[str] = set()
    for t, line in lines:
        label = next((lab for key, lab in KANIKO_STEPS if key in line), None)
        if "Taking snapshot of full filesystem" in line and "RUN command" in seen:
            label = "snapshot RUN layer"
        m = PUSH_RE.search(line)
        if m and not CACHE_REF_RE.search(m.group(1)):
            label = "push image"
        if label and label not in seen:
            seen.add(label)
            marks.append((t, label))
    marks.append((lines[-1][0], "exit -> built"))
    marks.append((total, ""))
    steps: dict[str, float] = {}
    for (t0, label), (t1, _) in itertools.pairwise(marks):
        steps[label] = steps.get(label, 0.0) + t1 - t0
    return steps


def kaniko_setup(api: Any, kubeconfig: Path) -> dict[str, Any]:
    """A user as the hub makes one (its own code and installed settings), the claim, a notebook SA token."""
    import yaml
    from kubernetes_asyncio import config as aconfig

    from hub_config.namespaces import ensure_user_namespace, namespace_name
    from hub_config.settings import HubSettings

    core = kc.CoreV1Api(api)
    raw = core.read_namespaced_secret(HUB_SECRET, PLATFORM_NAMESPACE).data["settings.yaml"]
    settings = HubSettings(**yaml.safe_load(base64.b64decode(raw)))
    username = f"bench-kaniko-{secrets.token_hex(3)}"
    ns = namespace_name(username, settings.namespace_prefix)

    async def provision() -> None:
        aapi = await aconfig.new_client_from_config(config_file=str(kubeconfig))
        try:
            await ensure_user_namespace(aapi, username, ns, settings)
        finally:
            await aapi.close()

    asyncio.run(provision())
    core.patch_namespace(ns, {"metadata": {"labels": {"notebook-platform.io/test": "true"}}})
    st = settings.storage
    core.create_namespaced_persistent_volume_claim(ns, {
        "metadata": {"name": st.pvc_name, "labels": {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_COMPONENT: "bench"}},
        "spec": {"accessModes": list(st.access_modes), "storageClassName": st.storage_class,
                 "resources": {"requests": {"storage": st.capacity}}}})
    sa = settings.notebook_service_account
    token = core.create_namespaced_service_account_token(sa, ns, {"spec": {"expirationSeconds": 7200}}).status.token
    url = None
    for sl in kc.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
            PLATFORM_NAMESPACE, label_selector=f"kubernetes.io/service-name={BUILDER_SERVICE}").items:
        port = next(p.port for p in sl.ports or [] if p.name == "http")
        url = url or next((f"http://{e.addresses[0]}:{port}" for e in sl.endpoints or []
                           if e.conditions and e.conditions.ready), None)
    if not url:
        raise SystemExit(f"no ready builder behind {PLATFORM_NAMESPACE}/{BUILDER_SERVICE}: is the platform up?")
    suite = subprocess.run(["bash", "-c", f'. "{ROOT}/hack/versions.env"; echo "$DEBIAN_SUITE"'],
                           capture_output=True, text=True, check=True).stdout.strip()
    registry = settings.builder.registry or REG
    return {"ns": ns, "sa": sa, "pvc": st.pvc_name, "token": str(token), "url": url, "registry": registry,
            "base": f"{registry}/nbp/base:{suite}"}


def kaniko_write(api: Any, user: dict[str, Any], files: dict[str, str]) -> None:
    """Writes files into the folder `proj` of the workspace volume with a pod, as a notebook would."""
    core = kc.CoreV1Api(api)
    script = ["set -e", "mkdir -p /ws/proj"]
    script += [f"printf %s {base64.b64encode(v.encode()).decode()} | base64 -d > /ws/proj/{k}"
               for k, v in files.items()]
    name = f"context-{secrets.token_hex(3)}"
    core.create_namespaced_pod(user["ns"], {"metadata": {"name": name, "labels": {
        c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_COMPONENT: "bench"}}, "spec": {
        "restartPolicy": "Never", "serviceAccountName": user["sa"], "automountServiceAccountToken": False,
        "containers": [{"name": "write", "image": user["base"], "command": ["bash", "-c", "\n".join(script)],
                        "volumeMounts": [{"name": "ws", "mountPath": "/ws"}]}],
        "volumes": [{"name": "ws", "persistentVolumeClaim": {"claimName": user["pvc"]}}]}})
    deadline = time.monotonic() + 300
    while (phase := core.read_namespaced_pod(name, user["ns"]).status.phase) not in ("Succeeded", "Failed"):
        if time.monotonic() > deadline:
            raise SystemExit(f"pod {user['ns']}/{name} still {phase} after 300 s")
        time.sleep(0.5)
    core.delete_namespaced_pod(name, user["ns"], grace_period_seconds=0)
    if phase != "Succeeded":
        raise SystemExit(f"writing the build context failed (pod {user['ns']}/{name})")


def kaniko_build(user: dict[str, Any], destination: str) -> dict[str, Any]:
    """One build through the REST API, followed over SSE to `built`: seconds, digest, the log, steps."""
    from builder.client import BuilderClient, Identity

    client = BuilderClient(user["url"], Identity(user["token"], user["ns"]))
    events: list[tuple[float, dict[str, Any]]] = []
    t0 = time.monotonic()
    try:
        created, _ = client.create({"context": {"pvc": user["pvc"], "path": "proj"}, "destination": destination,
                                    "cache": True})
        name = created["metadata"]["name"]
        for _, data in client.events(name):
            if data is None:
                continue
            events.append((time.monotonic() - t0, data))
            if data.get("phase") in ("built", "failed"):
                break
    finally:
        client.http.close()
    total = time.monotonic() - t0
    last = events[-1][1] if events else {}
    log = "\n".join(str(d.get("message", "")) for _, d in events if d.get("phase") == "log")
    if last.get("phase") != "built":
        raise SystemExit(f"build {name} did not succeed: {last}\n{log[-3000:]}")
    return {"name": name, "seconds": total, "digest": last["digest"], "log": log,
            "hit": CACHE_HIT in log, "miss": CACHE_MISS in log, "steps": kaniko_steps(events, total)}


def kaniko_bench(kubeconfig: Path, rounds: int, workloads: list[str]) -> dict[str, Any]:
    api = kconfig.new_client_from_config(config_file=str(kubeconfig))
    user: dict[str, Any] = {}
    out: dict[str, Any] = {}
    try:
        user = kaniko_setup(api, kubeconfig)
        print(f"kaniko: namespace {user['ns']}, builder {user['url']}, base {user['base']}", flush=True)
        for wl in workloads:
            mib, gz = KANIKO_WORKLOADS[wl]
            dockerfile = KANIKO_DOCKERFILE.format(base=user["base"], mib=mib, rounds=gz)
            runs: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
            for r in range(rounds):
                repo = f"{user['registry']}/{user['ns']}/{wl}-{r}"  # fresh repository, fresh cache
                for kind, tag in (("cold", "v1"), ("warm", "v2")):
                    kaniko_write(api, user, {"Dockerfile": dockerfile, "stamp.txt": f"{kind} {secrets.token_hex(8)}\n"})
                    b = kaniko_build(user, f"{repo}:{tag}")
                    expected = (False, True) if kind == "cold" else (True, False)
                    if (b["hit"], b["miss"]) != expected:
                        raise SystemExit(f"{wl} round {r} {kind}: cache hit={b['hit']} miss={b['miss']}, "
                                         f"expected hit={expected[0]}\n{b['log'][-3000:]}")
                    runs[kind].append(b)
                    steps = ", ".join(f"{k} {v:.1f}" for k, v in b["steps"].items())
                    print(f"  {wl} round {r + 1} {kind}: {b['seconds']:.1f} s ({steps})", flush=True)
            res: dict[str, Any] = {"rounds": rounds, "layer_mib": mib, "gzip_rounds": gz}
            for kind, bs in runs.items():
                res[f"{kind}_s_p50"] = round(statistics.median(b["seconds"] for b in bs), 2)
                res[f"{kind}_s"] = [round(b["seconds"], 2) for b in bs]
                labels = list(dict.fromkeys(k for b in bs for k in b["steps"]))
                res[f"{kind}_steps_s_p50"] = {k: round(statistics.median(b["steps"].get(k, 0.0) for b in bs), 2)
                                              for k in labels}
            res["ratio_p50"] = round(res["cold_s_p50"] / res["warm_s_p50"], 2)
            out[wl] = res
    finally:
        if user.get("ns"):
            kc.CoreV1Api(api).delete_namespace(user["ns"], propagation_policy="Background")
        api.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--builds", type=int, default=1000, help="API section: builds to create (0 skips it)")
    p.add_argument("--list-rounds", type=int, default=30)
    p.add_argument("--pods", action="store_true",
                   help="let the Job controller create (and, on cancel, delete) a build pod for every build; by "
                        "default a ResourceQuota of 0 pods in the bench namespace keeps it from doing so, so the "
                        "figures are the API's and not the load of 1,000 Kaniko pods starting and stopping")
    p.add_argument("--modes", default="cache,live",
                   help="API section: with the watch cache ('cache', the default setting) and/or reading the "
                        "apiserver on every request ('live', the baseline); in this order, each in a new namespace")
    p.add_argument("--kaniko", action="store_true",
                   help="also measure real Kaniko builds (cold vs one layer changed) through the installed builder")
    p.add_argument("--kaniko-rounds", type=int, default=3)
    known = ", ".join(f"{k} ({m} MiB, {g} gzip rounds)" for k, (m, g) in KANIKO_WORKLOADS.items())
    p.add_argument("--kaniko-workloads", default="small,medium", help=f"comma-separated, of: {known}")
    p.add_argument("--kubeconfig", type=Path,
                   default=Path(os.environ.get("NBP_KUBECONFIG", ROOT / ".local" / "kubeconfig")))
    a = p.parse_args()
    out: dict[str, Any] = {"bench": "builder_api", "build_pods": a.pods}
    modes = [m for m in a.modes.split(",") if m]
    if set(modes) - {"cache", "live"}:
        raise SystemExit(f"unknown mode(s) in {a.modes!r}; known: cache, live")
    if a.builds > 0:
        for mode in modes:
            waited = wait_for_earlier_namespaces(a.kubeconfig)
            if waited:
                print(f"# waited {waited:.0f} s for earlier bench namespaces to be deleted", flush=True)
            res = asyncio.run(run(a.kubeconfig, a.builds, a.list_rounds, watch_cache=mode == "cache",
                                  pods=a.pods))
            out[mode] = res
            print(f"[{mode}] POST -> Job created: p50 {res['post_ms_p50']} ms, p99 {res['post_ms_p99']} ms "
                  f"(first 100: {res['post_first100_ms_p50']} ms, last 100: {res['post_last100_ms_p50']} ms)")
            print(f"[{mode}] baseline, the same Job created directly at the apiserver: p50 "
                  f"{res['apiserver_create_ms_p50']} ms, p99 {res['apiserver_create_ms_p99']} ms")
            print(f"[{mode}] GET list with {res['listed']} builds: p50 {res['list_ms_p50']} ms, "
                  f"p99 {res['list_ms_p99']} ms")
        if len(out.keys() & {"cache", "live"}) == 2:
            for fig in ("post_ms_p50", "post_ms_p99", "list_ms_p50"):
                out[f"live_over_cache_{fig}"] = round(out["live"][fig] / max(out["cache"][fig], 0.01), 2)
            print(f"live / cache: POST p50 {out['live_over_cache_post_ms_p50']}x, POST p99 "
                  f"{out['live_over_cache_post_ms_p99']}x, list p50 {out['live_over_cache_list_ms_p50']}x")
    if a.kaniko:
        workloads = [w for w in a.kaniko_workloads.split(",") if w]
        unknown = set(workloads) - set(KANIKO_WORKLOADS)
        if unknown:
            raise SystemExit(f"unknown workload(s) {sorted(unknown)}; known: {sorted(KANIKO_WORKLOADS)}")
        out["kaniko"] = kaniko_bench(a.kubeconfig, a.kaniko_rounds, workloads)
        for wl, res in out["kaniko"].items():
            print(f"Kaniko {wl} ({res['layer_mib']} MiB RUN layer, {res['gzip_rounds']} gzip rounds), "
                  f"{res['rounds']} rounds: cold p50 {res['cold_s_p50']} s, one layer changed p50 "
                  f"{res['warm_s_p50']} s, ratio {res['ratio_p50']} (target >= 3)")
            for kind in ("cold", "warm"):
                print(f"  {kind} steps p50: " + ", ".join(f"{k} {v} s" for k, v in res[f"{kind}_steps_s_p50"].items()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
