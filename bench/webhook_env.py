"""The real-cluster side of `webhook_admission.py`: PodDefaults in bulk, the webhook as a process, cleanup.

REST helpers, certificates and the MutatingWebhookConfiguration come from the webhook's integration
harness (`tests/integration/webhook/webhook_it.py`), so the benchmark registers the webhook exactly as the
tests (and the chart) do. Everything created here carries `notebook-platform.io/test=true` and a
per-run token, and `Cluster.cleanup()` removes it (the caller runs it in `finally`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration" / "webhook"))

from webhook_it import Rest, certgen, free_port, stop  # noqa: E402

from webhook import constants as c  # noqa: E402

TEST_LABEL = "notebook-platform.io/test"
RUN_LABEL = "notebook-platform.io/webhook-bench"
WEBHOOK_SCRIPT = Path(sys.executable).parent / "notebook-platform-webhook"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def rss_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    out = {}
    for key in ("VmRSS", "VmHWM"):
        m = re.search(rf"^{key}:\s+(\d+) kB", status, re.M)
        out[key] = round(int(m.group(1)) / 1024, 1) if m else -1.0
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class WebhookProcess:
    proc: subprocess.Popen[bytes]
    port: int
    ca: certgen.Pair
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=f"https://127.0.0.1:{self.port}", verify=self.ssl_context(), timeout=10, **kw)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca.cert_pem.decode())

    def metric(self, name: str) -> float | None:
        with self.client() as client:
            text = client.get("/metrics").text
        m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return float(m.group(1)) if m else None


def start_webhook(workdir: Path, kubeconfig: Path, **env: str) -> WebhookProcess:
    """`notebook-platform-webhook` (one uvicorn worker, TLS) with WEBHOOK_* settings; waits for /readyz.

    Logs at INFO, one JSON line per admission, as deployed; stdout goes to a file.
    """
    ca = certgen.make_ca("nbp-webhook-bench-ca")
    cert, key = certgen.write(certgen.make_server(ca), workdir)
    port = free_port()
    log = workdir / "webhook.log"
    environ = {**os.environ, "WEBHOOK_HOST": "127.0.0.1", "WEBHOOK_PORT": str(port), "WEBHOOK_CERT_FILE": str(cert),
               "WEBHOOK_KEY_FILE": str(key), "WEBHOOK_KUBECONFIG": str(kubeconfig), "WEBHOOK_LOG_LEVEL": "INFO",
               **env}
    with log.open("wb") as out:
        proc = subprocess.Popen([str(WEBHOOK_SCRIPT)], env=environ, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    hook = WebhookProcess(proc, port, ca, log)
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"webhook exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError), hook.client() as client:
            if client.get("/readyz", timeout=2).status_code == 200:
                return hook
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"webhook not ready within 120s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def poddefault(name: str, ns: str, selector: dict[str, Any], i: int) -> dict[str, Any]:
    """A realistic PodDefault: env (plain and from a Secret), a volume and its mount, a toleration, an
    annotation."""
    return {"apiVersion": c.API_VERSION, "kind": c.KIND,
            "metadata": {"name": name, "namespace": ns, "labels": {TEST_LABEL: "true"}},
            "spec": {"selector": selector, "desc": f"bench {name}",
                     "env": [{"name": f"VAR_{i}", "value": "x"},
                             {"name": f"SECRET_{i}", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                     "volumes": [{"name": f"vol-{i}", "secret": {"secretName": f"secret-{i}"}}],
                     "volumeMounts": [{"name": f"vol-{i}", "mountPath": f"/mnt/{i}"}],
                     "tolerations": [{"key": f"k{i}", "operator": "Exists"}],
                     "annotations": {f"example.com/pd-{i}": "1"}}}


@dataclass
class Cluster:
    """Namespaces and PodDefaults of one benchmark run on the real apiserver."""

    kubeconfig: Path
    token: str
    namespaces: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from kubernetes import config

        self.api = config.new_client_from_config(config_file=str(self.kubeconfig))
        self.rest = Rest(self.api)

    def async_client(self) -> httpx.AsyncClient:
        cfg = self.api.configuration
        tls = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if cfg.cert_file:
            tls.load_cert_chain(cfg.cert_file, cfg.key_file)
        return httpx.AsyncClient(base_url=cfg.host, verify=tls, timeout=60,
                                 limits=httpx.Limits(max_connections=16, max_keepalive_connections=16))

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        self.namespaces.append(name)  # recorded first, so a half-made one is cleaned up too
        self.rest.ok("POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": {
            TEST_LABEL: "true", RUN_LABEL: self.token, **(labels or {})}}})
        return name

    def wait_for_service_account(self, ns: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.rest.call("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no default service account in {ns}")
            time.sleep(0.2)

    def create_poddefaults(self, objs: Iterable[dict[str, Any]], concurrency: int = 12) -> float:
        """Creates PodDefaults with a few requests in flight; returns the seconds it took."""
        async def run() -> None:
            queue = list(objs)
            async with self.async_client() as client:
                async def worker() -> None:
                    while queue:
                        obj = queue.pop()
                        ns = obj["metadata"]["namespace"]
                        for attempt in range(5):
                            resp = await client.post(self.rest.poddefaults(ns), json=obj)
                            if resp.status_code < 300 or resp.status_code == 409:
                                break
                            if (resp.status_code != 429 and resp.status_code < 500) or attempt == 4:
                                raise RuntimeError(f"create {ns}/{obj['metadata']['name']}: {resp.status_code} "
                                                   f"{resp.text[:300]}")
                            await asyncio.sleep(0.5 * (attempt + 1))
                await asyncio.gather(*(worker() for _ in range(concurrency)))

        start = time.perf_counter()
        asyncio.run(run())
        return time.perf_counter() - start

    def count_poddefaults(self) -> int:
        """This run's PodDefaults still in the cluster."""
        n = 0
        for ns in self.namespaces:
            status, data = self.rest.call("GET", self.rest.poddefaults(ns), labelSelector=f"{TEST_LABEL}=true")
            if status == 200:
                n += len(data.get("items") or [])
        return n

    def cleanup(self) -> None:
        """Deletes the webhook registrations, every PodDefault and namespace of this run. Never raises."""
        for name in self.hooks:
            with contextlib.suppress(Exception):
                self.rest.call("DELETE", f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}")

        async def run() -> None:
            async with self.async_client() as client:
                sem = asyncio.Semaphore(8)

                async def one(ns: str) -> None:
                    async with sem:
                        with contextlib.suppress(httpx.HTTPError):
                            await client.delete(self.rest.poddefaults(ns),
                                                params={"labelSelector": f"{TEST_LABEL}=true"})
                            await client.delete(f"/api/v1/namespaces/{ns}")
                await asyncio.gather(*(one(ns) for ns in self.namespaces))

        with contextlib.suppress(Exception):
            asyncio.run(run())
