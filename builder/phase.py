"""Pure: a Build's status from its Job and pods (dicts as the API returns them), and the Build resource view.

Phase rules, first match wins:
1. A phase recorded on the Job (Cancelled by DELETE; Succeeded/Failed once observed) is final.
2. Job condition Complete/SuccessCriteriaMet, or the Kaniko container exited 0 -> Succeeded, digest from the
   container's termination message (Kaniko's --digest-file).
3. Job condition Failed/FailureTarget, or the container exited non-zero, or the pod failed -> Failed, with the
   most specific message (deadline, exit code and log tail, eviction).
4. The container waits for a reason that will not fix itself (e.g. a subPath escaping the volume) -> Failed.
5. The container runs -> Running. Otherwise Pending, saying what it waits for.
"""

from __future__ import annotations

import json
from typing import Any

from . import constants as c
from .model import Build, BuildMetadata, BuildPhase, BuildRequest, BuildStatus
from .reference import SHA256_DIGEST_RE

# Waiting reasons kubelet keeps retrying but that will not succeed without a change by the user.
FATAL_WAITING_REASONS = frozenset({
    "CreateContainerConfigError",  # includes "subPath ... outside the volume", a missing Secret key
    "CreateContainerError",
    "InvalidImageName",
    "ErrImageNeverPull",
})
MAX_MESSAGE = 2000

Obj = dict[str, Any]


