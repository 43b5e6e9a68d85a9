"""PodDefault webhook benchmark: the pure core, the handler, and pod admission through the real apiserver.

    .venv/bin/python bench/webhook_admission.py [--pod-creates 400] [--rounds 8] [--seconds 10]
                                               [--cached 10000] [--no-cluster]

Layout (as in the issue): 1,000 PodDefaults, 100 of them in the pod's namespace, 5 of those matching the
notebook pod; the other 900 in nine more namespaces.

1. core: `mutate` on the notebook pod with the namespace's 100 PodDefaults (5 apply);
2. handler: POST /mutate in-process (ASGI, no TLS, no logging): parse, admit, JSON Patch, response;
3. cluster (skipped, null, with --no-cluster or when `.local/kubeconfig` is missing):
   - the 1,000 PodDefaults created in the real cluster; `notebook-platform-webhook` started as a process
     (one uvicorn worker, TLS, WEBHOOK_* settings, INFO logs to a file) and registered with a
     MutatingWebhookConfiguration carrying its caBundle, as the integration tests do;
   - server-side dry-run pod creates (`?dryRun=All`) through the apiserver, in rounds that alternate the
     webhook registered / not registered (ABBA order, each round starts once the apiserver is seen to call
     or not call the webhook); p50/p99 of each, the p50 ratio and the added ms. Within every round the same
     pod is also created in a namespace the webhook's namespaceSelector does not select (interleaved);
   - how long a PodDefault edit takes to show in the next admission;
   - direct POST /mutate to that one uvicorn worker over TLS with keep-alive: `wrk` (8 connections, then
     1) for `--seconds` each, or an httpx fallback without wrk; throughput, p50/p99, and admissions per
     CPU-second of the webhook process (its capacity on one core, whatever else the machine is doing);
   - VmRSS of the webhook process: at 1,000 PodDefaults, then with `--cached` PodDefaults (created in
     batches, the cache fed by its watch), and of a fresh process that lists them all at start.

Prints one line per figure; the last line is one JSON object with all of them. Everything it creates
carries `notebook-platform.io/test=true` and is deleted at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from webhook_env import (  # noqa: E402
    Cluster,
    WebhookProcess,
    cpu_seconds,
    loadavg,
    poddefault,
    rss_mib,
    start_webhook,
)
from webhook_it import registered, stop, webhook_configuration  # noqa: E402

from webhook import constants as c  # noqa: E402
from webhook.app import create_app  # noqa: E402
from webhook.cache import PodDefaultCache  # noqa: E402
from webhook.metrics import Metrics  # noqa: E402
from webhook.mutate import mutate  # noqa: E402
from webhook.settings import Settings  # noqa: E402

NS = "bench-team"
IN_NAMESPACE, MATCHING, TOTAL, OTHER_NAMESPACES = 100, 5, 1000, 9
TARGETS = {"added_p99_ms": 2.0, "ratio_p50": 1.10, "admissions_per_second": 1000, "rss_mib": 80}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def summary(name: str, seconds: list[float], unit: float = 1e3, suffix: str = "ms") -> dict[str, float]:
    out = {"p50": pct(seconds, 50) * unit, "p99": pct(seconds, 99) * unit, "mean": statistics.fmean(seconds) * unit,
           "n": len(seconds)}
    print(f"{name}: p50 {out['p50']:.3f} {suffix}, p99 {out['p99']:.3f} {suffix} (n={len(seconds)}, "
          f"load {loadavg()})")
    return {k: round(v, 4) for k, v in out.items()}


def layout(ns: str, others: list[str]) -> list[dict[str, Any]]:
    """The issue's 1,000 PodDefaults: 100 in `ns` (cfg-0..4 select the notebook pod), 900 over `others`."""
    objs = [poddefault(f"cfg-{i}", ns, {"matchLabels": {f"cfg-{i}": "true"}}, i) for i in range(IN_NAMESPACE)]
    for i in range(IN_NAMESPACE, TOTAL):
        objs.append(poddefault(f"cfg-{i}", others[i % len(others)], {"matchLabels": {f"cfg-{i}": "true"}}, i))
    return objs


def notebook_pod(ns: str | None = NS) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "jupyter-alice", "labels": {f"cfg-{i}": "true" for i in range(MATCHING)}}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {
        "serviceAccountName": "default",
        "containers": [{"name": "notebook", "image": "registry.local/notebook:1", "ports": [{"containerPort": 8888}],
                        "env": [{"name": "JUPYTERHUB_USER", "value": "alice"}],
                        "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan"}],
                        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}],
        "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "home-alice"}}]}}


