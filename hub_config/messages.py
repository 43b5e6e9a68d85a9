"""What the user reads when a spawn goes wrong: Kubernetes errors and events -> plain sentences, pure.

The apiserver already knows why a pod is refused (quota, LimitRange, Pod Security, the PodDefault webhook's
conflict message) and the kubelet why it does not start (image pull, scheduling, mounts). We keep that text,
which is specific, and put one sentence in front of it that says what it means and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_WEBHOOK_DENIAL = re.compile(r'admission webhook "([^"]+)" denied the request:?\s*(.*)', re.S)
_PSA = re.compile(r'violates PodSecurity "([^"]+)":?\s*(.*)', re.S)
_QUOTA = re.compile(r"exceeded quota:\s*([^,]+),\s*(.*)", re.S)
# kube-scheduler: "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 Insufficient cpu."
_INSUFFICIENT = re.compile(r"Insufficient ([A-Za-z0-9./_-]+?)[.,]?(?=\s|$|,)")


class SpawnError(Exception):
    """A spawn failure with a message meant for the user (JupyterHub shows `jupyterhub_message`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.jupyterhub_message = message


def explain_api_error(status: int, reason: str, message: str) -> str:
    """One readable sentence (plus the apiserver's detail) for a refused pod create or dry run."""
    m = _WEBHOOK_DENIAL.search(message)
    if m:
        hook, detail = m.group(1), m.group(2).strip()
        if "poddefault" in hook.lower() or "poddefault" in detail.lower():
            return f"The chosen configurations cannot be combined: {detail}. Deselect one of them and start again."
        return f"The admission webhook {hook} refused the server: {detail}"
    m = _QUOTA.search(message)
    if m:
        return (f"Your namespace's quota ({m.group(1).strip()}) does not leave room for this server: "
                f"{m.group(2).strip()}. Pick a smaller size, or stop another server or build.")
    if "must specify" in message and "quota" in message.lower():
        return f"Your namespace's quota needs resource limits the server does not set: {message}"
    m = _PSA.search(message)
    if m:
        return (f"The server's pod breaks your namespace's Pod Security level ({m.group(1)}): "
                f"{m.group(2).strip()}. A configuration or profile asks for more privilege than allowed.")
    if re.search(r"(maximum|minimum) .* per (Container|Pod)", message):
        return f"The chosen size is outside your namespace's per-container limits: {message}"
    if "is being terminated" in message:
        return "Your namespace is being deleted right now; wait a minute and start again."
    if status == 403:
        return f"Kubernetes refused the server (forbidden): {message}"
    return f"Kubernetes refused the server ({status} {reason}): {message}".rstrip(": ")


def _event_field(event: Mapping[str, Any], name: str) -> str:
    return str(event.get(name) or "")


def explain_event(event: Mapping[str, Any]) -> str | None:
    """A clearer progress message for the events users get stuck on; None keeps KubeSpawner's text."""
    reason, message = _event_field(event, "reason"), _event_field(event, "message")
    lower = message.lower()
    if reason in ("ErrImagePull", "ImagePullBackOff", "InspectFailed", "ErrImageNeverPull") or (
        reason == "Failed" and ("pull" in lower or "image" in lower)
    ):
        return (f"The notebook image could not be pulled: {message}. "
                "Check the image name and that its registry is reachable from the cluster.")
    if reason == "BackOff" and "pulling image" in lower:
        return f"Still cannot pull the notebook image, retrying: {message}"
    if reason == "FailedScheduling":
        # Only a shortage of GPUs is a GPU problem: a tainted GPU node that merely exists (and is listed in
        # every scheduling failure) says nothing about this server's profile.
        if any("gpu" in resource.lower() for resource in _INSUFFICIENT.findall(message)):
            return f"No node has a free GPU for this profile right now: {message}"
        if "untolerated taint" in lower:
            return ("Waiting for a node this server may use (nodes reserved by a taint take only servers whose "
                    f"profile or configurations tolerate it): {message}")
        return f"Waiting for a node with room for this server: {message}"
    if reason in ("FailedMount", "FailedAttachVolume"):
        return f"The workspace volume could not be mounted yet: {message}"
    if reason == "FailedCreatePodSandBox":
        return f"The node could not set up the server's pod: {message}"
    return None


# Pull errors no retry fixes: the image or tag does not exist, the registry refuses us, the name is malformed.
# Anything else (timeouts, refused connections, rate limits) may pass, and the kubelet keeps retrying those.
_PERMANENT_PULL = re.compile(r"not found|manifest unknown|name unknown|unauthorized|authentication required|"
                             r"access denied|denied:|invalid reference format|repository does not exist", re.I)
_NEVER_STARTS = frozenset({"InvalidImageName", "ErrImageNeverPull"})
_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff"})


def _container_waits(pod: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(reason, message) of every waiting container of the pod, init containers first."""
    status = (pod or {}).get("status") or {}
    waits = []
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            waits.append((str(waiting.get("reason") or ""), str(waiting.get("message") or "")))
    return waits


def waiting_on_pull(pod: Mapping[str, Any] | None) -> bool:
    """Whether a container of the pod waits on its image (then its events may say why; otherwise they need
    not be read at all, which keeps the fail-fast check cheap with many spawns at once)."""
    return any(reason in _PULL_REASONS for reason, _ in _container_waits(pod))


def permanent_start_failure(pod: Mapping[str, Any] | None, events: Sequence[Mapping[str, Any]]) -> str | None:
    """Why the server's pod can never start, from its container states and its events; None while it may.

    KubeSpawner would wait for `start_timeout` (minutes) on an image that does not exist; the kubelet knows
    within a second of the first pull. The sentence is the one the progress stream shows for the same event."""
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    for reason, message in _container_waits(pod):
        if reason in _NEVER_STARTS or (reason in _PULL_REASONS and _PERMANENT_PULL.search(message)):
            return explain_event({"reason": "ErrImagePull", "message": f"{reason}: {message}"})
        if reason == "CreateContainerConfigError":
            return (f"The server cannot start: {message}. A configuration refers to something missing from "
                    "your namespace (a Secret or ConfigMap, or a key in one).")
    uid = (pod.get("metadata") or {}).get("uid")
    for event in events:  # only this pod's: an earlier pod of the same name may have failed for another reason
        if not uid or (event.get("involvedObject") or {}).get("uid") != uid:
            continue
        reason, message = _event_field(event, "reason"), _event_field(event, "message")
        if reason in ("Failed", "ErrImagePull") and "pull" in message.lower() and _PERMANENT_PULL.search(message):
            return explain_event({"reason": "ErrImagePull", "message": message})
    return None


def stopped_message(username: str, server_name: str, namespace: str, workspace: str) -> str:
    """Logged when a server stops: the pod is gone, the workspace stays."""
    who = f"{username}/{server_name}" if server_name else username
    return f"server {who} stopped cleanly in {namespace}; workspace {workspace} kept for the next start"
