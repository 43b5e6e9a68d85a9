"""Pure: a checked BuildRequest -> the Kaniko Job manifest (a dict, as the API takes it).

The Job is the Build's only storage: labels select it, annotations carry the request and, once known, the
result. Everything that shapes the pod comes from the operator's settings; the request only fills in the
context, Dockerfile, destination and a few Kaniko flags rendered as single `--flag=value` argv entries (no
shell, so no injection, and a value starting with `--` stays a value).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from . import constants as c
from .reference import registry_host
from .settings import Settings
from .validate import CheckedRequest

# The Docker default capability set minus NET_RAW: what Kaniko needs to unpack layers and run RUN steps as
# root, and exactly the set the Pod Security "baseline" level allows.
KANIKO_CAPABILITIES = [
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
]
GENERATE_NAME = "build-"
LABEL_ACTIVE = c.LABEL_ACTIVE


def dedupe_key(checked: CheckedRequest) -> str | None:
    """A label-sized key of everything that determines the image: content, Dockerfile, target, args, labels and
    destination. Two requests with the same key build the same image, so a finished build can be reused."""
    req = checked.request
    if not req.content_hash:
        return None
    material = {
        "contentHash": req.content_hash,
        "destination": str(checked.destination),
        "dockerfile": checked.dockerfile,
        "target": req.target,
        "buildArgs": req.build_args,
        "labels": req.labels,
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:40]


def build_labels() -> dict[str, str]:
    """The labels every build Job and its pod carry."""
    return {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_COMPONENT: c.COMPONENT_BUILD}


def kaniko_args(checked: CheckedRequest, settings: Settings) -> list[str]:
    """Executor flags. `--insecure*` only for registries the operator listed as plain HTTP."""
    req, dest = checked.request, checked.destination
    args = [
        f"--context=dir://{c.WORKSPACE_MOUNT}",
        f"--dockerfile={c.WORKSPACE_MOUNT}/{checked.dockerfile}",
        f"--destination={dest}",
        f"--digest-file={c.TERMINATION_LOG}",
    ]
    if req.cache:
        args += ["--cache=true", f"--cache-repo={settings.cache_repo_template.format(repository=dest.repository)}"]
    else:
        args.append("--cache=false")
    insecure = sorted({registry_host(r) for r in settings.insecure_registries})
    if dest.domain in insecure:
        args.append("--insecure")  # push (and the cache repo, same registry) over plain HTTP
    # Scoped to the listed hosts for pulls and pushes, unlike the global --insecure-pull.
    args += [f"--insecure-registry={h}" for h in insecure]
    args += [f"--build-arg={k}={v}" for k, v in sorted(req.build_args.items())]
    if req.target:
        args.append(f"--target={req.target}")
    args += [f"--label={k}={v}" for k, v in sorted(req.labels.items())]
    args += list(settings.kaniko_extra_args)
    return args


def _resources(settings: Settings) -> dict[str, dict[str, str]]:
    limits = {"cpu": settings.cpu_limit, "memory": settings.memory_limit}
    requests = {"cpu": settings.cpu_request, "memory": settings.memory_request}
    if settings.ephemeral_storage_limit:
        limits["ephemeral-storage"] = settings.ephemeral_storage_limit
    return {"requests": requests, "limits": limits}


def render_job(
    checked: CheckedRequest, settings: Settings, namespace: str | None = None, requested_by: str = ""
) -> dict[str, Any]:
    """The Job for one build. `backoffLimit: 0`: a failed build is reported, not silently retried."""
    req = checked.request
    labels = {**build_labels(), LABEL_ACTIVE: "true"}
    key = dedupe_key(checked)
    if key:
        labels[c.LABEL_DEDUPE_KEY] = key
    annotations = {
        c.ANNOTATION_REQUEST: req.model_dump_json(by_alias=True, exclude_none=True),
        c.ANNOTATION_DESTINATION: str(checked.destination),
    }
    if req.content_hash:
        annotations[c.ANNOTATION_CONTENT_HASH] = req.content_hash
    if requested_by:
        annotations[c.ANNOTATION_REQUESTED_BY] = requested_by

    mount: dict[str, Any] = {"name": c.WORKSPACE_VOLUME, "mountPath": c.WORKSPACE_MOUNT, "readOnly": True}
    if checked.context_path:
        # kubelet resolves subPath inside the volume and refuses one that escapes it (symlinks included).
        mount["subPath"] = checked.context_path
    mounts = [mount]
    volumes: list[dict[str, Any]] = [
        {"name": c.WORKSPACE_VOLUME, "persistentVolumeClaim": {"claimName": req.context.pvc, "readOnly": True}}
    ]
    if req.push_secret:
        mounts.append({"name": c.DOCKER_CONFIG_VOLUME, "mountPath": c.DOCKER_CONFIG_DIR, "readOnly": True})
        volumes.append({
            "name": c.DOCKER_CONFIG_VOLUME,
            "secret": {
                "secretName": req.push_secret,
                "items": [{"key": c.DOCKER_CONFIG_KEY, "path": "config.json"}],
                "defaultMode": 0o400,
            },
        })

    container = {
        "name": c.CONTAINER_NAME,
        "image": settings.kaniko_image,
        "imagePullPolicy": settings.kaniko_image_pull_policy,
        "args": kaniko_args(checked, settings),
        "resources": _resources(settings),
        "volumeMounts": mounts,
        # Kaniko writes the digest here; kubelet copies it into status...terminated.message. On failure the
        # file is empty and kubelet falls back to the log tail, which becomes the Build's failure message.
        "terminationMessagePath": c.TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "runAsUser": 0,  # Kaniko unpacks base images into its own root file system
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": list(KANIKO_CAPABILITIES)},
        },
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # The build needs no API access; a caller-chosen service account (e.g. for registry workload identity)
        # is the one case where its token is mounted.
        "automountServiceAccountToken": bool(req.service_account_name),
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": volumes,
    }
    if req.service_account_name:
        pod_spec["serviceAccountName"] = req.service_account_name

    metadata: dict[str, Any] = {"generateName": GENERATE_NAME, "labels": labels, "annotations": annotations}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": settings.active_deadline_seconds,
            "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": build_labels()}, "spec": pod_spec},
        },
    }
