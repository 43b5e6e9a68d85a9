"""Label selector semantics, as metav1.LabelSelectorAsSelector defines them."""

from __future__ import annotations

import pytest

from webhook.selector import compile_selector

CASES = [
    # (selector, labels, matches)
    ({}, {}, True),
    ({}, {"any": "thing"}, True),
    (None, {"a": "1"}, False),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchLabels": {"a": "1"}}, {}, False),
    ({"matchLabels": {"a": "1", "b": "2"}}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "3"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": "1"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "1"}, False),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}, {"a": "1"}, False),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
     {"a": "1", "b": "x"}, True),
]


@pytest.mark.parametrize(("selector", "labels", "expected"), CASES)
def test_selector_matches_like_the_apiserver(selector, labels, expected):
    assert compile_selector(selector).matches(labels) is expected


@pytest.mark.parametrize("selector", [
    {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["1"]}]},
    {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
    {"matchExpressions": [{"key": "a", "operator": "NotIn"}]},
    {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["1"]}]},
    {"matchExpressions": [{"operator": "Exists"}]},
    {"matchExpressions": "a=1"},
    {"matchLabels": {"a": 1}},
    "a=1",
])
def test_invalid_selector_matches_nothing_and_says_why(selector):
    compiled = compile_selector(selector)
    assert not compiled.matches({"a": "1"})
    assert not compiled.matches({})
    assert compiled.error
