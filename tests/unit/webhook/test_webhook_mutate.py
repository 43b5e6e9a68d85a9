"""Field-by-field rules of `apply_poddefaults` (Kubeflow's semantics, plus order independence and
idempotence), selection, exclusion and conflicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from poddefault_builders import apiserver_roundtrip, container, pod, poddefault

from webhook.mutate import PodDefaultConflict, apply_poddefaults

SECRET_VOL = {"name": "gcp", "secret": {"secretName": "gcp-secret"}}
SECRET_MOUNT = {"name": "gcp", "mountPath": "/secret/gcp"}
ENV_X = {"name": "X", "value": "1"}
TOL_GPU = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}

A = "add-a"  # PodDefault names; pods labelled `<name>: "true"` select them


def selected(*names: str, **kw: Any) -> dict[str, Any]:
    return pod(labels={n: "true" for n in names}, **kw)


def applied(p: dict[str, Any], *pds: dict[str, Any]) -> dict[str, Any]:
    return apply_poddefaults(p, list(pds))


def ctr(p: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return p["spec"]["containers"][i]


# --- what goes where -------------------------------------------------------------------------------------


def test_env_goes_into_every_container_but_not_init_containers():
    p = selected(A, containers=[container("main"), container("helper")], initContainers=[container("init")])
    out = applied(p, poddefault(A, env=[ENV_X]))
    assert [c.get("env") for c in out["spec"]["containers"]] == [[ENV_X], [ENV_X]]
    assert "env" not in out["spec"]["initContainers"][0]


def test_volume_mounts_go_into_every_container_and_the_volume_into_the_pod():
    p = selected(A, containers=[container("main"), container("helper")])
    out = applied(p, poddefault(A, volumes=[SECRET_VOL], volumeMounts=[SECRET_MOUNT]))
    assert out["spec"]["volumes"] == [SECRET_VOL]
    assert [c["volumeMounts"] for c in out["spec"]["containers"]] == [[SECRET_MOUNT], [SECRET_MOUNT]]


def test_env_from_is_appended_after_the_pods_own():
    own = {"configMapRef": {"name": "own"}}
    added = {"secretRef": {"name": "creds"}}
    out = applied(selected(A, containers=[container("main", envFrom=[own])]), poddefault(A, envFrom=[added]))
    assert ctr(out)["envFrom"] == [own, added]


def test_identical_env_from_is_not_appended_twice():
    src = {"secretRef": {"name": "creds"}}
    out = applied(selected(A, "b"), poddefault(A, envFrom=[src]), poddefault("b", envFrom=[src]))
    assert ctr(out)["envFrom"] == [src]


def test_env_keeps_the_pods_entries_first():
    out = applied(selected(A, containers=[container("main", env=[{"name": "OWN", "value": "o"}])]),
                  poddefault(A, env=[ENV_X]))
    assert ctr(out)["env"] == [{"name": "OWN", "value": "o"}, ENV_X]


@pytest.mark.parametrize(("field", "value"), [("command", ["start.sh"]), ("args", ["--debug"])])
def test_command_and_args_fill_only_containers_that_have_none(field, value):
    p = selected(A, containers=[container("empty"), container("own", **{field: ["mine"]})])
    out = applied(p, poddefault(A, **{field: value}))
    assert ctr(out, 0)[field] == value
    assert ctr(out, 1)[field] == ["mine"]


def test_command_of_the_first_poddefault_by_name_wins():
    out = applied(selected("b-cmd", "a-cmd"), poddefault("b-cmd", command=["b"]), poddefault("a-cmd", command=["a"]))
    assert ctr(out)["command"] == ["a"]


def test_command_is_not_given_to_the_istio_proxy():
    p = selected(A, containers=[container("main"), container("istio-proxy")])
    out = applied(p, poddefault(A, command=["run"], env=[ENV_X]))
    assert "command" not in ctr(out, 1)
    assert ctr(out, 1)["env"] == [ENV_X]  # as in Kubeflow, only command/args skip it


@pytest.mark.parametrize(("field", "entry"), [
    ("tolerations", TOL_GPU),
    ("imagePullSecrets", {"name": "registry"}),
    ("volumes", SECRET_VOL),
])
def test_pod_level_lists_get_the_entry_once(field, entry):
    out = applied(selected(A, "b"), poddefault(A, **{field: [entry]}), poddefault("b", **{field: [entry]}))
    assert out["spec"][field] == [entry]


def test_labels_and_annotations_are_added_to_the_pod():
    out = applied(selected(A), poddefault(A, labels={"team": "a"}, annotations={"example.com/x": "y"}))
    assert out["metadata"]["labels"] == {A: "true", "team": "a"}
    assert out["metadata"]["annotations"]["example.com/x"] == "y"


def test_service_account_settings_override_the_pods():
    p = selected(A, serviceAccountName="default", serviceAccount="default")
    out = applied(p, poddefault(A, serviceAccountName="builder", automountServiceAccountToken=False))
    assert out["spec"]["serviceAccountName"] == "builder"
    assert out["spec"]["serviceAccount"] == "builder"  # the deprecated alias follows
    assert out["spec"]["automountServiceAccountToken"] is False


def test_init_containers_and_sidecars_are_added_by_name_once():
    init, side = container("fetch", command=["fetch"]), container("proxy", image="proxy:1")
    out = applied(selected(A, "b"), poddefault(A, initContainers=[init], sidecars=[side]),
                  poddefault("b", initContainers=[init], sidecars=[side]))
    assert out["spec"]["initContainers"] == [init]
    assert [c["name"] for c in out["spec"]["containers"]] == ["main", "proxy"]


def test_sidecars_get_no_env_mounts_or_command_from_poddefaults():
    side = container("proxy", image="proxy:1")
    out = applied(selected(A, "b"), poddefault(A, sidecars=[side]),
                  poddefault("b", env=[ENV_X], volumeMounts=[SECRET_MOUNT], volumes=[SECRET_VOL], command=["x"]))
    assert ctr(out, 1) == side
    assert ctr(out, 0)["env"] == [ENV_X]


def test_pod_container_named_like_a_sidecar_is_kept_as_is():
    mine = container("proxy", image="my-proxy:2")
    out = applied(selected(A, containers=[container("main"), mine]), poddefault(A, sidecars=[container("proxy")]))
    assert out["spec"]["containers"][1] == mine


def test_each_applied_poddefault_is_recorded_with_its_resource_version():
    out = applied(selected(A, "b"), poddefault(A, rv="41"), poddefault("b", rv="42"))
    ann = out["metadata"]["annotations"]
    assert ann["poddefault.admission.kubeflow.org/poddefault-add-a"] == "41"
    assert ann["poddefault.admission.kubeflow.org/poddefault-b"] == "42"


def test_a_newer_resource_version_replaces_the_recorded_one():
    p = selected(A, annotations={"poddefault.admission.kubeflow.org/poddefault-add-a": "1"})
    out = applied(p, poddefault(A, rv="2"))
    assert out["metadata"]["annotations"]["poddefault.admission.kubeflow.org/poddefault-add-a"] == "2"


# --- selection -------------------------------------------------------------------------------------------


def test_pod_without_matching_labels_is_returned_unchanged():
    p = pod(labels={"other": "true"})
    assert applied(p, poddefault(A, env=[ENV_X])) == p


def test_empty_selector_selects_every_pod_of_the_namespace():
    out = applied(pod(labels=None), poddefault(A, selector={}, env=[ENV_X]))
    assert ctr(out)["env"] == [ENV_X]


def test_match_expressions_select_pods():
    sel = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gpu", "cpu"]},
                                {"key": "no-defaults", "operator": "DoesNotExist"}]}
    pd = poddefault(A, selector=sel, env=[ENV_X])
    assert ctr(applied(pod(labels={"tier": "gpu"}), pd)).get("env") == [ENV_X]
    assert "env" not in ctr(applied(pod(labels={"tier": "tpu"}), pd))
    assert "env" not in ctr(applied(pod(labels={"tier": "gpu", "no-defaults": ""}), pd))


def test_poddefaults_of_other_namespaces_are_ignored():
    p = selected(A)
    assert applied(p, poddefault(A, namespace="team-b", env=[ENV_X])) == p


def test_pod_without_namespace_only_takes_poddefaults_without_one():
    p = selected(A, namespace=None)
    assert applied(p, poddefault(A, env=[ENV_X])) == p


def test_excluded_pod_is_left_alone():
    p = selected(A, annotations={"poddefault.admission.kubeflow.org/exclude": "true"})
    assert applied(p, poddefault(A, env=[ENV_X])) == p


def test_exclusion_needs_the_value_true():
    p = selected(A, annotations={"poddefault.admission.kubeflow.org/exclude": "false"})
    assert ctr(applied(p, poddefault(A, env=[ENV_X])))["env"] == [ENV_X]


def test_mirror_pod_is_left_alone():
    p = selected(A, annotations={"kubernetes.io/config.mirror": "abc"})
    assert applied(p, poddefault(A, env=[ENV_X])) == p


def test_labels_added_by_a_poddefault_select_further_poddefaults():
    gpu = poddefault("gpu", labels={"accelerator": "nvidia"})
    drivers = poddefault("drivers", selector={"matchLabels": {"accelerator": "nvidia"}}, env=[ENV_X])
    out = applied(selected("gpu"), drivers, gpu)
    assert ctr(out)["env"] == [ENV_X]
    assert apply_poddefaults(out, [gpu, drivers]) == out


def test_poddefault_with_an_invalid_selector_selects_nothing():
    bad = poddefault(A, selector={"matchExpressions": [{"key": A, "operator": "Is", "values": ["true"]}]},
                     env=[ENV_X])
    p = selected(A)
    assert applied(p, bad) == p


def test_poddefault_of_the_wrong_shape_is_skipped():
    bad = poddefault(A, env={"X": "1"})
    p = selected(A)
    assert applied(p, bad, poddefault("b", selector={}, env=[ENV_X]))["spec"]["containers"][0]["env"] == [ENV_X]


# --- conflicts -------------------------------------------------------------------------------------------

CONFLICTS = [
    # (pod, [poddefaults], fragments the message must contain)
    (selected("a", "b"), [poddefault("a", env=[ENV_X]), poddefault("b", env=[{"name": "X", "value": "2"}])],
     ['PodDefaults "a" and "b"', 'env "X"']),
    (selected("a", containers=[container("main", env=[{"name": "X", "value": "mine"}])]),
     [poddefault("a", env=[ENV_X])], ['PodDefault "a" and the pod (container "main")', 'env "X"']),
    (selected("a", "b"), [poddefault("a", volumes=[SECRET_VOL]),
                          poddefault("b", volumes=[{"name": "gcp", "emptyDir": {}}])],
     ['PodDefaults "a" and "b"', 'volume "gcp"']),
    (selected("a", volumes=[{"name": "gcp", "emptyDir": {}}]), [poddefault("a", volumes=[SECRET_VOL])],
     ['PodDefault "a" and the pod', 'volume "gcp"']),
    (selected("a", "b"), [poddefault("a", volumeMounts=[SECRET_MOUNT]),
                          poddefault("b", volumeMounts=[{"name": "gcp", "mountPath": "/elsewhere"}])],
     ['PodDefaults "a" and "b"', 'volumeMount "gcp"']),
    (selected("a", "b"), [poddefault("a", volumeMounts=[SECRET_MOUNT]),
                          poddefault("b", volumeMounts=[{"name": "other", "mountPath": "/secret/gcp"}])],
     ['PodDefaults "a" and "b"', 'volumeMount mountPath "/secret/gcp"']),
    (selected("a", "b"), [poddefault("a", tolerations=[TOL_GPU]),
                          poddefault("b", tolerations=[{**TOL_GPU, "effect": "NoExecute"}])],
     ['PodDefaults "a" and "b"', 'toleration "nvidia.com/gpu"']),
    (selected("a", "b"), [poddefault("a", imagePullSecrets=[{"name": "r"}]),
                          poddefault("b", imagePullSecrets=[{"name": "r", "extra": "x"}])],
     ['PodDefaults "a" and "b"', 'imagePullSecret "r"']),
    (selected("a", "b"), [poddefault("a", labels={"team": "a"}), poddefault("b", labels={"team": "b"})],
     ['PodDefaults "a" and "b"', 'label "team"']),
    (selected("a"), [poddefault("a", labels={"a": "false"})], ['PodDefault "a" and the pod', 'label "a"']),
    (selected("a", "b"), [poddefault("a", annotations={"x/y": "1"}), poddefault("b", annotations={"x/y": "2"})],
     ['PodDefaults "a" and "b"', 'annotation "x/y"']),
    (selected("a", "b"), [poddefault("a", serviceAccountName="one"), poddefault("b", serviceAccountName="two")],
     ['PodDefaults "a" and "b"', "serviceAccountName"]),
    (selected("a", "b"), [poddefault("a", automountServiceAccountToken=True),
                          poddefault("b", automountServiceAccountToken=False)],
     ['PodDefaults "a" and "b"', "automountServiceAccountToken"]),
    (selected("a", "b"), [poddefault("a", sidecars=[container("proxy", image="p:1")]),
                          poddefault("b", sidecars=[container("proxy", image="p:2")])],
     ['PodDefaults "a" and "b"', 'sidecar "proxy"']),
    (selected("a", "b"), [poddefault("a", initContainers=[container("init", image="i:1")]),
                          poddefault("b", initContainers=[container("init", image="i:2")])],
     ['PodDefaults "a" and "b"', 'initContainer "init"']),
    (selected("a"), [poddefault("a", env=[ENV_X, {"name": "X", "value": "2"}])],
     ['PodDefault "a" sets env "X" twice']),
]


@pytest.mark.parametrize(("p", "pds", "fragments"), CONFLICTS,
                         ids=[f"{i}-{frags[1] if len(frags) > 1 else frags[0]}" for i, (_, _, frags) in
                              enumerate(CONFLICTS)])
def test_conflict_is_rejected_naming_both_sides_the_field_and_the_key(p, pds, fragments):
    with pytest.raises(PodDefaultConflict) as info:
        apply_poddefaults(p, pds)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert "exclude" in str(info.value)  # and says what to change


def test_conflict_lists_the_poddefaults_involved():
    with pytest.raises(PodDefaultConflict) as info:
        apply_poddefaults(selected("b", "a", "c"), [poddefault("b", env=[ENV_X]),
                                                    poddefault("a", env=[{"name": "X", "value": "2"}]),
                                                    poddefault("c", env=[{"name": "Y", "value": "3"}])])
    assert info.value.poddefaults == ["a", "b"]


def test_env_conflict_is_reported_once_for_many_containers():
    p = selected("a", "b", containers=[container("one"), container("two")])
    with pytest.raises(PodDefaultConflict) as info:
        apply_poddefaults(p, [poddefault("a", env=[ENV_X]), poddefault("b", env=[{"name": "X", "value": "2"}])])
    assert len(info.value.conflicts) == 1


@pytest.mark.parametrize(("mine", "theirs"), [
    ({"name": "X", "value": ""}, {"name": "X"}),
    ({"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
     {"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"}}}),
])
def test_env_equal_after_apiserver_defaulting_is_no_conflict(mine, theirs):
    out = applied(selected(A, containers=[container("main", env=[theirs])]), poddefault(A, env=[mine]))
    assert ctr(out)["env"] == [theirs]


@pytest.mark.parametrize(("mine", "theirs"), [
    (SECRET_VOL, {"name": "gcp", "secret": {"secretName": "gcp-secret", "defaultMode": 420}}),
    ({"name": "s", "emptyDir": {"sizeLimit": "1024Mi"}}, {"name": "s", "emptyDir": {"sizeLimit": "1Gi"}}),
    ({"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
     {"name": "t", "projected": {"defaultMode": 420,
                                 "sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}}]}}),
    ({"name": "h", "hostPath": {"path": "/data"}}, {"name": "h", "hostPath": {"path": "/data", "type": ""}}),
])
def test_volume_equal_after_apiserver_defaulting_is_no_conflict(mine, theirs):
    out = applied(selected(A, volumes=[theirs]), poddefault(A, volumes=[mine]))
    assert out["spec"]["volumes"] == [theirs]


def test_toleration_seconds_zero_is_not_the_same_as_unset():
    tol = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    with pytest.raises(PodDefaultConflict):
        applied(selected(A, tolerations=[{**tol, "tolerationSeconds": 0}]), poddefault(A, tolerations=[tol]))


def test_pod_with_several_tolerations_for_one_key_accepts_an_identical_one():
    t1, t2 = {**TOL_GPU}, {**TOL_GPU, "effect": "NoExecute"}
    out = applied(selected(A, tolerations=[t1, t2]), poddefault(A, tolerations=[t2]))
    assert out["spec"]["tolerations"] == [t1, t2]


def test_recorded_annotation_of_another_version_is_not_a_conflict():
    p = selected(A, annotations={"poddefault.admission.kubeflow.org/poddefault-add-a": "old"})
    applied(p, poddefault(A, rv="new"))


# --- beyond Kubeflow: order, idempotence, inputs -----------------------------------------------------


def test_result_does_not_depend_on_the_order_of_poddefaults():
    pds = [poddefault("b", env=[{"name": "B", "value": "b"}], command=["b"]),
           poddefault("a", env=[{"name": "A", "value": "a"}], command=["a"])]
    assert applied(selected("a", "b"), *pds) == applied(selected("a", "b"), *reversed(pds))


def test_applying_twice_changes_nothing():
    pds = [poddefault(A, env=[ENV_X], envFrom=[{"secretRef": {"name": "s"}}], volumes=[SECRET_VOL],
                      volumeMounts=[SECRET_MOUNT], tolerations=[TOL_GPU], imagePullSecrets=[{"name": "r"}],
                      labels={"l": "1"}, annotations={"n": "1"}, command=["c"], args=["a"],
                      serviceAccountName="sa", initContainers=[container("init")], sidecars=[container("side")])]
    once = apply_poddefaults(selected(A), pds)
    assert apply_poddefaults(once, pds) == once


def test_reapplying_to_the_pod_the_apiserver_stored_changes_nothing():
    pds = [poddefault(A, env=[ENV_X, {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                      volumes=[SECRET_VOL, {"name": "cm", "configMap": {"name": "cm", "optional": False}}],
                      volumeMounts=[{**SECRET_MOUNT, "readOnly": False}], sidecars=[container("side")])]
    stored = apiserver_roundtrip(apply_poddefaults(selected(A), pds))
    assert apply_poddefaults(stored, pds) == stored


def test_inputs_are_not_modified():
    p = selected(A)
    pds = [poddefault(A, env=[ENV_X], volumes=[SECRET_VOL], labels={"l": "1"}, sidecars=[container("s")])]
    before = copy.deepcopy((p, pds))
    out = apply_poddefaults(p, pds)
    assert (p, pds) == before
    ctr(out)["env"][0]["value"] = "changed"  # the result shares nothing with the inputs
    out["spec"]["containers"][1]["image"] = "changed"
    assert (p, pds) == before

