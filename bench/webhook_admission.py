"""PodDefault webhook benchmark: the pure core, the HTTP handler, and pod creation through the apiserver.

    .venv/bin/python bench/webhook_admission.py [--requests 2000] [--poddefaults 1000] [--no-cluster]

1. core: `mutate` on a notebook pod, with the cache holding `--poddefaults` PodDefaults spread over 100
   namespaces (10 in the pod's namespace, 3 of them matching);
2. handler: POST /mutate in-process (ASGI, no TLS): parse, admit, JSON Patch, response;
3. cluster (skipped, null, when `.local/kubeconfig` is not reachable): the webhook as a process over TLS,
   registered like the chart does; server-side dry-run pod creates timed in a namespace the webhook serves
   and in one it does not (the difference is what the webhook adds to every pod creation), and how long a
   PodDefault edit takes to show in the next admission.

Prints one line per figure; the last line is one JSON object with all of them. Objects it creates carry
`notebook-platform.io/test=true` and are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webhook import constants as c  # noqa: E402
from webhook.app import create_app  # noqa: E402
from webhook.cache import PodDefaultCache  # noqa: E402
from webhook.metrics import Metrics  # noqa: E402
from webhook.mutate import mutate  # noqa: E402
from webhook.settings import Settings  # noqa: E402

NS = "bench-team"
TEST_LABEL = "notebook-platform.io/test"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def summary(name: str, seconds: list[float], unit: float = 1e3, suffix: str = "ms") -> dict[str, float]:
    out = {"p50": pct(seconds, 50) * unit, "p95": pct(seconds, 95) * unit, "p99": pct(seconds, 99) * unit,
           "mean": statistics.fmean(seconds) * unit}
    print(f"{name}: p50 {out['p50']:.3f} {suffix}, p95 {out['p95']:.3f} {suffix}, p99 {out['p99']:.3f} {suffix} "
          f"(n={len(seconds)})")
    return {k: round(v, 4) for k, v in out.items()}


def poddefault(name: str, ns: str, selector: dict[str, Any], i: int) -> dict[str, Any]:
    return {"apiVersion": c.API_VERSION, "kind": c.KIND,
            "metadata": {"name": name, "namespace": ns, "resourceVersion": str(100 + i)},
            "spec": {"selector": selector, "desc": f"bench {name}",
                     "env": [{"name": f"VAR_{i}", "value": "x"},
                             {"name": f"SECRET_{i}", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                     "volumes": [{"name": f"vol-{i}", "secret": {"secretName": f"secret-{i}"}}],
                     "volumeMounts": [{"name": f"vol-{i}", "mountPath": f"/mnt/{i}"}],
                     "tolerations": [{"key": f"k{i}", "operator": "Exists"}],
                     "annotations": {f"example.com/pd-{i}": "1"}}}


def notebook_pod(ns: str | None = NS) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "jupyter-alice", "labels": {f"cfg-{i}": "true" for i in range(3)}}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {
        "serviceAccountName": "default",
        "containers": [{"name": "notebook", "image": "registry.local/notebook:1", "ports": [{"containerPort": 8888}],
                        "env": [{"name": "JUPYTERHUB_USER", "value": "alice"}],
                        "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan"}],
                        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}],
        "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "home-alice"}}]}}


def filled_cache(total: int) -> PodDefaultCache:
    items = []
    for i in range(total):
        ns = NS if i < 10 else f"ns-{i % 100}"
        items.append(poddefault(f"cfg-{i}", ns, {"matchLabels": {f"cfg-{i}": "true"}}, i))
    cache = PodDefaultCache()
    cache.replace(items, "1")
    return cache


def bench_core(cache: PodDefaultCache, n: int) -> dict[str, Any]:
    pod = notebook_pod()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        result = mutate(pod, cache.for_namespace(NS))
        times.append(time.perf_counter() - start)
    assert len(result.applied) == 3
    return summary("core mutate (3 of 10 PodDefaults apply)", times, 1e6, "us")


async def bench_handler(cache: PodDefaultCache, n: int) -> dict[str, Any]:
    app = create_app(Settings(), cache, Metrics())
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": NS, "operation": "CREATE",
        "object": notebook_pod(None), "dryRun": False}}
    content = json.dumps(body).encode()
    times = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://webhook") as client:
        for _ in range(n):
            start = time.perf_counter()
            resp = await client.post("/mutate", content=content, headers={"content-type": "application/json"})
            times.append(time.perf_counter() - start)
            assert resp.json()["response"]["patchType"] == "JSONPatch"
    out = summary("handler POST /mutate in-process", times)
    out["requests_per_second"] = round(n / sum(times), 1)
    print(f"handler throughput: {out['requests_per_second']} requests/s (one client, sequential)")
    return out


# --- through the apiserver ---------------------------------------------------------------------------------


class Rest:
    def __init__(self, kubeconfig: Path) -> None:
        from kubernetes import config

        cfg = config.new_client_from_config(config_file=str(kubeconfig)).configuration
        tls = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if cfg.cert_file:
            tls.load_cert_chain(cfg.cert_file, cfg.key_file)
        self.http = httpx.Client(base_url=cfg.host, verify=tls, timeout=30)

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        resp = self.http.request(method, path, json=body, params=params or None)
        return resp.status_code, resp.json() if resp.content else None


def make_certs(workdir: Path) -> tuple[Path, Path, bytes]:
    """A throwaway CA and serving certificate for 127.0.0.1, with the openssl CLI."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=workdir, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
        "-subj", "/CN=bench-ca", "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=webhook",
        "-keyout", "tls.key", "-out", "tls.csr")
    (workdir / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
        "-extfile", "ext.cnf", "-out", "tls.crt")
    return workdir / "tls.crt", workdir / "tls.key", (workdir / "ca.crt").read_bytes()