def _get(obj: Obj | None, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _tail(text: str, limit: int = MAX_MESSAGE) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _join(*parts: str | None) -> str:
    """'a: b: c', skipping empty parts."""
    return ": ".join(p.strip() for p in parts if p and p.strip())


def _true_conditions(job: Obj) -> dict[str, Obj]:
    return {cond["type"]: cond for cond in _get(job, "status", "conditions") or [] if cond.get("status") == "True"}


def newest_pod(pods: list[Obj]) -> Obj | None:
    """The Job's latest pod (backoffLimit 0 means one, but a deleted pod may linger while terminating)."""
    return max(pods, key=lambda p: (_get(p, "metadata", "creationTimestamp") or "", _get(p, "metadata", "name")),
               default=None)


def kaniko_state(pod: Obj | None) -> Obj:
    """The Kaniko container's `state` ({} if not reported yet)."""
    for cs in _get(pod, "status", "containerStatuses") or []:
        if cs.get("name") == c.CONTAINER_NAME:
            return cs.get("state") or {}
    return {}


def parse_digest(message: str | None) -> str | None:
    """The sha256 digest in a termination message, if any."""
    m = SHA256_DIGEST_RE.search(message or "")
    return m.group(0) if m else None


def _failure_message(conds: dict[str, Obj], term: Obj | None, pod: Obj | None, job: Obj) -> str:
    failed = conds.get("Failed") or conds.get("FailureTarget") or {}
    if failed.get("reason") == "DeadlineExceeded":
        deadline = _get(job, "spec", "activeDeadlineSeconds")
        return f"build exceeded its deadline of {deadline} s and was stopped"
    if term:
        head = f"Kaniko exited with code {term.get('exitCode')}"
        if term.get("reason"):
            head += f" ({term['reason']})"
        detail = term.get("message") or ""
        return _tail(f"{head}: {detail}" if detail.strip() else head)
    if _get(pod, "status", "phase") == "Failed":
        return _tail(_join("build pod failed", _get(pod, "status", "reason"), _get(pod, "status", "message")))
    if failed:
        return _tail(_join(failed.get("reason") or "Failed", failed.get("message")))
    return "build failed"


def _pending_message(job: Obj, pod: Obj | None, waiting: Obj | None) -> str:
    if _get(job, "spec", "suspend"):
        return "queued (Job suspended)"
    if pod is None:
        return "waiting for the build pod to be created"
    for cond in _get(pod, "status", "conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return _tail(_join("waiting to be scheduled", cond.get("reason"), cond.get("message")))
    if waiting:
        return _tail(_join("waiting", waiting.get("reason"), waiting.get("message")))
    return "waiting for the build pod to start"


def derive_status(job: Obj, pods: list[Obj]) -> BuildStatus:
    """The Build status from its Job and pods. See the module docstring for the rules."""
    ann = _get(job, "metadata", "annotations") or {}
    pod = newest_pod(pods)
    base: dict[str, Any] = {
        "pod_name": _get(pod, "metadata", "name"),
        "start_time": _get(job, "status", "startTime"),
        "completion_time": _get(job, "status", "completionTime"),
    }
    destination = ann.get(c.ANNOTATION_DESTINATION, "")
    recorded = ann.get(c.ANNOTATION_PHASE)
    if recorded in {p.value for p in BuildPhase if p.finished}:
        digest = ann.get(c.ANNOTATION_DIGEST)
        return BuildStatus(
            phase=BuildPhase(recorded), message=ann.get(c.ANNOTATION_MESSAGE, ""), digest=digest,
            image=image_with_digest(destination, digest), **base,
        )

    conds = _true_conditions(job)
    state = kaniko_state(pod)
    term, waiting = state.get("terminated"), state.get("waiting")
    if "Complete" in conds or "SuccessCriteriaMet" in conds or (term and term.get("exitCode") == 0):
        digest = parse_digest(term.get("message") if term else None)
        message = "" if digest else "built, but the pod that reported the digest is gone"
        return BuildStatus(phase=BuildPhase.SUCCEEDED, message=message, digest=digest,
                           image=image_with_digest(destination, digest), **base)
    pod_failed = _get(pod, "status", "phase") == "Failed"
    if "Failed" in conds or "FailureTarget" in conds or term or pod_failed:
        return BuildStatus(phase=BuildPhase.FAILED, message=_failure_message(conds, term, pod, job), **base)
    if waiting and waiting.get("reason") in FATAL_WAITING_REASONS:
        return BuildStatus(phase=BuildPhase.FAILED, message=_cannot_start_message(job, waiting), **base)
    if "running" in state:
        return BuildStatus(phase=BuildPhase.RUNNING, message="building", **base)
    return BuildStatus(phase=BuildPhase.PENDING, message=_pending_message(job, pod, waiting), **base)


def _cannot_start_message(job: Obj, waiting: Obj) -> str:
    """Why the kubelet will not start the build. A refused subPath means the context folder resolves outside
    the volume (a symlink out of it, or a file where a folder should be): the API cannot see the volume, so
    the kubelet is where that is caught, and the user is told in terms of the field they sent."""
    reason, detail = waiting["reason"], waiting.get("message") or ""
    if reason == "CreateContainerConfigError" and "subpath" in detail.lower():
        request = _request_annotation(job)
        context = request.get("context") if isinstance(request.get("context"), dict) else {}
        where = f"context.path {context.get('path')!r} of claim {context.get('pvc')!r}" if context else "context.path"
        return _tail(_join(f"the build cannot start: {where} is not a folder inside the volume (a symlink out of "
                           "it?); the kubelet refused to mount it", reason, detail))
    return _tail(_join("the build cannot start", reason, detail))


def _request_annotation(job: Obj) -> Obj:
    """The build request the Job carries (JSON in an annotation); {} when absent or unreadable."""
    raw = (_get(job, "metadata", "annotations") or {}).get(c.ANNOTATION_REQUEST)
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def image_with_digest(destination: str, digest: str | None) -> str | None:
    """`repository@digest` (the tag dropped: the digest names the image exactly)."""
    if not digest or not destination:
        return None
    last = destination.rsplit("/", 1)
    repo = destination
    if ":" in last[-1]:
        repo = destination[: destination.rfind(":")]
    return f"{repo}@{digest}"


def job_finished(job: Obj) -> bool:
    """Whether the Job controller considers the Job done (its pods stopped)."""
    return bool({"Complete", "Failed"} & set(_true_conditions(job)))


def needs_pods(job: Obj) -> bool:
    """Whether deriving the status needs the pods (not when the result is already recorded on the Job)."""
    recorded = (_get(job, "metadata", "annotations") or {}).get(c.ANNOTATION_PHASE)
    return recorded not in {p.value for p in BuildPhase if p.finished}


def record_patch(job: Obj, status: BuildStatus) -> Obj | None:
    """The merge patch that records a finished status on the Job and drops the `active` label, or None when
    there is nothing new to record. Idempotent, so any replica may apply it."""
    if not status.phase.finished:
        return None
    ann = _get(job, "metadata", "annotations") or {}
    labels = _get(job, "metadata", "labels") or {}
    if ann.get(c.ANNOTATION_PHASE) == status.phase.value and c.LABEL_ACTIVE not in labels:
        return None
    new_ann = {c.ANNOTATION_PHASE: status.phase.value, c.ANNOTATION_MESSAGE: status.message}
    if status.digest:
        new_ann[c.ANNOTATION_DIGEST] = status.digest
    return {"metadata": {"annotations": new_ann, "labels": {c.LABEL_ACTIVE: None}}}


def job_to_build(job: Obj, status: BuildStatus) -> Build:
    """The API's Build view of a Job; raises ValueError if the Job does not carry a valid request."""
    meta = job.get("metadata") or {}
    ann = meta.get("annotations") or {}
    request = _request_annotation(job)
    if not request:
        raise ValueError(f"Job {meta.get('name')} carries no build request")
    spec = BuildRequest.model_validate(request)
    ours = {k: v for k, v in ann.items() if k.startswith(c.API_GROUP + "/") and k != c.ANNOTATION_REQUEST}
    return Build(
        metadata=BuildMetadata(
            name=meta.get("name", ""), namespace=meta.get("namespace", ""), uid=meta.get("uid"),
            creation_timestamp=meta.get("creationTimestamp"), annotations=ours,
        ),
        spec=spec,
        status=status,
    )
