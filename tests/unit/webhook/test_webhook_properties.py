"""Properties of the core over generated pods and PodDefaults drawn from small alphabets, so that names,
keys and labels collide often: order independence, idempotence (also after the apiserver's defaulting),
inputs never modified, and the JSON Patch reproducing the result."""

from __future__ import annotations

import copy
import os
from typing import Any

import jsonpatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from poddefault_builders import NS, apiserver_roundtrip

from webhook.mutate import PodDefaultConflict, apply_poddefaults
from webhook.patch import make_patch

# A quick run by default; `NBP_PROPERTY_EXAMPLES=2000` for a deep search.
SETTINGS = settings(max_examples=int(os.environ.get("NBP_PROPERTY_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

keys = st.sampled_from(["a", "b", "c"])
values = st.sampled_from(["1", "2"])
label_maps = st.dictionaries(keys, values, max_size=2)

env_vars = st.one_of(
    st.builds(lambda n, v: {"name": n, "value": v}, st.sampled_from(["X", "Y"]), st.sampled_from(["", "1", "2"])),
    st.builds(lambda n, api: {"name": n, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name", **api}}},
              st.sampled_from(["X", "P"]), st.sampled_from([{}, {"apiVersion": "v1"}])),
)
volumes = st.builds(
    lambda n, src: {"name": n, **src}, st.sampled_from(["v1", "v2"]),
    st.sampled_from([{"secret": {"secretName": "s1"}}, {"secret": {"secretName": "s1", "defaultMode": 420}},
                     {"secret": {"secretName": "s2"}}, {"emptyDir": {}}, {"configMap": {"name": "c"}}]))
mounts = st.builds(lambda n, p, ro: {"name": n, "mountPath": p, **ro}, st.sampled_from(["v1", "v2"]),
                   st.sampled_from(["/m1", "/m2"]), st.sampled_from([{}, {"readOnly": True}, {"readOnly": False}]))
env_from = st.sampled_from([{"secretRef": {"name": "s1"}}, {"configMapRef": {"name": "c1"}}])
tolerations = st.builds(lambda k, e: {"key": k, "operator": "Exists", "effect": e}, st.sampled_from(["k1", "k2"]),
                        st.sampled_from(["NoSchedule", "NoExecute"]))
pull_secrets = st.builds(lambda n: {"name": n}, st.sampled_from(["r1", "r2"]))
containers = st.builds(lambda n, img: {"name": n, "image": img}, st.sampled_from(["s1", "s2"]),
                       st.sampled_from(["i:1", "i:2"]))
expressions = st.builds(
    lambda k, op, vs: {"key": k, "operator": op, **({"values": vs} if op in ("In", "NotIn") else {})},
    keys, st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]), st.lists(values, min_size=1, max_size=2))
selectors = st.one_of(
    st.just({}),
    st.builds(lambda ml: {"matchLabels": ml}, label_maps),
    st.builds(lambda ex: {"matchExpressions": ex}, st.lists(expressions, min_size=1, max_size=2)),
)


def _spec(draw: Any) -> dict[str, Any]:
    optional = {
        "env": st.lists(env_vars, max_size=2),
        "envFrom": st.lists(env_from, max_size=2),
        "volumes": st.lists(volumes, max_size=2),
        "volumeMounts": st.lists(mounts, max_size=2),
        "tolerations": st.lists(tolerations, max_size=2),
        "imagePullSecrets": st.lists(pull_secrets, max_size=1),
        "labels": label_maps,
        "annotations": st.dictionaries(st.sampled_from(["n/1", "n~2"]), values, max_size=1),
        "command": st.lists(st.sampled_from(["c1", "c2"]), min_size=1, max_size=1),
        "args": st.lists(st.sampled_from(["a1", "a2"]), min_size=1, max_size=1),
        "serviceAccountName": st.sampled_from(["sa1", "sa2"]),
        "automountServiceAccountToken": st.booleans(),
        "initContainers": st.lists(containers, max_size=1),
        "sidecars": st.lists(containers, max_size=1),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(optional)), max_size=4, unique=True))
    return {field: draw(optional[field]) for field in chosen}


@st.composite
def poddefaults(draw: Any) -> list[dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(["pa", "pb", "pc", "pd"]), max_size=4, unique=True))
    out = []
    for i, name in enumerate(names):
        ns = draw(st.sampled_from([NS, NS, NS, "other"]))
        out.append({"apiVersion": "kubeflow.org/v1alpha1", "kind": "PodDefault",
                    "metadata": {"name": name, "namespace": ns, "resourceVersion": str(10 + i)},
                    "spec": {"selector": draw(selectors), **_spec(draw)}})
    return out


@st.composite
def pods(draw: Any) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(["main", "s1", "istio-proxy"]), min_size=1, max_size=2, unique=True))
    ctrs = []
    for name in names:
        ctr: dict[str, Any] = {"name": name, "image": "img"}
        for field, strat in (("env", st.lists(env_vars, max_size=2)), ("volumeMounts", st.lists(mounts, max_size=1)),
                             ("command", st.just(["own"]))):
            if draw(st.booleans()):
                ctr[field] = draw(strat)
        ctrs.append(ctr)
    meta: dict[str, Any] = {"name": "p", "namespace": NS, "labels": draw(label_maps)}
    if draw(st.integers(0, 9)) == 0:
        meta["annotations"] = {"poddefault.admission.kubeflow.org/exclude": "true"}
    spec: dict[str, Any] = {"containers": ctrs}
    if draw(st.booleans()):
        spec["volumes"] = draw(st.lists(volumes, max_size=1))
    if draw(st.booleans()):
        spec["tolerations"] = draw(st.lists(tolerations, max_size=1))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def outcome(pod: dict[str, Any], pds: list[dict[str, Any]]) -> tuple[str, Any]:
    try:
        return "ok", apply_poddefaults(pod, pds)
    except PodDefaultConflict as e:
        return "conflict", str(e)


@SETTINGS
@given(pods(), poddefaults(), st.randoms(use_true_random=False))
def test_result_is_independent_of_the_order_of_poddefaults(pod, pds, rnd):
    shuffled = list(pds)
    rnd.shuffle(shuffled)
    assert outcome(pod, pds) == outcome(pod, shuffled)


@SETTINGS
@given(pods(), poddefaults())
def test_applying_twice_equals_applying_once(pod, pds):
    kind, once = outcome(pod, pds)
    if kind == "ok":
        assert apply_poddefaults(once, pds) == once


@SETTINGS
@given(pods(), poddefaults())
def test_reapplying_after_apiserver_defaulting_changes_nothing(pod, pds):
    kind, once = outcome(pod, pds)
    if kind == "ok":
        stored = apiserver_roundtrip(once)
        assert apply_poddefaults(stored, pds) == stored


@SETTINGS
@given(pods(), poddefaults())
def test_inputs_are_never_modified(pod, pds):
    before = copy.deepcopy((pod, pds))
    outcome(pod, pds)
    assert (pod, pds) == before


@SETTINGS
@given(pods(), poddefaults())
def test_json_patch_turns_the_pod_into_the_result(pod, pds):
    kind, result = outcome(pod, pds)
    if kind == "ok":
        ops = make_patch(pod, result)
        assert jsonpatch.apply_patch(pod, ops) == result
        assert all(op["op"] in ("add", "replace") for op in ops)  # the core only adds and sets
