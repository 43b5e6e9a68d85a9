"""Spawn hooks' pure parts (which configurations, pod labels) and the dry-run summary."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio.client import V1ObjectMeta, V1Pod

from hub_config import constants as k
from hub_config.hooks import chosen_configurations, label_pod, preselected_names, unapplied
from hub_config.messages import SpawnError
from hub_config.preview import describe_injection
from hub_config.settings import HubSettings


def pd(name: str, selector: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"selector": selector}}


def pod(labels: dict[str, str] | None = None) -> V1Pod:
    return V1Pod(metadata=V1ObjectMeta(name="jupyter-a", labels=dict(labels or {"component": "singleuser-server"})))


SETTINGS = HubSettings(builder={"url": "http://b"}, preselected_configurations=["team-data"],
                       default_poddefaults=[{"name": "quiet", "spec": {}, "preselected": False}])


@pytest.mark.parametrize(("options", "expected"), [
    ({}, ["team-data", "builder"]),
    (None, ["team-data", "builder"]),
    ({"configurations": []}, []),
    ({"configurations": ["quiet"]}, ["quiet"]),
])
def test_absent_choice_means_operator_preselection(options, expected) -> None:
    assert chosen_configurations(options, SETTINGS) == expected
    assert preselected_names(SETTINGS) == ["team-data", "builder"]


@pytest.mark.parametrize("bad", ["builder", [1, 2], {"a": 1}])
def test_malformed_configurations_from_rest_api_are_refused(bad: Any) -> None:
    with pytest.raises(SpawnError):
        chosen_configurations({"configurations": bad}, SETTINGS)


def test_label_pod_adds_selection_labels_and_records_choice() -> None:
    pds = [pd("a", {"matchLabels": {"a": "true"}}), pd("b", {"matchExpressions": [{"key": "b", "operator": "Exists"}]})]
    p = label_pod(pod(), pds, ["a", "b"], explicit=True)
    assert p.metadata.labels == {"component": "singleuser-server", "a": "true", "b": "true"}
    assert p.metadata.annotations[k.CONFIGURATIONS_ANNOTATION] == "a,b"


def test_label_pod_refuses_unknown_explicit_choice_but_skips_missing_preselection() -> None:
    pds = [pd("a", {"matchLabels": {"a": "true"}})]
    with pytest.raises(SpawnError, match="ghost"):
        label_pod(pod(), pds, ["a", "ghost"], explicit=True)
    p = label_pod(pod(), pds, ["a", "ghost"], explicit=False)
    assert p.metadata.labels["a"] == "true" and p.metadata.annotations[k.CONFIGURATIONS_ANNOTATION] == "a"


def test_label_pod_never_overrides_hub_labels() -> None:
    pds = [pd("evil", {"matchLabels": {"component": "something-else"}})]
    with pytest.raises(SpawnError, match="set by the hub"):
        label_pod(pod(), pds, ["evil"], explicit=True)


def test_unapplied_reads_the_webhook_bookkeeping_annotations() -> None:
    dry = {"metadata": {"annotations": {k.PODDEFAULT_APPLIED_PREFIX + "a": "123"}}}
    assert unapplied(dry, ["a", "b"]) == ["b"]
    assert unapplied({}, []) == []


def test_describe_injection_lists_only_what_admission_added() -> None:
    before = {
        "metadata": {"labels": {"a": "true"}, "annotations": {"x": "1"}},
        "spec": {"serviceAccountName": "notebook", "volumes": [{"name": "workspace"}],
                 "containers": [{"name": "notebook", "env": [{"name": "KEEP", "value": "1"}],
                                 "volumeMounts": [{"name": "workspace", "mountPath": "/home/jovyan"}]}]},
    }
    after = {
        "metadata": {"labels": {"a": "true"},
                     "annotations": {"x": "1", k.PODDEFAULT_APPLIED_PREFIX + "a": "5"}},
        "spec": {"serviceAccountName": "notebook",
                 "volumes": [{"name": "workspace"}, {"name": "secret-vol", "secret": {"secretName": "s"}}],
                 "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                 "containers": [
                     {"name": "notebook",
                      "env": [{"name": "KEEP", "value": "1"}, {"name": "NEW", "value": "2"},
                              {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}],
                      "volumeMounts": [{"name": "workspace", "mountPath": "/home/jovyan"},
                                       {"name": "secret-vol", "mountPath": "/secret", "readOnly": True}],
                      "resources": {"limits": {"cpu": "1"}}},
                     {"name": "sidecar"}]},
    }
    summary = describe_injection(before, after, [pd("a", {"matchLabels": {"a": "true"}}), pd("z", {"matchLabels":
                                                                                                   {"z": "1"}})])
    assert summary["poddefaults"] == ["a"]
    assert summary["env"] == [{"name": "NEW", "value": "2"},
                              {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}]
    assert summary["volumeMounts"] == [{"name": "secret-vol", "mountPath": "/secret"}]
    assert summary["volumes"] == ["secret-vol"] and summary["containers"] == ["sidecar"]
    assert summary["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    assert summary["annotations"] == {k.PODDEFAULT_APPLIED_PREFIX + "a": "5"} and summary["labels"] == {}
    assert "serviceAccountName" not in summary and summary["resources"] == {"limits": {"cpu": "1"}}
