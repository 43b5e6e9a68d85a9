"""Build status derivation from Job and Pod status (dicts shaped as the apiserver returns them)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from builder import constants as c
from builder.model import BuildPhase
from builder.phase import derive_status, image_with_digest, job_to_build, needs_pods, record_patch

DIGEST = "sha256:" + "1f" * 32
DEST = "registry.local:5000/alice/app:v1"


def job(conditions: list[dict[str, Any]] | None = None, annotations: dict[str, str] | None = None,
        suspend: bool = False, labels: dict[str, str] | None = None) -> dict[str, Any]:
    ann = {c.ANNOTATION_DESTINATION: DEST,
           c.ANNOTATION_REQUEST: json.dumps({"context": {"pvc": "w", "path": "p"}, "destination": DEST})}
    ann.update(annotations or {})
    return {
        "metadata": {"name": "build-x", "namespace": "alice", "uid": "u", "creationTimestamp": "2025-01-01T00:00:00Z",
                     "annotations": ann, "labels": {c.LABEL_ACTIVE: "true"} if labels is None else labels},
        "spec": {"activeDeadlineSeconds": 600, "suspend": suspend},
        "status": {"conditions": conditions or [], "startTime": "2025-01-01T00:00:01Z"},
    }


def cond(type_: str, reason: str = "", message: str = "", status: str = "True") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def pod(state: dict[str, Any] | None = None, phase: str = "Pending", conditions: list[dict[str, Any]] | None = None,
        name: str = "build-x-abc", created: str = "2025-01-01T00:00:02Z", **status: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"phase": phase, "conditions": conditions or [], **status}
    if state is not None:
        st["containerStatuses"] = [{"name": "kaniko", "state": state}]
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": st}


CASES = [
    # (description, job, pods, phase, message fragment, digest)
    ("no pod yet", job(), [], BuildPhase.PENDING, "pod to be created", None),
    ("suspended", job(suspend=True), [], BuildPhase.PENDING, "queued", None),
    ("unschedulable", job(), [pod(conditions=[cond("PodScheduled", "Unschedulable", "0/1 nodes", "False")])],
     BuildPhase.PENDING, "Unschedulable: 0/1 nodes", None),
    ("pulling", job(), [pod({"waiting": {"reason": "ContainerCreating"}})], BuildPhase.PENDING, "ContainerCreating",
     None),
    ("image pull backoff is not fatal", job(), [pod({"waiting": {"reason": "ImagePullBackOff", "message": "m"}})],
     BuildPhase.PENDING, "ImagePullBackOff", None),
    ("subPath escaping the volume", job(),
     [pod({"waiting": {"reason": "CreateContainerConfigError",
                       "message": "failed to prepare subPath for volumeMount \"workspace\""}})],
     BuildPhase.FAILED, "context.path 'p' of claim 'w' is not a folder inside the volume", None),
    ("a missing Secret key is not blamed on the context", job(),
     [pod({"waiting": {"reason": "CreateContainerConfigError", "message": "couldn't find key x in Secret alice/s"}})],
     BuildPhase.FAILED, "the build cannot start: CreateContainerConfigError: couldn't find key", None),
    ("a refused subPath on a Job whose request annotation is unreadable",
     job(annotations={c.ANNOTATION_REQUEST: "{not json"}),
     [pod({"waiting": {"reason": "CreateContainerConfigError", "message": "failed to prepare subPath"}})],
     BuildPhase.FAILED, "context.path is not a folder inside the volume", None),
    ("running", job(), [pod({"running": {"startedAt": "t"}}, "Running")], BuildPhase.RUNNING, "building", None),
    ("container exited 0 before the Job says Complete", job(),
     [pod({"terminated": {"exitCode": 0, "message": DIGEST}}, "Succeeded")], BuildPhase.SUCCEEDED, "", DIGEST),
    ("complete", job([cond("SuccessCriteriaMet"), cond("Complete")]),
     [pod({"terminated": {"exitCode": 0, "message": DIGEST + "\n"}}, "Succeeded")], BuildPhase.SUCCEEDED, "", DIGEST),
    ("complete but the pod is gone", job([cond("Complete")]), [], BuildPhase.SUCCEEDED, "gone", None),
    ("kaniko failed, log tail as message", job([cond("Failed", "BackoffLimitExceeded")]),
     [pod({"terminated": {"exitCode": 1, "reason": "Error", "message": "error building image: RUN false"}}, "Failed")],
     BuildPhase.FAILED, "exited with code 1 (Error): error building image", None),
    ("container failed before the Job says so", job(),
     [pod({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}, "Failed")], BuildPhase.FAILED, "OOMKilled", None),
    ("deadline", job([cond("FailureTarget", "DeadlineExceeded"), cond("Failed", "DeadlineExceeded")]), [],
     BuildPhase.FAILED, "deadline of 600 s", None),
    ("evicted", job(), [pod(None, "Failed", reason="Evicted", message="low on ephemeral-storage")],
     BuildPhase.FAILED, "Evicted: low on ephemeral-storage", None),
    ("condition False is ignored", job([cond("Failed", status="False")]), [], BuildPhase.PENDING, "", None),
    ("cancelled is final even while the pod still runs",
     job(annotations={c.ANNOTATION_PHASE: "Cancelled", c.ANNOTATION_MESSAGE: "cancelled by bob"}),
     [pod({"running": {}}, "Running")], BuildPhase.CANCELLED, "cancelled by bob", None),
    ("recorded success needs no pod", job(annotations={c.ANNOTATION_PHASE: "Succeeded", c.ANNOTATION_DIGEST: DIGEST}),
     [], BuildPhase.SUCCEEDED, "", DIGEST),
    ("a stray annotation value is not a phase", job(annotations={c.ANNOTATION_PHASE: "Bogus"}), [],
     BuildPhase.PENDING, "", None),
]


@pytest.mark.parametrize(("job_", "pods", "phase", "fragment", "digest"), [c_[1:] for c_ in CASES],
                         ids=[c_[0] for c_ in CASES])
def test_phase_is_derived_from_job_and_pod_status(job_, pods, phase, fragment, digest) -> None:
    status = derive_status(job_, pods)
    assert status.phase == phase
    assert fragment in status.message
    assert status.digest == digest
    if digest:
        assert status.image == f"registry.local:5000/alice/app@{digest}"


def test_newest_pod_decides() -> None:
    old = pod({"terminated": {"exitCode": 1}}, "Failed", name="a", created="2025-01-01T00:00:01Z")
    new = pod({"running": {}}, "Running", name="b", created="2025-01-01T00:00:05Z")
    status = derive_status(job(), [new, old])
    assert (status.phase, status.pod_name) == (BuildPhase.RUNNING, "b")


def test_long_failure_messages_are_cut_to_their_tail() -> None:
    term = {"terminated": {"exitCode": 1, "message": "x" * 10_000 + "THE END"}}
    status = derive_status(job(), [pod(term, "Failed")])
    assert len(status.message) < 2100 and status.message.endswith("THE END")


def test_finished_status_is_recorded_once_and_active_label_dropped() -> None:
    j = job()
    status = derive_status(j, [pod({"terminated": {"exitCode": 0, "message": DIGEST}}, "Succeeded")])
    patch = record_patch(j, status)
    assert patch == {"metadata": {"annotations": {c.ANNOTATION_PHASE: "Succeeded", c.ANNOTATION_MESSAGE: "",
                                                  c.ANNOTATION_DIGEST: DIGEST}, "labels": {c.LABEL_ACTIVE: None}}}
    recorded = job(annotations=patch["metadata"]["annotations"], labels={})
    assert not needs_pods(recorded)
    assert record_patch(recorded, derive_status(recorded, [])) is None
    assert record_patch(job(), derive_status(job(), [])) is None  # pending: nothing to record


@pytest.mark.parametrize(
    ("dest", "image"),
    [("r.io/a/b:v1", "r.io/a/b@D"), ("r.io/a/b", "r.io/a/b@D"), ("r.io:5000/a/b", "r.io:5000/a/b@D"),
     ("r.io:5000/a/b:t", "r.io:5000/a/b@D")],
)
def test_image_with_digest_drops_the_tag_not_the_port(dest: str, image: str) -> None:
    assert image_with_digest(dest, "D") == image


def test_job_to_build_shows_the_request_and_our_annotations() -> None:
    b = job_to_build(job(), derive_status(job(), []))
    assert b.metadata.name == "build-x" and b.spec.destination == DEST
    assert c.ANNOTATION_REQUEST not in b.metadata.annotations
    assert b.model_dump(by_alias=True)["apiVersion"] == "builder.notebook-platform.io/v1"


def test_job_without_a_request_is_not_a_build() -> None:
    j = job()
    del j["metadata"]["annotations"][c.ANNOTATION_REQUEST]
    with pytest.raises(ValueError, match="no build request"):
        job_to_build(j, derive_status(j, []))
