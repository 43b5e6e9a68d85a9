"""JSON Patch construction (RFC 6902/6901) and the canonical forms used to judge "identical"."""

from __future__ import annotations

from decimal import Decimal

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook import normalize
from webhook.patch import escape, make_patch, same


@pytest.mark.parametrize(("key", "token"), [
    ("plain", "plain"), ("a/b", "a~1b"), ("a~b", "a~0b"), ("~/", "~0~1"), ("~1", "~01"),
])
def test_pointer_tokens_escape_tilde_before_slash(key, token):
    assert escape(key) == token


def test_json_equality_tells_booleans_from_numbers():
    assert not same(True, 1)
    assert not same({"a": 1}, {"a": 1.0})
    assert same({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})


def test_patch_replaces_a_boolean_that_python_thinks_equals_one():
    assert make_patch({"x": 1}, {"x": True}) == [{"op": "replace", "path": "/x", "value": True}]


def test_patch_appends_to_lists_by_index():
    assert make_patch({"l": [1]}, {"l": [1, 2, 3]}) == [
        {"op": "add", "path": "/l/1", "value": 2}, {"op": "add", "path": "/l/2", "value": 3}]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "a", "b/c", "~"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "c/d", "e~f"]), inner,
                                                                max_size=3),
    max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(json_values, json_values)
def test_patch_turns_any_document_into_any_other(before, after):
    assert same(jsonpatch.apply_patch(before, make_patch(before, after)), after)


@pytest.mark.parametrize(("a", "b"), [
    ("1Gi", "1024Mi"), ("1G", "1000M"), ("500m", "0.5"), ("1e3", "1k"), ("1", 1), ("2Ki", "2048"),
])
def test_equal_quantities_parse_equal(a, b):
    assert normalize.parse_quantity(a) == normalize.parse_quantity(b)


def test_unparsable_quantity_is_kept_as_is():
    assert normalize.parse_quantity("lots") == "lots"
    assert normalize.parse_quantity("1Gi") == Decimal(2) ** 30


def test_secret_volume_mode_defaults_to_0644():
    assert normalize.volume({"name": "s", "secret": {"secretName": "x"}}) == normalize.volume(
        {"name": "s", "secret": {"secretName": "x", "defaultMode": 420}})
    assert normalize.volume({"name": "s", "secret": {"secretName": "x"}}) != normalize.volume(
        {"name": "s", "secret": {"secretName": "x", "defaultMode": 256}})


def test_env_value_and_value_from_are_not_the_same():
    assert normalize.env_var({"name": "X", "value": "a"}) != normalize.env_var(
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "a"}}})


def test_zero_divisor_is_the_same_as_unset():
    ref = {"containerName": "main", "resource": "limits.cpu"}
    assert normalize.env_var({"name": "C", "valueFrom": {"resourceFieldRef": ref}}) == normalize.env_var(
        {"name": "C", "valueFrom": {"resourceFieldRef": {**ref, "divisor": "0"}}})


def test_normalizing_does_not_modify_the_entry():
    entry = {"name": "s", "secret": {"secretName": "x"}}
    normalize.volume(entry)
    assert entry == {"name": "s", "secret": {"secretName": "x"}}