def review(pod: dict[str, Any], ns: str) -> dict[str, Any]:
    """The AdmissionReview the apiserver sends for a dry-run pod create."""
    gvk = {"group": "", "version": "v1", "kind": "Pod"}
    gvr = {"group": "", "version": "v1", "resource": "pods"}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "0f6c3c1e-6a6e-4d5c-9d7e-000000000001", "kind": gvk, "resource": gvr, "requestKind": gvk,
        "requestResource": gvr, "name": pod["metadata"].get("name"), "namespace": ns, "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:hub:hub", "groups": ["system:serviceaccounts",
                                                                            "system:authenticated"]},
        "object": pod, "oldObject": None, "dryRun": True,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "dryRun": ["All"]}}}


# --- in process --------------------------------------------------------------------------------------------


def filled_cache() -> PodDefaultCache:
    objs = layout(NS, [f"ns-{k}" for k in range(OTHER_NAMESPACES)])
    for i, obj in enumerate(objs):
        obj["metadata"]["resourceVersion"] = str(100 + i)
    cache = PodDefaultCache()
    cache.replace(objs, "1")
    return cache


def bench_core(cache: PodDefaultCache, n: int) -> dict[str, Any]:
    pod = notebook_pod()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        result = mutate(pod, cache.for_namespace(NS))
        times.append(time.perf_counter() - start)
    assert len(result.applied) == MATCHING, result.applied
    return summary(f"core mutate ({MATCHING} of {IN_NAMESPACE} PodDefaults apply)", times, 1e6, "us")


async def bench_handler(cache: PodDefaultCache, n: int) -> dict[str, Any]:
    app = create_app(Settings(), cache, Metrics())  # type: ignore[call-arg]  # env-only settings
    content = json.dumps(review(notebook_pod(None), NS)).encode()
    times = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://webhook") as client:
        for _ in range(n):
            start = time.perf_counter()
            resp = await client.post("/mutate", content=content, headers={"content-type": "application/json"})
            times.append(time.perf_counter() - start)
            assert resp.json()["response"]["patchType"] == "JSONPatch"
    out = summary("handler POST /mutate in-process (ASGI)", times)
    out["requests_per_second"] = round(n / sum(times), 1)
    print(f"handler throughput in-process: {out['requests_per_second']} requests/s (one client, sequential)")
    return out


# --- direct /mutate over TLS -------------------------------------------------------------------------------

WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("{body}", "rb")); wrk.body = f:read("*a"); f:close()
"""


def _wrk_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def run_wrk(hook: WebhookProcess, body: Path, connections: int, seconds: int) -> dict[str, Any]:
    script = body.with_suffix(".lua")
    script.write_text(WRK_SCRIPT.format(body=body))
    cpu0 = cpu_seconds(hook.pid)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s",
                          "-s", str(script), f"https://127.0.0.1:{hook.port}/mutate"],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    cpu = cpu_seconds(hook.pid) - cpu0
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    return {"requests": done, "per_second": round(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), 1),  # type: ignore[union-attr]
            "p50_ms": round(_wrk_ms(lat["50"]), 3), "p99_ms": round(_wrk_ms(lat["99"]), 3),
            "per_cpu_second": round(done / cpu, 1) if cpu else None, "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else None, "tool": "wrk"}


def run_httpx(hook: WebhookProcess, content: bytes, connections: int, seconds: int) -> dict[str, Any]:
    async def go() -> tuple[list[float], int]:
        times: list[float] = []
        bad = 0
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{hook.port}", verify=hook.ssl_context(),
                                     limits=limits, timeout=10) as client:
            async def worker() -> None:
                nonlocal bad
                while time.perf_counter() < deadline:
                    start = time.perf_counter()
                    resp = await client.post("/mutate", content=content,
                                             headers={"content-type": "application/json"})
                    times.append(time.perf_counter() - start)
                    bad += resp.status_code != 200
            await asyncio.gather(*(worker() for _ in range(connections)))
        return times, bad

    cpu0, start = cpu_seconds(hook.pid), time.perf_counter()
    times, bad = asyncio.run(go())
    wall, cpu = time.perf_counter() - start, cpu_seconds(hook.pid) - cpu0
    return {"requests": len(times), "per_second": round(len(times) / wall, 1), "p50_ms": round(pct(times, 50) * 1e3, 3),
            "p99_ms": round(pct(times, 99) * 1e3, 3), "per_cpu_second": round(len(times) / cpu, 1) if cpu else None,
            "non_2xx": bad, "socket_errors": None, "tool": "httpx (client shares the CPU)"}


def bench_direct(hook: WebhookProcess, body: dict[str, Any], seconds: int, workdir: Path) -> dict[str, Any]:
    content = json.dumps(body, separators=(",", ":")).encode()
    with hook.client() as client:  # the same body, checked once: a JSON Patch comes back
        resp = client.post("/mutate", content=content, headers={"content-type": "application/json"})
        assert resp.status_code == 200 and resp.json()["response"].get("patchType") == "JSONPatch", resp.text[:500]
    path = workdir / "review.json"
    path.write_bytes(content)
    out = {}
    for conns in (8, 1):
        r = (run_wrk(hook, path, conns, seconds) if shutil.which("wrk")
             else run_httpx(hook, content, conns, seconds))
        out[f"c{conns}"] = r
        print(f"direct POST /mutate over TLS, {conns} keep-alive connection(s), {r['tool']}: {r['per_second']} "
              f"admissions/s, {r['per_cpu_second']} per webhook CPU-second, p50 {r['p50_ms']} ms, p99 "
              f"{r['p99_ms']} ms ({r['requests']} requests, {r['non_2xx']} non-2xx, load {loadavg()})")
    return out


# --- through the apiserver ---------------------------------------------------------------------------------


def bench_apiserver(cl: Cluster, hook: WebhookProcess, on: str, off: str, creates: int, rounds: int,
                    hook_config: dict[str, Any]) -> dict[str, Any]:
    rest = cl.rest
    content = json.dumps(notebook_pod(None)).encode()

    def post(ns: str) -> httpx.Response:
        resp = rest.http.post(f"/api/v1/namespaces/{ns}/pods", content=content, params={"dryRun": "All"},
                              headers={"content-type": "application/json"})
        assert resp.status_code == 201, resp.text[:500]
        return resp

    def create(ns: str) -> dict[str, Any]:
        return post(ns).json()  # type: ignore[no-any-return]

    def mutated(pod: dict[str, Any]) -> bool:
        return any(e.get("name") == "VAR_0" for e in pod["spec"]["containers"][0].get("env") or [])

    def until(want: bool) -> None:
        deadline = time.monotonic() + 60
        while mutated(create(on)) != want:
            if time.monotonic() > deadline:
                raise RuntimeError(f"apiserver did not {'start' if want else 'stop'} calling the webhook; "
                                   f"webhook log:\n{hook.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def timed(fn: Callable[[], Any]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    series: dict[str, list[float]] = {"with": [], "without": [], "unselected_with": [], "unselected_without": []}
    per_round = max(1, creates // rounds)
    loads = []
    for r in range(rounds):
        for state in ((True, False) if r % 2 == 0 else (False, True)):
            ctx = registered(rest, hook_config) if state else contextlib.nullcontext()
            with ctx:
                until(state)
                for _ in range(5):  # warm connections (the apiserver's webhook client is rebuilt)
                    create(on), create(off)
                for _ in range(per_round):
                    # timed to the response's last byte, not its parsing (the mutated pod is larger)
                    series["with" if state else "without"].append(timed(lambda: post(on)))
                    series["unselected_with" if state else "unselected_without"].append(timed(lambda: post(off)))
        loads.append(loadavg())
    out: dict[str, Any] = {
        "with_webhook": summary(f"dry-run pod create, webhook registered ({MATCHING} PodDefaults apply)",
                                series["with"]),
        "without_webhook": summary("dry-run pod create, webhook not registered", series["without"]),
        "unselected_ns_with_webhook": summary("dry-run pod create, webhook registered, namespace not selected",
                                              series["unselected_with"]),
    }
    w, wo = out["with_webhook"], out["without_webhook"]
    out["ratio_p50"] = round(w["p50"] / wo["p50"], 3)
    out["added_p50_ms"] = round(w["p50"] - wo["p50"], 3)
    out["added_p99_ms"] = round(w["p99"] - wo["p99"], 3)
    out["rounds"], out["loadavg_per_round"] = rounds, loads
    print(f"webhook adds {out['added_p50_ms']:.3f} ms at p50, {out['added_p99_ms']:.3f} ms at p99; "
          f"p50 ratio {out['ratio_p50']:.3f}")

    with registered(rest, hook_config):  # PodDefault edit -> next admission that carries it
        until(True)
        path = f"{rest.poddefaults(on)}/cfg-0"
        delays = []
        for round_ in range(20):
            pd = rest.ok("GET", path)
            pd["spec"]["env"][0]["value"] = f"v{round_}"
            rest.ok("PUT", path, pd)
            start = time.perf_counter()
            deadline = start + 30
            while not any(e.get("value") == f"v{round_}" for e in create(on)["spec"]["containers"][0]["env"]):
                if time.perf_counter() > deadline:
                    raise RuntimeError("PodDefault edit never reached the webhook")
            delays.append(time.perf_counter() - start)
        out["poddefault_edit_visible"] = summary("PodDefault edit visible at next admission", delays)
        return out


def handler_times(log: Path, offset: int, ns: str) -> dict[str, float] | None:
    """The webhook's own time per admission (its `duration_ms` log field: body read to response built,
    without HTTP/TLS) for the apiserver's calls in `ns`: the part of the added latency that is ours."""
    with log.open("rb") as f:
        f.seek(offset)
        times = []
        for line in f:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("event") == "admission" and entry.get("namespace") == ns:
                    times.append(entry["duration_ms"] / 1e3)
    return summary("webhook handler time per apiserver call (its log)", times) if times else None


