"""Request validation: structure (422 via pydantic) and paths (400), hostile inputs as their own category."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from builder.model import BuildRequest
from builder.settings import Settings
from builder.validate import RequestRejected, check_request, normalise_relative_path

REG = "registry.local:5000"
SETTINGS = Settings(registry=REG)


def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"context": {"pvc": "workspace", "path": "proj"}, "destination": f"{REG}/alice/app:v1"}
    b.update(over)
    return b


@pytest.mark.parametrize(
    ("path", "expected"),
    [("proj", "proj"), ("a/b/c", "a/b/c"), ("proj/", "proj"), ("", ""), (".", ""),
     ("My Project/v1.2", "My Project/v1.2"), ("a-b_c.d,e+f=g@h", "a-b_c.d,e+f=g@h"), (".hidden/x", ".hidden/x")],
)
def test_context_paths_are_canonicalised(path: str, expected: str) -> None:
    assert normalise_relative_path(path, "context.path", allow_root=True) == expected


@pytest.mark.parametrize(
    "path",
    ["/etc", "/", "..", "../x", "a/../../b", "a/..", "a/./b", "./a", "a//b", "a\\b", "..\\x", "a/\x00b", "a\nb",
     "a/$(id)", "a/`id`", "a/;rm", "a/*", "~/x", "a/ b", "a/b ", "x" * 256, "/".join(["a"] * 65), "a/\u202eb",
     "a/b:c", "a/|b", "a/<b>", "a/'b'", 'a/"b"', "a/%2e%2e"],
)
def test_hostile_context_paths_are_refused_with_400_naming_the_field(path: str) -> None:
    with pytest.raises(RequestRejected) as e:
        normalise_relative_path(path, "context.path", allow_root=True)
    assert e.value.status == 400
    assert e.value.field == "context.path"


@pytest.mark.parametrize("dockerfile", ["", ".", "/Dockerfile", "../Dockerfile", "a/../../Dockerfile"])
def test_hostile_dockerfile_paths_are_refused(dockerfile: str) -> None:
    req = BuildRequest.model_validate(body(dockerfile=dockerfile))
    with pytest.raises(RequestRejected) as e:
        check_request(req, "alice", SETTINGS)
    assert (e.value.status, e.value.field) == (400, "dockerfile")


def test_a_valid_request_is_checked_and_canonicalised() -> None:
    req = BuildRequest.model_validate(
        body(context={"pvc": "workspace", "path": "proj/"}, dockerfile="docker/Dockerfile")
    )
    checked = check_request(req, "alice", SETTINGS)
    assert checked.context_path == "proj"
    assert checked.request.context.path == "proj"
    assert checked.dockerfile == "docker/Dockerfile"
    assert str(checked.destination) == f"{REG}/alice/app:v1"


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"podSpec": {"hostPID": True}}, "podSpec"),  # unknown fields: nobody supplies pod spec
        ({"image": "evil"}, "image"),
        ({"volumes": []}, "volumes"),
        ({"context": {"pvc": "w", "path": "p", "hostPath": "/"}}, "hostPath"),
        ({"context": {"pvc": "W_S", "path": "p"}}, "pvc"),
        ({"context": {"path": "p"}}, "pvc"),
        ({"destination": None}, "destination"),
        ({"destination": "x" * 513}, "destination"),
        ({"buildArgs": {"1BAD": "x"}}, "buildArgs"),
        ({"buildArgs": {"A": "line\nbreak"}}, "buildArgs"),
        ({"buildArgs": {f"A{i}": "x" for i in range(65)}}, "buildArgs"),
        ({"labels": {"a b": "x"}}, "labels"),
        ({"target": "--destination=evil"}, "target"),
        ({"pushSecret": "../secret"}, "pushSecret"),
        ({"serviceAccountName": "Admin"}, "serviceAccountName"),
        ({"contentHash": "md5:abc"}, "contentHash"),
        ({"cache": "maybe"}, "cache"),
        ({"dockerfile": "D" * 1025}, "dockerfile"),
    ],
)
def test_malformed_or_unknown_fields_fail_validation_naming_the_field(over: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as e:
        BuildRequest.model_validate(body(**over))
    assert field in str(e.value)


def test_wire_format_is_camel_case_and_round_trips() -> None:
    b = body(buildArgs={"A": "1"}, pushSecret="regcred", serviceAccountName="builder", contentHash="sha256:" + "0" * 64)
    req = BuildRequest.model_validate(b)
    assert req.push_secret == "regcred"
    dumped = req.model_dump(by_alias=True, exclude_none=True)
    assert dumped["pushSecret"] == "regcred" and dumped["buildArgs"] == {"A": "1"}
    assert BuildRequest.model_validate(dumped) == req
