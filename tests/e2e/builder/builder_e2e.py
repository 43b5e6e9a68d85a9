"""What the builder e2e tests share: a user's namespace handle, writing a build context onto the workspace volume
with a pod, and one build through the REST API followed over SSE with the arrival time of every event.

Importable as `builder_e2e` from the tests in this folder (pytest puts the folder on sys.path).
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import yaml
from platform_e2e import ROOT, Platform
from support import unique_name, wait_for

from builder.client import BuilderClient, Identity
from hub_config.settings import HubSettings

MANAGED = {"app.kubernetes.io/managed-by": "notebook-platform", "app.kubernetes.io/component": "e2e-builder"}
WORKSPACE_MOUNT = "/ws"


@dataclass(frozen=True)
class BuilderUser:
    username: str
    namespace: str
    service_account: str
    pvc: str        # the workspace claim, named as the hub names it (the Role grants `get` on it alone)
    token: str      # the notebook service account's token (TokenRequest)
    url: str        # the builder API, http://<builder pod IP>:<port>

    def client(self, timeout: float = 30.0) -> BuilderClient:
        return BuilderClient(self.url, Identity(self.token, self.namespace), timeout=timeout)


def hub_settings(platform: Platform) -> HubSettings:
    """The installed hub's settings (its Secret's settings.yaml), so a test user is provisioned exactly as the
    hub provisions a real one."""
    raw = platform.kubectl("-n", "notebook-platform", "get", "secret", "notebook-platform-hub",
                           "-o", "jsonpath={.data.settings\\.yaml}").stdout
    return HubSettings(**yaml.safe_load(base64.b64decode(raw)))


def workspace_claim(settings: HubSettings) -> dict[str, Any]:
    """The user's workspace claim as the hub's settings describe it (ReadWriteMany, the RWX class)."""
    s = settings.storage
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": s.pvc_name, "labels": MANAGED},
        "spec": {"accessModes": list(s.access_modes), "storageClassName": s.storage_class,
                 "resources": {"requests": {"storage": s.capacity}}},
    }


def builder_endpoint(platform: Platform, namespace: str, service: str) -> str:
    """http://IP:PORT of a ready pod behind the builder's Service (EndpointSlices, as kube-proxy reads them)."""
    out = platform.kubectl("-n", namespace, "get", "endpointslices", "-l", f"kubernetes.io/service-name={service}",
                           "-o", "json").stdout
    for sl in json.loads(out)["items"]:
        port = next(p["port"] for p in sl.get("ports") or [] if p.get("name") == "http")
        for ep in sl.get("endpoints") or []:
            if ep.get("conditions", {}).get("ready"):
                return f"http://{ep['addresses'][0]}:{port}"
    raise AssertionError(f"no ready endpoint behind {namespace}/{service}")


def write_files(platform: Platform, user: BuilderUser, image: str, folder: str, files: dict[str, bytes | str],
                timeout: float = 180, links: dict[str, str] | None = None) -> None:
    """Writes `files` (and symbolic `links`: name -> target) into `folder` of the user's workspace volume with a
    pod, as a notebook would."""
    script = ["set -e", f"mkdir -p {shlex.quote(f'{WORKSPACE_MOUNT}/{folder}')}"]
    for name, target in (links or {}).items():
        script.append(f"ln -sfn {shlex.quote(target)} {shlex.quote(f'{WORKSPACE_MOUNT}/{folder}/{name}')}")
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        target = shlex.quote(f"{WORKSPACE_MOUNT}/{folder}/{name}")
        script.append(f"printf %s {base64.b64encode(data).decode()} | base64 -d > {target}")
    pod = unique_name("context")
    manifest = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod, "labels": MANAGED},
        "spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
            "serviceAccountName": user.service_account, "automountServiceAccountToken": False,
            "containers": [{"name": "write", "image": image, "imagePullPolicy": "IfNotPresent",
                            "command": ["bash", "-c", "\n".join(script)],
                            "volumeMounts": [{"name": "workspace", "mountPath": WORKSPACE_MOUNT}]}],
            "volumes": [{"name": "workspace", "persistentVolumeClaim": {"claimName": user.pvc}}],
        },
    }
    platform.kubectl("-n", user.namespace, "create", "-f", "-", input=json.dumps(manifest))
    try:
        assert run_to_end(platform, user.namespace, pod, timeout) == "Succeeded", \
            platform.kubectl("-n", user.namespace, "describe", "pod", pod, check=False).stdout
    finally:
        platform.kubectl("-n", user.namespace, "delete", "pod", pod, "--wait=false", check=False)


def run_to_end(platform: Platform, namespace: str, pod: str, timeout: float) -> str:
    def finished() -> str | None:
        phase = platform.kubectl("-n", namespace, "get", "pod", pod, "-o", "jsonpath={.status.phase}").stdout
        return phase if phase in ("Succeeded", "Failed") else None

    try:
        return str(wait_for(finished, timeout=timeout, interval=0.5, what=f"pod {namespace}/{pod} finished"))
    except AssertionError as e:
        described = platform.kubectl("-n", namespace, "describe", "pod", pod, check=False).stdout
        raise AssertionError(f"{e}\n{described[-3000:]}") from None


@dataclass
class BuildRun:
    """One build as the caller saw it: times in seconds from the POST, every SSE event with its arrival time."""

    name: str = ""
    digest: str = ""
    image: str = ""
    seconds: float = 0.0                                           # POST -> `built` event
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return [str(d.get("message", "")) for _, d in self.events if d.get("phase") == "log"]

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def phases(self) -> list[str]:
        seen: list[str] = []
        for _, d in self.events:
            p = str(d.get("phase"))
            if p != "log" and (not seen or seen[-1] != p):
                seen.append(p)
        return seen

    def first(self, needle: str) -> float | None:
        """Arrival time of the first log line containing `needle`."""
        return next((t for t, d in self.events if d.get("phase") == "log" and needle in str(d.get("message"))),
                    None)


def run_build(user: BuilderUser, body: dict[str, Any], timeout: float = 900) -> BuildRun:
    """POST a build and follow its SSE stream to `built`; fails with the log on `failed`."""
    client = user.client()
    run = BuildRun()
    t0 = time.monotonic()
    try:
        created, is_new = client.create(body)
        assert is_new, f"expected a new build, the API reused {created['metadata']['name']}"
        run.name = created["metadata"]["name"]
        last_id: str | None = None
        for _ in range(5):  # a stream that ends without a result is resumed with Last-Event-ID
            for event_id, data in client.events(run.name, last_id):
                if time.monotonic() - t0 > timeout:
                    raise AssertionError(f"build {run.name} not finished after {timeout} s:\n{run.log}")
                if data is None:
                    continue
                last_id = event_id or last_id
                run.events.append((time.monotonic() - t0, data))
                if data.get("phase") == "built":
                    run.seconds = time.monotonic() - t0
                    run.digest, run.image = str(data["digest"]), str(data.get("image") or "")
                    return run
                if data.get("phase") == "failed":
                    raise AssertionError(f"build {run.name} failed: {data.get('message')}\n{run.log}")
        raise AssertionError(f"the log stream of {run.name} kept ending without a result:\n{run.log}")
    finally:
        client.http.close()


def base_image(platform: Platform) -> str:
    """The base image hack/images.sh pushes: nbp/base:<DEBIAN_SUITE> (hack/versions.env)."""
    suite = subprocess.run(["bash", "-c", f'. "{ROOT}/hack/versions.env"; echo "$DEBIAN_SUITE"'],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert suite, "DEBIAN_SUITE is not set in hack/versions.env"
    return f"{platform.registry}/nbp/base:{suite}"
