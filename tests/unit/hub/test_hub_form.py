"""The spawn form: profiles, configurations (availability, preselection) and hostile PodDefault text."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from hub_config import constants as k
from hub_config.form import (
    configurations,
    initialized_profiles,
    merge_planned,
    options_from_form,
    render_form,
)
from hub_config.profiles import profile_list
from hub_config.settings import HubSettings


def pd(name: str, selector: dict[str, Any] | None = None, desc: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"desc": desc if desc is not None else f"{name} desc"}
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": {"name": name}, "spec": spec}


class Inputs(HTMLParser):
    """Collects form inputs and script tags, the way a browser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.scripts = 0
        self.options: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            self.inputs.append(dict(attrs))
        if tag == "option":
            self.options.append(dict(attrs))
        if tag == "script":
            self.scripts += 1


def parse(html_text: str) -> Inputs:
    p = Inputs()
    p.feed(html_text)
    return p


AVAILABILITY = [
    # (id, poddefault, available, always, reason words)
    ("match_labels", pd("a", {"matchLabels": {"a": "true"}}), True, False, []),
    ("match_expressions_only", pd("a", {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}), True, False, []),
    ("empty_selector", pd("a", {}), True, True, []),
    ("in_without_values", pd("a", {"matchExpressions": [{"key": "t", "operator": "In", "values": []}]}), False,
     False, ["no values"]),
    ("labels_contradict_expression", pd("a", {"matchLabels": {"t": "x"},
                                              "matchExpressions": [{"key": "t", "operator": "In", "values": ["y"]}]}),
     False, False, ["t"]),
    ("notin_contradicts_labels", pd("a", {"matchLabels": {"t": "x"},
                                          "matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["x"]}]}),
     False, False, ["t"]),
    ("changes_hub_label", pd("a", {"matchLabels": {"component": "evil"}}), False, False, ["set by the hub"]),
]


@pytest.mark.parametrize(("poddefault", "available", "always", "words"), [a[1:] for a in AVAILABILITY],
                         ids=[a[0] for a in AVAILABILITY])
def test_configuration_availability(poddefault, available, always, words) -> None:
    (c,) = configurations([poddefault], base_labels={"component": "singleuser-server"})
    assert (c.available, c.always) == (available, always)
    for w in words:
        assert w in c.reason


def test_unavailable_configuration_is_rendered_disabled_with_reason_not_raised() -> None:
    configs = configurations([pd("broken", {"matchExpressions": [{"key": "t", "operator": "In", "values": []}]}),
                              pd("ok", {"matchLabels": {"ok": "true"}})])
    html_text = render_form([], configs)
    inputs = {i["id"]: i for i in parse(html_text).inputs}
    assert "disabled" in inputs["nbp-cfg-broken"] and "name" not in inputs["nbp-cfg-broken"]
    assert inputs["nbp-cfg-ok"]["name"] == k.FORM_CONFIGURATION and "disabled" not in inputs["nbp-cfg-ok"]
    assert "unavailable: broken: t In has no values" in html_text


def test_operator_defaults_are_prechecked_and_previous_choice_wins() -> None:
    pds = [pd("a", {"matchLabels": {"a": "1"}}), pd("b", {"matchLabels": {"b": "1"}})]
    configs = configurations(pds, preselected=["a"])
    first = {i["value"]: i for i in parse(render_form([], configs)).inputs}
    assert "checked" in first["a"] and "checked" not in first["b"]
    again = {i["value"]: i for i in parse(render_form([], configs, {"configurations": ["b"]})).inputs}
    assert "checked" not in again["a"] and "checked" in again["b"]


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ 7*7 }}{% for x in range(3) %}",
    "</fieldset></form><form action=//evil>",
    "&lt;already escaped&gt;",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_poddefault_desc_and_name_are_escaped(text: str) -> None:
    configs = configurations([pd("n", {"matchLabels": {"n": "1"}}, desc=text)])
    # A name cannot hold these characters in Kubernetes, but the form must not trust that either.
    configs.append(configurations([pd(text, {})])[0])
    html_text = render_form([], configs)
    assert "<script>alert" not in html_text and "<img" not in html_text and "<form" not in html_text
    assert "{{" not in html_text and "{%" not in html_text
    assert parse(html_text).scripts == 0
    assert len(parse(html_text).inputs) == 2