def wait_cached(hook: WebhookProcess, want: int, timeout: float = 300) -> tuple[int, float]:
    start = deadline = time.monotonic()
    deadline += timeout
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = int(hook.metric("poddefault_webhook_cache_poddefaults") or 0)
        if n != last:
            last, stable_since = n, time.monotonic()
        if n >= want and time.monotonic() - stable_since > 2:
            return n, time.monotonic() - start
        time.sleep(0.5)
    raise RuntimeError(f"webhook cache holds {last} PodDefaults, expected {want}")


def bench_cluster(args: argparse.Namespace, cl: Cluster, workdir: Path, procs: list[WebhookProcess]) -> dict[str, Any]:
    rest, token = cl.rest, cl.token
    status, _ = rest.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{c.CRD_NAME}")
    if status != 200:
        raise RuntimeError("PodDefault CRD missing: kubectl apply -f charts/notebook-platform/crds/poddefaults.yaml")
    selected = {c.NAMESPACE_LABEL: c.NAMESPACE_LABEL_VALUE, "notebook-platform.io/webhook-bench-selected": token}
    on = cl.namespace(f"bench-wh-{token}", selected)
    off = cl.namespace(f"bench-nowh-{token}")
    others = [cl.namespace(f"bench-pd-{token}-{k}", {c.NAMESPACE_LABEL: c.NAMESPACE_LABEL_VALUE})
              for k in range(OTHER_NAMESPACES)]
    took = cl.create_poddefaults(layout(on, others))
    print(f"created {TOTAL} PodDefaults ({IN_NAMESPACE} in {on}, {MATCHING} matching) in {took:.1f} s")

    hook = start_webhook(workdir, cl.kubeconfig)
    procs.append(hook)
    out: dict[str, Any] = {"webhook_pid": hook.pid}
    cached, _ = wait_cached(hook, TOTAL)
    out["rss_start_mib"] = rss_mib(hook.pid)
    print(f"webhook RSS at start, {cached} PodDefaults cached: {out['rss_start_mib']['VmRSS']} MiB")

    for ns in (on, off):
        cl.wait_for_service_account(ns)
    hook_config = webhook_configuration(f"nbp-bench-poddefaults-{token}", hook.port, hook.ca.cert_pem, selected)
    cl.hooks.append(hook_config["metadata"]["name"])
    offset = hook.log.stat().st_size
    out["apiserver"] = bench_apiserver(cl, hook, on, off, args.pod_creates, args.rounds, hook_config)
    out["apiserver"]["webhook_handler"] = handler_times(hook.log, offset, on)

    # What the apiserver sends: the pod after its defaulting and built-in admission (a dry run without us).
    pod = rest.ok("POST", f"/api/v1/namespaces/{on}/pods", notebook_pod(None), dryRun="All")
    for key in ("uid", "creationTimestamp", "resourceVersion", "managedFields"):
        pod["metadata"].pop(key, None)
    pod.pop("status", None)
    out["direct"] = bench_direct(hook, review(pod, on), args.seconds, workdir)
    out["rss_after_load_mib"] = rss_mib(hook.pid)
    print(f"webhook RSS after the load runs, {cached} PodDefaults: {out['rss_after_load_mib']['VmRSS']} MiB "
          f"(peak {out['rss_after_load_mib']['VmHWM']} MiB)")

    extra = args.cached - TOTAL
    if extra > 0:
        first = OTHER_NAMESPACES
        spread = [cl.namespace(f"bench-pd-{token}-{k}") for k in range(first, first + max(1, extra // 100))]
        objs = [poddefault(f"big-{i}", spread[i % len(spread)], {"matchLabels": {f"big-{i}": "true"}}, i)
                for i in range(extra)]
        before = int(hook.metric("poddefault_webhook_cache_poddefaults") or 0)
        took = cl.create_poddefaults(objs)
        n, _waited = wait_cached(hook, before + extra)
        print(f"created {extra} more PodDefaults in {took:.1f} s; cache holds {n}")
        with hook.client() as client:  # a few admissions, so the figure is of a serving process
            for _ in range(50):
                client.post("/mutate", json=review(pod, on)).raise_for_status()
        out["cached"] = n
        out["rss_cached_watch_mib"] = rss_mib(hook.pid)
        print(f"webhook RSS with {n} PodDefaults cached (fed by the watch): "
              f"{out['rss_cached_watch_mib']['VmRSS']} MiB (peak {out['rss_cached_watch_mib']['VmHWM']} MiB)")
        fresh_dir = workdir / "fresh"
        fresh_dir.mkdir()
        fresh = start_webhook(fresh_dir, cl.kubeconfig)
        procs.append(fresh)
        n2, _ = wait_cached(fresh, n)
        with fresh.client() as client:
            for _ in range(50):
                client.post("/mutate", json=review(pod, on)).raise_for_status()
        out["rss_cached_list_mib"] = rss_mib(fresh.pid)
        print(f"webhook RSS with {n2} PodDefaults cached (fresh process, one list): "
              f"{out['rss_cached_list_mib']['VmRSS']} MiB (peak {out['rss_cached_list_mib']['VmHWM']} MiB)")
        stop(fresh.proc)
    return out


def verdicts(cluster: dict[str, Any] | None) -> dict[str, Any]:
    if not cluster:
        return {}
    api, direct = cluster["apiserver"], cluster["direct"]["c8"]
    rss = max(cluster.get(k, {}).get("VmRSS", 0) for k in ("rss_cached_watch_mib", "rss_cached_list_mib"))
    rate = direct["per_cpu_second"] or direct["per_second"]
    got = {"added_p99_ms": (api["added_p99_ms"], api["added_p99_ms"] <= TARGETS["added_p99_ms"]),
           "ratio_p50": (api["ratio_p50"], api["ratio_p50"] <= TARGETS["ratio_p50"]),
           "admissions_per_second": (rate, rate >= TARGETS["admissions_per_second"]),
           "rss_mib": (rss, 0 < rss <= TARGETS["rss_mib"])}
    for key, (value, ok) in got.items():
        print(f"target {key} {TARGETS[key]}: {value} -> {'met' if ok else 'MISSED'}")
    return {k: {"value": v, "target": TARGETS[k], "met": ok} for k, (v, ok) in got.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="in-process handler requests")
    parser.add_argument("--pod-creates", type=int, default=400, help="timed creates per series")
    parser.add_argument("--rounds", type=int, default=8, help="registered/unregistered alternations")
    parser.add_argument("--seconds", type=int, default=10, help="length of each direct /mutate load run")
    parser.add_argument("--cached", type=int, default=10000, help="PodDefaults in the cluster for the RSS figure")
    parser.add_argument("--kubeconfig", type=Path, default=ROOT / ".local" / "kubeconfig")
    parser.add_argument("--no-cluster", action="store_true")
    args = parser.parse_args()

    print(f"load average at start: {loadavg()}")
    cache = filled_cache()
    print(f"cache: {len(cache)} PodDefaults, {len(cache.for_namespace(NS))} in the pod's namespace")
    result: dict[str, Any] = {"bench": "webhook_admission", "poddefaults": len(cache), "loadavg_start": loadavg(),
                              "core_us": bench_core(cache, args.requests * 5),
                              "handler_ms": asyncio.run(bench_handler(cache, args.requests)), "cluster": None}
    if not args.no_cluster and args.kubeconfig.exists():
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cleans up like Ctrl-C
        cl = Cluster(args.kubeconfig, secrets.token_hex(4))
        procs: list[WebhookProcess] = []
        with tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp:
            try:
                result["cluster"] = bench_cluster(args, cl, Path(tmp), procs)
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the cleanup finish
                for p in procs:
                    stop(p.proc)
                cl.cleanup()
                print(f"cleanup: {len(cl.namespaces)} namespaces and the webhook registration deleted; "
                      f"{cl.count_poddefaults()} of this run's PodDefaults left (namespaces finish terminating "
                      "in the background)")
                signal.signal(signal.SIGINT, signal.default_int_handler)
    result["targets"] = verdicts(result["cluster"])
    result["loadavg_end"] = loadavg()
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
