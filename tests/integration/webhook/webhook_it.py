"""Helpers for the webhook's integration tests: plain REST against the apiserver, the webhook as a
subprocess over TLS, and its registration as a MutatingWebhookConfiguration.

Plain REST (httpx with the kubeconfig's client certificate) rather than typed clients: the tests send and
compare pods as the JSON the apiserver speaks, which is also what the webhook sees.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "webhook"))  # certgen, shared with the unit tests

import certgen  # noqa: E402

from webhook import constants as c  # noqa: E402

MODULE_LABEL = "notebook-platform.io/webhook-test"


class Rest:
    """The apiserver over HTTPS with the admin client certificate; JSON in, (status, JSON) out."""

    def __init__(self, kube_api: Any) -> None:
        import ssl

        cfg = kube_api.configuration
        tls = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if cfg.cert_file:
            tls.load_cert_chain(cfg.cert_file, cfg.key_file)
        headers = {"Authorization": cfg.api_key["authorization"]} if cfg.api_key.get("authorization") else {}
        self.http = httpx.Client(base_url=cfg.host, verify=tls, headers=headers, timeout=30)

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, dict[str, Any]]:
        resp = self.http.request(method, path, json=body, params=params or None)
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, {"raw": resp.text}

    def ok(self, method: str, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
        status, data = self.call(method, path, body, **params)
        assert status < 300, f"{method} {path}: {status} {data}"
        return data

    def create_pod(self, namespace: str, pod: dict[str, Any], dry_run: bool = True) -> tuple[int, dict[str, Any]]:
        params = {"dryRun": "All"} if dry_run else {}
        return self.call("POST", f"/api/v1/namespaces/{namespace}/pods", pod, **params)

    def poddefaults(self, namespace: str) -> str:
        return f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.PLURAL}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Webhook:
    """A webhook process serving https://127.0.0.1:<port>, registered for namespaces with `labels`."""

    port: int
    ca: certgen.Pair
    workdir: Path
    token: str
    config_name: str
    proc: subprocess.Popen[bytes]
    log: Path
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        import ssl

        ctx = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
        return httpx.Client(base_url=self.url, verify=ctx, timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_webhook(workdir: Path, kubeconfig: Path,
                  **env: str) -> tuple[subprocess.Popen[bytes], int, certgen.Pair, Path]:
    """Starts `python -m webhook.app` with a fresh CA and serving certificate; waits until /readyz is 200."""
    ca = certgen.make_ca("nbp-webhook-test-ca")
    cert, key = certgen.write(certgen.make_server(ca), workdir)
    port = free_port()
    log = workdir / "webhook.log"
    environ = {**os.environ, "WEBHOOK_HOST": "127.0.0.1", "WEBHOOK_PORT": str(port),
               "WEBHOOK_CERT_FILE": str(cert), "WEBHOOK_KEY_FILE": str(key), "WEBHOOK_KUBECONFIG": str(kubeconfig),
               "WEBHOOK_CERT_CHECK_INTERVAL": "0.5", "WEBHOOK_LOG_LEVEL": "INFO", **env}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "webhook.app"], env=environ, stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT)
    import ssl

    ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"webhook exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"https://127.0.0.1:{port}/readyz", verify=ctx, timeout=2).status_code == 200:
                return proc, port, ca, log
        if time.monotonic() > deadline:
            proc.terminate()
            raise AssertionError(f"webhook not ready within 60s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def webhook_configuration(name: str, port: int, ca_pem: bytes, selector_labels: dict[str, str]) -> dict[str, Any]:
    """The registration the chart makes, pointed at a local URL instead of a Service."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE,
                                              c.COMPONENT_LABEL: c.COMPONENT_VALUE,
                                              "notebook-platform.io/test": "true"}},
        "webhooks": [{
            "name": "poddefaults.notebook-platform.io",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": f"https://127.0.0.1:{port}/mutate",
                             "caBundle": base64.b64encode(ca_pem).decode()},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": selector_labels},
            "failurePolicy": "Fail",
            # As the chart: None. (Conflict Events, the only out-of-band write, are skipped on dry runs, so
            # NoneOnDryRun would be as true.)
            "sideEffects": "None",
            "timeoutSeconds": 5,
            "reinvocationPolicy": "IfNeeded",
            "matchPolicy": "Equivalent",
        }],
    }


@contextlib.contextmanager
def registered(rest: Rest, config: dict[str, Any]) -> Iterator[None]:
    path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
    rest.ok("POST", path, config)
    try:
        yield
    finally:
        rest.call("DELETE", f"{path}/{config['metadata']['name']}")


def make_pod(name: str = "nb", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "main", "image": "registry.local/notebook:1"}], **spec},
    }


def poddefault(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": c.API_VERSION, "kind": c.KIND, "metadata": {"name": name}, "spec": spec}


def main_env(pod: dict[str, Any]) -> dict[str, Any]:
    """The first container's env as name -> entry."""
    return {e["name"]: e for e in pod["spec"]["containers"][0].get("env") or []}
