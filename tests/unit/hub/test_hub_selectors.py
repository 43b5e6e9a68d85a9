"""Selector satisfaction: which labels make chosen PodDefaults apply, and why some never can."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub_config.form import labels_for_selection
from hub_config.selectors import (
    SelectionConflict,
    applied_poddefaults,
    is_valid_label_key,
    is_valid_label_value,
    selector_matches,
)


def pd(name: str, selector: Any = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"desc": f"{name} desc", **spec}
    if selector is not None:
        body["selector"] = selector
    return {"apiVersion": "kubeflow.org/v1alpha1", "kind": "PodDefault", "metadata": {"name": name}, "spec": body}


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


SATISFIABLE = [
    # (id, poddefaults, chosen, base labels, expected labels)
    ("match_labels", [pd("a", {"matchLabels": {"add-secret": "true"}})], ["a"], {}, {"add-secret": "true"}),
    ("in_takes_first_value", [pd("a", {"matchExpressions": [expr("tier", "In", "gold", "silver")]})], ["a"], {},
     {"tier": "gold"}),
    ("exists_gets_true", [pd("a", {"matchExpressions": [expr("gpu", "Exists")]})], ["a"], {}, {"gpu": "true"}),
    ("notin_sets_nothing", [pd("a", {"matchExpressions": [expr("tier", "NotIn", "gold")]})], ["a"], {}, {}),
    ("doesnotexist_sets_nothing", [pd("a", {"matchExpressions": [expr("x", "DoesNotExist")]})], ["a"], {}, {}),
    ("empty_selector", [pd("a", {})], ["a"], {}, {}),
    ("two_in_intersect", [pd("a", {"matchExpressions": [expr("t", "In", "x", "y")]}),
                          pd("b", {"matchExpressions": [expr("t", "In", "z", "y")]})], ["a", "b"], {}, {"t": "y"}),
    ("in_skips_notin_value", [pd("a", {"matchExpressions": [expr("t", "In", "x", "y")]}),
                              pd("b", {"matchExpressions": [expr("t", "NotIn", "x")]})], ["a", "b"], {}, {"t": "y"}),
    ("exists_avoids_notin_true", [pd("a", {"matchExpressions": [expr("g", "Exists"), expr("g", "NotIn", "true")]})],
     ["a"], {}, {"g": "enabled"}),
    ("exists_avoids_all_defaults",
     [pd("a", {"matchExpressions": [expr("g", "Exists"), expr("g", "NotIn", "true", "enabled", "yes", "1")]})],
     ["a"], {}, {"g": "true-0"}),
    ("exists_and_match_labels", [pd("a", {"matchLabels": {"g": "v100"}}),
                                 pd("b", {"matchExpressions": [expr("g", "Exists")]})], ["a", "b"], {}, {"g": "v100"}),
    ("mixed_keys", [pd("a", {"matchLabels": {"m": "1"}, "matchExpressions": [expr("n", "In", "2")]})], ["a"], {},
     {"m": "1", "n": "2"}),
    ("base_label_already_satisfies", [pd("a", {"matchLabels": {"component": "singleuser-server"}})], ["a"],
     {"component": "singleuser-server"}, {}),
    ("exists_satisfied_by_base", [pd("a", {"matchExpressions": [expr("app", "Exists")]})], ["a"],
     {"app": "jupyterhub"}, {}),
    ("duplicate_choice_once", [pd("a", {"matchLabels": {"x": "1"}})], ["a", "a"], {}, {"x": "1"}),
    ("nothing_chosen", [pd("a", {"matchLabels": {"x": "1"}})], [], {}, {}),
]


@pytest.mark.parametrize(("poddefaults", "chosen", "base", "expected"),
                         [c[1:] for c in SATISFIABLE], ids=[c[0] for c in SATISFIABLE])
def test_labels_for_selection_satisfies_every_chosen_selector(poddefaults, chosen, base, expected) -> None:
    labels = labels_for_selection(poddefaults, chosen, base)
    assert labels == expected
    final = {**base, **labels}
    by_name = {p["metadata"]["name"]: p for p in poddefaults}
    for name in chosen:
        assert selector_matches(by_name[name]["spec"].get("selector", {}), final), name


CONFLICTS = [
    # (id, poddefaults, chosen, base, words that must be in the reason, names involved)
    ("in_with_no_values", [pd("a", {"matchExpressions": [{"key": "t", "operator": "In", "values": []}]})], ["a"], {},
     ["no values"], ("a",)),
    ("notin_with_no_values", [pd("a", {"matchExpressions": [{"key": "t", "operator": "NotIn"}]})], ["a"], {},
     ["no values"], ("a",)),
    ("match_labels_vs_notin_same_pd", [pd("a", {"matchLabels": {"t": "x"},
                                               "matchExpressions": [expr("t", "NotIn", "x")]})], ["a"], {},
     ["t"], ("a",)),
    ("match_labels_vs_in_same_pd", [pd("a", {"matchLabels": {"t": "x"},
                                            "matchExpressions": [expr("t", "In", "y")]})], ["a"], {}, ["t"], ("a",)),
    ("exists_vs_doesnotexist", [pd("a", {"matchExpressions": [expr("g", "Exists")]}),
                                pd("b", {"matchExpressions": [expr("g", "DoesNotExist")]})], ["a", "b"], {},
     ["both set and unset"], ("a", "b")),
    ("two_pds_disagree", [pd("a", {"matchLabels": {"env": "prod"}}), pd("b", {"matchLabels": {"env": "dev"}})],
     ["a", "b"], {}, ["env", "a: env=prod", "b: env=dev"], ("a", "b")),
    ("notin_vs_match_labels_across", [pd("a", {"matchLabels": {"env": "prod"}}),
                                      pd("b", {"matchExpressions": [expr("env", "NotIn", "prod")]})], ["a", "b"], {},
     ["env"], ("a", "b")),
    ("would_change_hub_label", [pd("a", {"matchLabels": {"component": "other"}})], ["a"],
     {"component": "singleuser-server"}, ["set by the hub"], ("a",)),
    ("doesnotexist_on_hub_label", [pd("a", {"matchExpressions": [expr("app", "DoesNotExist")]})], ["a"],
     {"app": "jupyterhub"}, ["must be unset"], ("a",)),
    ("notin_hub_value", [pd("a", {"matchExpressions": [expr("app", "NotIn", "jupyterhub")]})], ["a"],
     {"app": "jupyterhub"}, ["set by the hub"], ("a",)),
    ("unknown_operator", [pd("a", {"matchExpressions": [expr("t", "Gt", "1")]})], ["a"], {}, ["unknown"], ("a",)),
    ("exists_with_values", [pd("a", {"matchExpressions": [expr("t", "Exists", "x")]})], ["a"], {},
     ["must not list values"], ("a",)),
    ("invalid_label_value", [pd("a", {"matchLabels": {"t": "has space"}})], ["a"], {}, ["not a valid label value"],
     ("a",)),
    ("invalid_label_key", [pd("a", {"matchLabels": {"bad key!": "x"}})], ["a"], {}, ["not a valid label key"],
     ("a",)),
    ("in_only_invalid_values", [pd("a", {"matchExpressions": [expr("t", "In", "no good")]})], ["a"], {},
     ["no value of label t"], ("a",)),
    ("missing_selector_matches_nothing", [pd("a")], ["a"], {}, ["no selector"], ("a",)),
    ("selector_is_a_string", [pd("a", "app=x")], ["a"], {}, ["not a map"], ("a",)),
    ("unknown_name", [pd("a", {})], ["ghost"], {}, ["unknown configuration", "ghost"], ("ghost",)),
    ("selector_not_a_map", [pd("a", {"matchLabels": ["x"]})], ["a"], {}, ["not a map"], ("a",)),
    ("expressions_not_a_list", [pd("a", {"matchExpressions": "t In x"})], ["a"], {}, ["not a list"], ("a",)),
]


@pytest.mark.parametrize(("poddefaults", "chosen", "base", "words", "names"),
                         [c[1:] for c in CONFLICTS], ids=[c[0] for c in CONFLICTS])
def test_unsatisfiable_selection_is_a_conflict_with_reason_and_names(poddefaults, chosen, base, words, names) -> None:
    result = labels_for_selection(poddefaults, chosen, base)
    assert isinstance(result, SelectionConflict), result
    for w in words:
        assert w in result.reason
    assert set(names) <= set(result.names)


def test_unchosen_poddefault_constraints_are_ignored() -> None:
    pds = [pd("a", {"matchLabels": {"env": "prod"}}), pd("b", {"matchLabels": {"env": "dev"}})]
    assert labels_for_selection(pds, ["a"]) == {"env": "prod"}


def test_applied_poddefaults_includes_unchosen_matches_and_empty_selectors() -> None:
    pds = [pd("a", {"matchLabels": {"x": "1"}}), pd("b", {"matchExpressions": [expr("x", "Exists")]}),
           pd("c", {}), pd("d", {"matchLabels": {"y": "1"}}), pd("e")]
    assert applied_poddefaults(pds, {"x": "1"}) == ["a", "b", "c"]


@pytest.mark.parametrize(("key", "ok"), [
    ("a", True), ("notebook-platform.io/poddefaults", True), ("A.b_c-d", True), ("x" * 63, True),
    ("x" * 64, False), ("", False), ("-a", False), ("a/", False), ("Bad.Prefix/a", False), ("a b", False),
])
def test_label_key_validity(key: str, ok: bool) -> None:
    assert is_valid_label_key(key) is ok


@pytest.mark.parametrize(("value", "ok"), [("", True), ("true", True), ("a.b-c_d", True), ("x" * 64, False),
                                           ("-a", False), ("<script>", False)])
def test_label_value_validity(value: str, ok: bool) -> None:
    assert is_valid_label_value(value) is ok


# -- property: whatever labels come back make every chosen PodDefault match ------------------------------

_keys = st.sampled_from(["a", "b", "c", "x.io/d"])
_values = st.sampled_from(["1", "2", "3", "true"])
_expr = st.one_of(
    st.builds(lambda k, vs: expr(k, "In", *vs), _keys, st.lists(_values, min_size=1, max_size=3)),
    st.builds(lambda k, vs: expr(k, "NotIn", *vs), _keys, st.lists(_values, min_size=1, max_size=3)),
    st.builds(lambda k: expr(k, "Exists"), _keys),
    st.builds(lambda k: expr(k, "DoesNotExist"), _keys),
)
_selector = st.builds(lambda ml, ex: {"matchLabels": ml, "matchExpressions": ex},
                      st.dictionaries(_keys, _values, max_size=2), st.lists(_expr, max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.lists(_selector, min_size=1, max_size=4), st.dictionaries(_keys, _values, max_size=2))
def test_property_result_matches_every_chosen_selector_or_none_can(selectors, base) -> None:
    pds = [pd(f"p{i}", s) for i, s in enumerate(selectors)]
    names = [p["metadata"]["name"] for p in pds]
    result = labels_for_selection(pds, names, base)
    if isinstance(result, SelectionConflict):
        # Brute force over the small universe: no label set extending base may satisfy all of them.
        import itertools

        free = [k for k in ["a", "b", "c", "x.io/d"] if k not in base]
        for combo in itertools.product([None, "1", "2", "3", "true", "enabled"], repeat=len(free)):
            labels = {**base, **{k: v for k, v in zip(free, combo, strict=True) if v is not None}}
            assert not all(selector_matches(s, labels) for s in selectors), (result, labels)
    else:
        assert not set(result) & set(base)
        final = {**base, **result}
        assert all(selector_matches(s, final) for s in selectors)
