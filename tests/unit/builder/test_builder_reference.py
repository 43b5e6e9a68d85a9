"""Image references and the destination allow-list, hostile inputs first."""

from __future__ import annotations

import pytest

from builder.reference import InvalidReference, is_allowed, parse_reference
from builder.settings import Settings
from builder.validate import RequestRejected, check_destination

REG = "registry.local:5000"
SETTINGS = Settings(registry=REG)


@pytest.mark.parametrize(
    ("ref", "domain", "path", "tag", "digest"),
    [
        ("registry.local:5000/alice/app:v1", "registry.local:5000", "alice/app", "v1", None),
        ("registry.local:5000/alice/app", "registry.local:5000", "alice/app", None, None),
        ("ubuntu", "docker.io", "library/ubuntu", None, None),
        ("ubuntu:24.04", "docker.io", "library/ubuntu", "24.04", None),
        ("localhost/a/b", "localhost", "a/b", None, None),
        ("REGISTRY.local:5000/alice/app", "registry.local:5000", "alice/app", None, None),
        ("[::1]:5000/alice/app", "[::1]:5000", "alice/app", None, None),
        ("r.io/a/b@sha256:" + "a" * 64, "r.io", "a/b", None, "sha256:" + "a" * 64),
        ("r.io/a/b__c.d-e/f:t_1.2-x", "r.io", "a/b__c.d-e/f", "t_1.2-x", None),
    ],
)
def test_references_parse_into_normalised_parts(ref, domain, path, tag, digest) -> None:
    r = parse_reference(ref)
    assert (r.domain, r.path, r.tag, r.digest) == (domain, path, tag, digest)


@pytest.mark.parametrize(
    "ref",
    [
        "", " r.io/a", "r.io/a\n", "r.io/A/b", "r.io/a/../b", "r.io/a/./b", "r.io//a", "r.io/a/", "r.io/-a",
        "r.io/a:", "r.io/a:-bad", "r.io/a:" + "t" * 129, "r.io/a@sha256:short", "r.io/a b", "r.io/a\x00",
        "r.io/a?x", "r.io/a#x", "r.io/a/b;rm -rf /", "r.io:port/a", "r.io/" + "a" * 300,
        f"{REG}.evil.io/alice/app", f"evil.io/{REG}/alice/app",
    ],
)
def test_malformed_references_are_refused(ref: str) -> None:
    with pytest.raises(InvalidReference):
        parse_reference(ref)


@pytest.mark.parametrize(
    ("destination", "allowed"),
    [
        (f"{REG}/alice/app:v1", True),
        (f"{REG}/alice/team/app", True),
        (f"{REG}/alice", True),
        ("REGISTRY.LOCAL:5000/alice/app", True),  # host names are case-insensitive
        (f"{REG}/alice-evil/app", False),  # prefix on a component boundary only
        (f"{REG}/aliceevil/app", False),
        (f"{REG}/bob/app", False),
        (f"{REG}/app", False),
        ("registry.local:5001/alice/app", False),  # same host, other port
        ("registry.local/alice/app", False),
        ("other.io/alice/app", False),
        ("alice/app", False),  # docker.io
        ("registry.local.evil.io:5000/alice/app", False),
        ("evil.io/registry.local/alice/app", False),
    ],
)
def test_allow_list_matches_whole_components_of_the_normalised_reference(destination: str, allowed: bool) -> None:
    assert is_allowed(parse_reference(destination), [f"{REG}/alice"]) is allowed


@pytest.mark.parametrize(
    ("destination", "status"),
    [
        (f"{REG}/alice/../bob/app", 400),
        (f"{REG}/alice/./app", 400),
        (f"{REG}/Alice/app", 400),  # upper case is not a valid repository
        (f"{REG}/alice/app@sha256:" + "0" * 64, 400),  # the digest is the build's result, not its target
        (f"{REG}/alice/app:v1@sha256:" + "0" * 64, 400),
        (f"{REG}/alice-evil/app", 403),
        (f"{REG}/bob/app", 403),
        ("docker.io/alice/app", 403),
        ("alice/app", 403),
    ],
)
def test_hostile_destinations_are_refused_with_400_or_403(destination: str, status: int) -> None:
    with pytest.raises(RequestRejected) as e:
        check_destination(destination, "alice", SETTINGS)
    assert e.value.status == status
    assert e.value.field == "destination"


def test_refusal_names_the_allowed_prefix() -> None:
    with pytest.raises(RequestRejected) as e:
        check_destination(f"{REG}/bob/app", "alice", SETTINGS)
    assert f"{REG}/alice/..." in e.value.message


def test_several_templates_and_a_tag_are_allowed() -> None:
    s = Settings(registry=REG, allowed_destinations=["{registry}/{namespace}", "ghcr.io/acme/{namespace}"])
    assert check_destination("ghcr.io/acme/alice/x:1", "alice", s).tag == "1"
    with pytest.raises(RequestRejected):
        check_destination("ghcr.io/acme/bob/x:1", "alice", s)