@contextlib.contextmanager
def webhook_process(kubeconfig: Path, workdir: Path) -> Iterator[tuple[int, bytes]]:
    cert, key, ca = make_certs(workdir)
    with contextlib.closing(__import__("socket").socket()) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WEBHOOK_HOST": "127.0.0.1", "WEBHOOK_PORT": str(port), "WEBHOOK_CERT_FILE": str(cert),
           "WEBHOOK_KEY_FILE": str(key), "WEBHOOK_KUBECONFIG": str(kubeconfig), "WEBHOOK_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "webhook.app"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ctx = ssl.create_default_context(cadata=ca.decode())
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"https://127.0.0.1:{port}/readyz", verify=ctx, timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise SystemExit("webhook did not become ready")
        yield port, ca
    finally:
        proc.terminate()
        proc.wait(10)


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench_cluster(kubeconfig: Path, n: int) -> dict[str, Any]:
    rest = Rest(kubeconfig)
    token = secrets.token_hex(4)
    on, off = f"bench-wh-{token}", f"bench-nowh-{token}"
    select = {c.NAMESPACE_LABEL: c.NAMESPACE_LABEL_VALUE, "notebook-platform.io/webhook-bench": token}
    hook_name = f"nbp-bench-poddefaults-{token}"
    hooks = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
    with tempfile.TemporaryDirectory() as tmp, webhook_process(kubeconfig, Path(tmp)) as (port, ca):
        try:
            for ns, labels in ((on, select), (off, {})):
                rest.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns, "labels": {TEST_LABEL: "true",
                                                                                              **labels}}})
            for i in range(10):
                rest.call("POST", f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{on}/{c.PLURAL}",
                          {k: v for k, v in poddefault(f"cfg-{i}", on, {"matchLabels": {f"cfg-{i}": "true"}},
                                                       i).items()} | {"metadata": {"name": f"cfg-{i}"}})
            rest.call("POST", hooks, {
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": hook_name, "labels": {TEST_LABEL: "true"}},
                "webhooks": [{"name": "poddefaults.notebook-platform.io", "admissionReviewVersions": ["v1"],
                              "clientConfig": {"url": f"https://127.0.0.1:{port}/mutate",
                                               "caBundle": base64.b64encode(ca).decode()},
                              "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                         "resources": ["pods"]}],
                              "namespaceSelector": {"matchLabels": select}, "failurePolicy": "Fail",
                              "sideEffects": "None", "timeoutSeconds": 5,
                              "reinvocationPolicy": "IfNeeded"}]})
            for ns in (on, off):  # the controller-manager creates the default service account
                while rest.call("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")[0] != 200:
                    time.sleep(0.2)

            def create(ns: str) -> dict[str, Any]:
                status, pod = rest.call("POST", f"/api/v1/namespaces/{ns}/pods", notebook_pod(None), dryRun="All")
                assert status == 201, pod
                return pod

            while len(create(on)["spec"]["volumes"]) < 4:  # until the apiserver calls the webhook
                time.sleep(0.2)
            timed(lambda: create(off), 20)  # warm up connections
            with_hook = timed(lambda: create(on), n)
            without = timed(lambda: create(off), n)
            out: dict[str, Any] = {"with_webhook": summary("dry-run pod create, webhook (3 PodDefaults)", with_hook),
                                   "without_webhook": summary("dry-run pod create, no webhook", without)}
            out["added_p50_ms"] = round(out["with_webhook"]["p50"] - out["without_webhook"]["p50"], 3)
            print(f"webhook adds {out['added_p50_ms']:.3f} ms at p50 to a pod create")

            path = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{on}/{c.PLURAL}/cfg-0"
            delays = []
            for round_ in range(20):
                _, pd = rest.call("GET", path)
                pd["spec"]["env"][0]["value"] = f"v{round_}"
                rest.call("PUT", path, pd)
                start = time.perf_counter()
                while not any(e.get("value") == f"v{round_}" for e in create(on)["spec"]["containers"][0]["env"]):
                    pass
                delays.append(time.perf_counter() - start)
            out["poddefault_edit_visible"] = summary("PodDefault edit visible at next admission", delays)
            return out
        finally:
            rest.call("DELETE", f"{hooks}/{hook_name}")
            for ns in (on, off):
                rest.call("DELETE", f"/api/v1/namespaces/{ns}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--poddefaults", type=int, default=1000)
    parser.add_argument("--pod-creates", type=int, default=200)
    parser.add_argument("--kubeconfig", type=Path, default=ROOT / ".local" / "kubeconfig")
    parser.add_argument("--no-cluster", action="store_true")
    args = parser.parse_args()

    cache = filled_cache(args.poddefaults)
    print(f"cache: {len(cache)} PodDefaults, {len(cache.for_namespace(NS))} in the pod's namespace")
    result: dict[str, Any] = {"bench": "webhook_admission", "poddefaults": len(cache),
                              "core_us": bench_core(cache, args.requests * 5),
                              "handler_ms": asyncio.run(bench_handler(cache, args.requests)), "cluster": None}
    if not args.no_cluster and args.kubeconfig.exists():
        try:
            result["cluster"] = bench_cluster(args.kubeconfig, args.pod_creates)
        except (httpx.HTTPError, OSError) as e:
            print(f"cluster figures skipped: {e}")
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
