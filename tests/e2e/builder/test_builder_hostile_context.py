"""Hostile build contexts on a real volume: a context folder that is a symlink out of the volume.

Two layers, both shown on the real node. The installed builder asks the claim's volume agent (a pod in the
user's namespace that mounts the claim read-only) and refuses such a context with a 400 naming
`context.path`, before any Job exists. Underneath, the Job mounts the context folder as a `subPath`, which the
kubelet refuses when it resolves outside the volume: a builder without the agent (here one run in-process
with `volume_agent: false`) still never builds the node's files; the build fails with the kubelet's reason.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from builder_e2e import BuilderUser, base_image, run_build, write_files
from platform_e2e import NAMESPACE, RELEASE, Platform
from support import serve_on_loopback

from builder import constants as c
from builder.app import create_app
from builder.settings import Settings


@pytest.fixture(scope="module")
def contexts(platform: Platform, builder_user: BuilderUser) -> str:
    """`real/` with a Dockerfile, `links/evil -> /etc`, `links/good -> ../real`, `bare/` without a Dockerfile."""
    base = base_image(platform)
    write_files(platform, builder_user, base, "real", {"Dockerfile": f"FROM {base}\nRUN true\n"})
    write_files(platform, builder_user, base, "bare", {"README": "no Dockerfile here\n"})
    write_files(platform, builder_user, base, "links", {}, links={"evil": "/etc", "good": "../real"})
    return base


def post(user: BuilderUser, body: dict[str, object]) -> httpx.Response:
    with httpx.Client(base_url=user.url, timeout=120, trust_env=False) as http:
        return http.post(f"/api/v1/namespaces/{user.namespace}/builds", json=body,
                         headers={"Authorization": f"Bearer {user.token}"})


def jobs(platform: Platform, namespace: str) -> list[str]:
    out = platform.kubectl("-n", namespace, "get", "jobs", "-l", c.BUILD_SELECTOR, "-o", "name").stdout
    return out.split()


def test_the_installed_builder_refuses_a_context_symlinked_out_of_the_volume_with_a_400(
    platform: Platform, builder_user: BuilderUser, contexts: str
) -> None:
    user, ns = builder_user, builder_user.namespace
    before = jobs(platform, ns)
    start = time.monotonic()
    r = post(user, {"context": {"pvc": user.pvc, "path": "links/evil"}, "cache": False,
                    "destination": f"{platform.registry}/{ns}/evil:v1"})
    first = time.monotonic() - start
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith("context.path:") and "resolves outside the volume" in detail, detail
    assert "/etc" not in detail

    start = time.monotonic()
    r = post(user, {"context": {"pvc": user.pvc, "path": "bare"}, "destination": f"{platform.registry}/{ns}/b:v1"})
    again = time.monotonic() - start
    assert r.status_code == 400 and r.json()["detail"].startswith("dockerfile:"), r.text
    assert jobs(platform, ns) == before  # nothing was created for either
    print(f"first refusal (agent started) {first:.2f} s, next refusal {again * 1000:.0f} ms")

    agents = platform.kubectl("-n", ns, "get", "pods", "-l", c.AGENT_SELECTOR, "-o",
                              "jsonpath={.items[*].status.phase}").stdout.split()
    assert agents == ["Running"]

    ok = run_build(user, {"context": {"pvc": user.pvc, "path": "links/good"}, "cache": False,
                          "destination": f"{platform.registry}/{ns}/good:v1"}, timeout=600)
    assert ok.digest == platform.crane_digest(f"{platform.registry}/{ns}/good:v1")


@pytest.fixture
def builder_without_agent(platform: Platform) -> Iterator[str]:
    """A builder on loopback with the installed builder's registry settings and Kaniko image, but no agent."""
    env = json.loads(platform.kubectl("-n", NAMESPACE, "get", "deployment", f"{RELEASE}-builder", "-o",
                                      "jsonpath={.spec.template.spec.containers[0].env}").stdout)
    installed = {e["name"]: e["value"] for e in env if "value" in e}
    settings = Settings(kubeconfig=platform.cluster.kubeconfig, registry=installed["BUILDER_REGISTRY"],
                        insecure_registries=json.loads(installed["BUILDER_INSECURE_REGISTRIES"]),
                        kaniko_image=installed["BUILDER_KANIKO_IMAGE"], volume_agent=False, sse_heartbeat_seconds=1)
    with serve_on_loopback(create_app(settings)) as url:
        yield url


def test_without_the_agent_the_kubelet_still_refuses_the_symlinked_context_and_the_build_says_why(
    platform: Platform, builder_user: BuilderUser, contexts: str, builder_without_agent: str
) -> None:
    user = dataclasses.replace(builder_user, url=builder_without_agent)
    with pytest.raises(AssertionError) as refused:
        run_build(user, {"context": {"pvc": user.pvc, "path": "links/evil"}, "cache": False,
                         "destination": f"{platform.registry}/{user.namespace}/evil:v2"}, timeout=300)
    message = str(refused.value)
    assert "failed" in message and "CreateContainerConfigError" in message, message
    assert "subpath" in message.lower(), message
    assert "context.path 'links/evil'" in message and "not a folder inside the volume" in message, message
