"""Volume agents, seen from the builder: one small pod per workspace claim, started on the first build from
that claim, asked on every build whether the context resolves inside the volume (see `volume_agent.py`).

`render_agent_pod` is pure; `VolumeAgents` does the I/O: find the agent in the watch cache, start it if there
is none (or it has exited), wait for it to be Ready, ask it. An agent that cannot be had within
`volume_agent_wait_seconds` (a quota without room for it, a node without room, a network policy in the way) is
not a reason to refuse the build: the check is then skipped, the kubelet's subPath check still confines the
build, and a build that cannot start fails within seconds with the reason (phase.py).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time

import httpx

from . import constants as c
from .cache import Obj, Reflector
from .kube import Kube, KubeError
from .settings import Settings
from .validate import RequestRejected
from .volume_agent import RESOLVE_ROUTE, TOKEN_ENV, Verdict

log = logging.getLogger("builder.agents")
AGENT_MOUNT = "/volume"
AGENT_PORT = 8081
SILENT_SECONDS = 60.0


def agent_pod_name(claim: str) -> str:
    """One agent per claim, named by a hash (claim names may be 253 characters, pod names are DNS labels)."""
    return f"nbp-volume-agent-{hashlib.sha256(claim.encode()).hexdigest()[:16]}"


def agent_labels() -> dict[str, str]:
    return {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_COMPONENT: c.COMPONENT_VOLUME_AGENT}


def render_agent_pod(namespace: str, claim: str, token: str, settings: Settings) -> Obj:
    """The agent pod: the claim read-only, no API credentials, no privileges beyond reading every file (root
    with only DAC_OVERRIDE, which Pod Security baseline allows: workspace folders may be private to their
    owner), a read-only root file system, and the token from its own annotation."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": agent_pod_name(claim), "namespace": namespace, "labels": agent_labels(),
            "annotations": {c.ANNOTATION_AGENT_CLAIM: claim, c.ANNOTATION_AGENT_TOKEN: token},
        },
        "spec": {
            "restartPolicy": "Never",  # it exits when idle; the builder starts a new one when needed
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "agent",
                "image": settings.volume_agent_image,
                "imagePullPolicy": settings.volume_agent_image_pull_policy,
                "command": ["notebook-platform-volume-agent", f"--root={AGENT_MOUNT}", f"--port={AGENT_PORT}",
                            f"--idle-seconds={settings.volume_agent_idle_seconds:g}"],
                "env": [{"name": TOKEN_ENV, "valueFrom": {"fieldRef": {
                    "fieldPath": f"metadata.annotations['{c.ANNOTATION_AGENT_TOKEN}']"}}}],
                "ports": [{"name": "agent", "containerPort": AGENT_PORT}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": AGENT_PORT}, "periodSeconds": 1},
                "resources": {"requests": {"cpu": "10m", "memory": "48Mi"},
                              "limits": {"cpu": "200m", "memory": "128Mi"}},
                "volumeMounts": [{"name": "volume", "mountPath": AGENT_MOUNT, "readOnly": True}],
                "securityContext": {
                    "runAsUser": 0, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"], "add": ["DAC_OVERRIDE"]},
                },
            }],
            "volumes": [{"name": "volume", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
        },
    }


def agent_ready(pod: Obj | None) -> bool:
    if not pod or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    return bool(status.get("podIP")) and any(
        cond.get("type") == "Ready" and cond.get("status") == "True" for cond in status.get("conditions") or [])


def agent_gone(pod: Obj | None) -> bool:
    """An agent that will not answer again (exited when idle, failed, or being deleted)."""
    if pod is None:
        return True
    return bool((pod.get("metadata") or {}).get("deletionTimestamp")) or \
        (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class VolumeAgents:
    """Starts and asks the agents; `pods` is the watch cache of agent pods (all namespaces)."""

    def __init__(self, kube: Kube, pods: Reflector, settings: Settings, port: int = AGENT_PORT) -> None:
        self.kube, self.pods, self.settings, self.port = kube, pods, settings, port
        self.http = httpx.AsyncClient(timeout=settings.volume_agent_timeout_seconds, trust_env=False)
        # Claims whose agent did not answer (a network policy in the way?) or did not get Ready (no room for
        # it?): not asked again for a while, so the builds from them do not each wait for the timeout.
        self._silent: dict[tuple[str, str], float] = {}

    async def close(self) -> None:
        await self.http.aclose()

    async def check(self, namespace: str, claim: str, path: str, dockerfile: str) -> Verdict | None:
        """The agent's verdict, or None when no agent answered in time (the check is then skipped)."""
        if self._silent.get((namespace, claim), 0.0) > time.monotonic():
            return None
        pod = await self._ready_agent(namespace, claim)
        if pod is None:
            return None
        ip = pod["status"]["podIP"]
        token = (pod["metadata"].get("annotations") or {}).get(c.ANNOTATION_AGENT_TOKEN, "")
        try:
            r = await self.http.get(f"http://{ip}:{self.port}{RESOLVE_ROUTE}",
                                    params={"path": path, "dockerfile": dockerfile},
                                    headers={"Authorization": f"Bearer {token}"})
            r.raise_for_status()
            answer = r.json()
        except (httpx.HTTPError, ValueError) as e:
            log.warning("volume agent did not answer; context not checked",
                        extra={"namespace": namespace, "claim": claim, "error": f"{type(e).__name__}: {e}"})
            self._silent[(namespace, claim)] = time.monotonic() + SILENT_SECONDS
            return None
        self._silent.pop((namespace, claim), None)
        return Verdict(str(answer.get("field") or ""), str(answer.get("message") or ""))

    async def _ready_agent(self, namespace: str, claim: str) -> Obj | None:
        name = agent_pod_name(claim)
        pod = self.pods.get(namespace, name)  # not yet listed: None, then the create below says 409
        if agent_ready(pod):
            return pod
        if pod is not None and agent_gone(pod):
            await self.kube.delete_pod(namespace, name)
            await self.pods.wait_until(namespace, name, self.settings.volume_agent_wait_seconds, lambda p: p is None)
            pod = None
        if pod is None:
            if await self.kube.get_pvc(namespace, claim) is None:
                raise RequestRejected(400, "context.pvc",
                                      f"no PersistentVolumeClaim {claim!r} in namespace {namespace!r}")
            body = render_agent_pod(namespace, claim, secrets.token_urlsafe(32), self.settings)
            try:
                await self.kube.create_pod(namespace, body)
                log.info("volume agent started", extra={"namespace": namespace, "claim": claim, "pod": name})
            except KubeError as e:
                if e.status != 409:  # 409: another request (or replica) started it a moment ago
                    log.warning("could not start a volume agent; context not checked",
                                extra={"namespace": namespace, "claim": claim, "error": str(e)})
                    return None
        if not await self.pods.wait_until(namespace, name, self.settings.volume_agent_wait_seconds, agent_ready):
            log.warning("volume agent not ready in time; context not checked",
                        extra={"namespace": namespace, "claim": claim, "pod": name})
            self._silent[(namespace, claim)] = time.monotonic() + SILENT_SECONDS  # not every build waits
            return None
        return self.pods.get(namespace, name)
