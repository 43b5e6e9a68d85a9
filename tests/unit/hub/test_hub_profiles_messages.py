"""Profiles -> KubeSpawner profile_list, and the messages users read when spawning fails."""

from __future__ import annotations

import pytest

from hub_config.messages import explain_api_error, explain_event, stopped_message
from hub_config.profiles import profile_list, quantity_to_bytes
from hub_config.settings import HubSettings
from hub_config.spawner import improve_progress_event


@pytest.mark.parametrize(("qty", "expected"), [("2Gi", 2 * 2**30), ("512Mi", 512 * 2**20), ("1G", 10**9),
                                               ("1.5Gi", int(1.5 * 2**30)), ("1000", 1000), ("1k", 1000)])
def test_quantity_to_bytes(qty: str, expected: int) -> None:
    assert quantity_to_bytes(qty) == expected


def test_gpu_profile_sets_gpu_limit_and_toleration() -> None:
    settings = HubSettings(profiles=[{"slug": "gpu", "display_name": "GPU", "gpus": 2, "cpu_limit": 4,
                                      "mem_limit": "16Gi", "node_selector": {"gpu": "a100"}}])
    (p,) = profile_list(settings)
    o = p["kubespawner_override"]
    assert o["extra_resource_limits"] == {"nvidia.com/gpu": "2"}
    assert o["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert o["mem_limit"] == 16 * 2**30 and o["cpu_limit"] == 4 and o["node_selector"] == {"gpu": "a100"}
    assert p["default"] is True


def test_cpu_profile_has_no_gpu_or_toleration_and_explicit_tolerations_win() -> None:
    settings = HubSettings(profiles=[
        {"slug": "cpu", "display_name": "CPU"},
        {"slug": "amd", "display_name": "AMD", "gpus": 1, "gpu_resource": "amd.com/gpu",
         "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]},
    ])
    cpu, amd = profile_list(settings)
    assert "extra_resource_limits" not in cpu["kubespawner_override"]
    assert "tolerations" not in cpu["kubespawner_override"]
    assert amd["kubespawner_override"]["extra_resource_limits"] == {"amd.com/gpu": "1"}
    assert amd["kubespawner_override"]["tolerations"][0]["key"] == "dedicated"
    assert cpu["default"] is True and amd["default"] is False


def test_kubespawner_override_escape_hatch_applies_last() -> None:
    (p,) = profile_list(HubSettings(profiles=[{"slug": "x", "display_name": "X", "cpu_limit": 1,
                                               "kubespawner_override": {"cpu_limit": 2, "default_url": "/tree"}}]))
    assert p["kubespawner_override"]["cpu_limit"] == 2 and p["kubespawner_override"]["default_url"] == "/tree"


def test_invalid_profiles_are_rejected_at_startup() -> None:
    with pytest.raises(ValueError):
        HubSettings(profiles=[{"slug": "a", "display_name": "A"}, {"slug": "a", "display_name": "B"}])
    with pytest.raises(ValueError):
        HubSettings(profiles=[{"slug": "a", "display_name": "A", "mem_limit": "lots"}])
    with pytest.raises(ValueError):
        HubSettings(profiles=[{"slug": "Bad Slug", "display_name": "A"}])


API_ERRORS = [
    # (id, status, reason, message, words in the explanation)
    ("quota", 403, "Forbidden",
     'pods "jupyter-alice" is forbidden: exceeded quota: notebook-platform, requested: limits.cpu=4, '
     "used: limits.cpu=6, limited: limits.cpu=8", ["quota (notebook-platform)", "requested: limits.cpu=4",
                                                    "smaller size"]),
    ("poddefault_conflict", 400, "BadRequest",
     'admission webhook "poddefaults.notebook-platform.io" denied the request: PodDefaults "a" and "b" both set '
     "env FOO with different values", ["configurations cannot be combined", 'both set env FOO']),
    ("other_webhook", 400, "BadRequest", 'admission webhook "policy.example.com" denied the request: no root',
     ["policy.example.com", "no root"]),
    ("pod_security", 403, "Forbidden",
     'pods "x" is forbidden: violates PodSecurity "baseline:latest": privileged (container "c" must not set '
     "securityContext.privileged=true)", ["Pod Security level (baseline:latest)", "privileged"]),
    ("limit_range", 403, "Forbidden", 'pods "x" is forbidden: maximum cpu usage per Container is 2, but limit is 4',
     ["per-container limits", "maximum cpu"]),
    ("terminating", 403, "Forbidden", 'pods "x" is forbidden: unable to create new content in namespace nbp-a '
     "because it is being terminated", ["being deleted"]),
    ("unknown", 500, "InternalError", "etcd is sad", ["500", "etcd is sad"]),
]


@pytest.mark.parametrize(("status", "reason", "message", "words"), [e[1:] for e in API_ERRORS],
                         ids=[e[0] for e in API_ERRORS])
def test_api_errors_become_readable_messages_keeping_the_detail(status, reason, message, words) -> None:
    text = explain_api_error(status, reason, message)
    for w in words:
        assert w in text


EVENTS = [
    ("pull_failed", {"reason": "Failed", "type": "Warning",
                     "message": 'Failed to pull image "nope:1": not found'}, "could not be pulled"),
    ("err_image_pull", {"reason": "ErrImagePull", "message": "x"}, "could not be pulled"),
    ("backoff", {"reason": "BackOff", "message": 'Back-off pulling image "nope:1"'}, "Still cannot pull"),
    ("no_gpu", {"reason": "FailedScheduling", "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."},
     "free GPU"),
    ("no_room", {"reason": "FailedScheduling", "message": "0/1 nodes are available: 1 Insufficient cpu."},
     "Waiting for a node"),
    ("untolerated_taint", {"reason": "FailedScheduling", "message": "0/2 nodes are available: 1 node(s) had "
                           "untolerated taint(s), 1 node(s) didn't match Pod's node affinity/selector."},
     "tolerate it"),
    # A tainted GPU node merely existing is not a GPU shortage: this server is short of CPU.
    ("tainted_gpu_node_and_no_cpu", {"reason": "FailedScheduling", "message": "0/2 nodes are available: "
                                     "1 Insufficient cpu, 1 node(s) had untolerated taint(s)."}, "tolerate it"),
    ("mount", {"reason": "FailedMount", "message": "MountVolume.SetUp failed"}, "workspace volume"),
    ("scheduled", {"reason": "Scheduled", "message": "Successfully assigned"}, None),
]


@pytest.mark.parametrize(("event", "words"), [e[1:] for e in EVENTS], ids=[e[0] for e in EVENTS])
def test_events_users_get_stuck_on_are_explained(event, words) -> None:
    text = explain_event(event)
    if words is None:
        assert text is None
    else:
        assert text is not None and words in text and event["message"] in text
        assert ("GPU" in text) == ("gpu" in event["message"].lower()), "GPU wording only for a GPU shortage"


def test_progress_event_keeps_raw_event_and_progress() -> None:
    raw = {"reason": "ErrImagePull", "message": "boom", "type": "Warning"}
    event = {"progress": 50, "raw_event": raw, "message": "2024 [Warning] boom"}
    better = improve_progress_event(event)
    assert better["progress"] == 50 and better["raw_event"] is raw and "could not be pulled" in better["message"]
    plain = {"progress": 10, "message": "hello"}
    assert improve_progress_event(plain) is plain


def test_stopped_message_names_server_and_workspace() -> None:
    assert stopped_message("alice", "", "nbp-alice", "workspace") == (
        "server alice stopped cleanly in nbp-alice; workspace workspace kept for the next start")
    assert "alice/gpu" in stopped_message("alice", "gpu", "nbp-alice", "workspace")