def test_hostile_profile_text_is_escaped_too() -> None:
    profiles = [{"slug": "s", "display_name": "<b onmouseover=x>", "description": "<script>x</script>",
                 "profile_options": {"image": {"display_name": "<i>", "choices": {
                     "c": {"display_name": "<script>y</script>", "default": True}}}}}]
    html_text = render_form(profiles, [])
    assert "<script>" not in html_text and "<b " not in html_text and "<i>" not in html_text


def test_profiles_render_with_kubespawner_field_names_and_defaults() -> None:
    settings = HubSettings(
        profiles=[{"slug": "small", "display_name": "Small"},
                  {"slug": "gpu", "display_name": "GPU", "gpus": 1, "default": True}],
        images=[{"slug": "base", "display_name": "Base", "image": "base:1"},
                {"slug": "torch", "display_name": "Torch", "image": "torch:1", "default": True}],
    )
    html_text = render_form(profile_list(settings), [])
    parsed = parse(html_text)
    radios = {i["value"]: i for i in parsed.inputs if i.get("type") == "radio"}
    assert set(radios) == {"small", "gpu"} and "checked" in radios["gpu"] and "checked" not in radios["small"]
    assert 'name="profile-option-gpu--image"' in html_text
    assert [o["value"] for o in parsed.options if "selected" in o] == ["torch", "torch"]


def test_previous_profile_and_option_are_preselected() -> None:
    profiles = profile_list(HubSettings(
        profiles=[{"slug": "a", "display_name": "A"}, {"slug": "b", "display_name": "B"}],
        images=[{"slug": "x", "display_name": "X", "image": "x"}, {"slug": "y", "display_name": "Y", "image": "y"}]))
    parsed = parse(render_form(profiles, [], {"profile": "b", "image": "y"}))
    radios = {i["value"]: i for i in parsed.inputs if i.get("type") == "radio"}
    assert "checked" in radios["b"] and "checked" not in radios["a"]
    assert [o["value"] for o in parsed.options if "selected" in o] == ["x", "y"]


def test_form_with_no_poddefaults_says_so() -> None:
    assert "No configurations" in render_form([], [])


def test_preview_button_only_when_url_given() -> None:
    assert "nbp-preview" not in render_form([], [])
    html_text = render_form([], [], preview_url="/hub/spawn-preview")
    assert 'data-url="/hub/spawn-preview"' in html_text and parse(html_text).scripts == 1


FORMS = [
    ("profile_and_options", {"profile": ["gpu"], "profile-option-gpu--image": ["torch"],
                             "profile-option-small--image": ["base"], "configuration": ["a", "b"]},
     {"profile": "gpu", "image": "torch", "configurations": ["a", "b"]}),
    ("nothing_checked_is_explicit_empty", {"profile": ["small"]}, {"profile": "small", "configurations": []}),
    ("duplicates_and_blanks_dropped", {"configuration": ["a", "", "a"]}, {"configurations": ["a"]}),
    ("unknown_fields_ignored", {"evil": ["1"], "configuration": ["a"]}, {"configurations": ["a"]}),
]


@pytest.mark.parametrize(("formdata", "expected"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS])
def test_options_from_form(formdata: dict[str, list[str]], expected: dict[str, Any]) -> None:
    assert options_from_form(formdata) == expected


def test_initialized_profiles_follow_kubespawner_defaults() -> None:
    out = initialized_profiles([{"display_name": "Big Machine"}, {"display_name": "x", "slug": "x"}])
    assert out[0]["slug"] == "big-machine" and out[0]["default"] is True and "default" not in out[1]


def test_planned_default_poddefaults_show_before_the_namespace_exists() -> None:
    listed = [pd("a", {})]
    planned = [pd("a", {"matchLabels": {"other": "1"}}), pd("builder", {"matchLabels": {"b": "true"}})]
    merged = merge_planned(listed, planned)
    assert [m["metadata"]["name"] for m in merged] == ["a", "builder"]
    assert merged[0] is listed[0]


def test_ids_are_unique_so_labels_point_at_the_right_box() -> None:
    configs = configurations([pd(f"c{i}", {"matchLabels": {f"c{i}": "1"}}) for i in range(5)])
    profiles = profile_list(HubSettings(profiles=[{"slug": "a", "display_name": "A"},
                                                  {"slug": "b", "display_name": "B"}]))
    ids = re.findall(r' id="([^"]+)"', render_form(profiles, configs))
    assert len(ids) == len(set(ids))
