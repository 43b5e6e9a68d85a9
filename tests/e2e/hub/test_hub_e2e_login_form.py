"""A real JupyterHub process with our config: log in with the shared password, see the form, preview.

Needs `configurable-http-proxy` (npm) on PATH, in `node_modules/.bin`, or named by `NBP_CHP`, and the local
control plane; skipped otherwise. No notebook pod is started here (that needs the node and an image); the
preview goes through the real admission chain with a dry run, so it needs only the apiserver.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from harness import PASSWORD, login, run_hub

from hub_config import constants as k
from hub_config.namespaces import namespace_name


@pytest.fixture(scope="module")
def hub(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_hub(cluster, tmp_path_factory.mktemp("hub")) as url:
        yield url


@pytest.fixture
def user(kube_api: Any) -> Iterator[str]:
    from kubernetes import client

    name = f"e2e-{secrets.token_hex(4)}"
    yield name
    try:
        client.CoreV1Api(kube_api).delete_namespace(namespace_name(name, "nbp-e2e-"))
    except client.exceptions.ApiException as e:
        if e.status != 404:
            raise


def test_wrong_password_does_not_log_in(hub: str, user: str) -> None:
    with login(hub, user, "not-the-password") as c:
        assert c.get("/hub/api/user").status_code in (401, 403)


def test_login_shows_form_with_profiles_and_default_configurations(hub: str, user: str) -> None:
    with login(hub, user, PASSWORD) as c:
        assert c.get("/hub/api/user").json()["name"] == user
        page = c.get("/hub/spawn")
        assert page.status_code == 200
        assert 'class="nbp-spawn-form"' in page.text and 'name="profile"' in page.text
        assert re.search(r'value="builder"[^>]*checked', page.text)


def test_preview_dry_runs_the_choice_through_admission(hub: str, user: str) -> None:
    with login(hub, user, PASSWORD) as c:
        c.get("/hub/spawn")
        xsrf = c.cookies.get("_xsrf")
        r = c.post("/hub/spawn-preview", data={"profile": "small", "configuration": "builder"},
                   headers={"X-XSRFToken": xsrf or ""})
        assert r.status_code == 200, r.text
        assert r.json()["poddefaults"] == ["builder"]
        bad = c.post("/hub/spawn-preview", data={"profile": "small", "configuration": "ghost"},
                     headers={"X-XSRFToken": xsrf or ""})
        assert bad.status_code == 400 and "ghost" in bad.json()["detail"]


def ready_node(kube_api: Any) -> bool:
    from kubernetes import client

    for node in client.CoreV1Api(kube_api).list_node().items:
        if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or []):
            return True
    return False


@pytest.mark.skipif(not os.environ.get("NBP_E2E_NOTEBOOK_IMAGE"),
                    reason="set NBP_E2E_NOTEBOOK_IMAGE to a notebook image the node can run (jupyterhub-singleuser)")
def test_spawn_stop_keeps_workspace(cluster: Any, kube_api: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Full spawn on the real node: pod in the user's namespace with the chosen labels, RWX workspace,
    then a clean stop that keeps the workspace. Runs its own hub with the image from the environment."""
    from kubernetes import client

    if not ready_node(kube_api):
        pytest.skip("no Ready node in the local cluster")
    extra = {"HUB_IMAGE": os.environ["NBP_E2E_NOTEBOOK_IMAGE"]}
    if os.environ.get("NBP_E2E_STORAGE_CLASS"):
        extra["HUB_STORAGE__STORAGE_CLASS"] = os.environ["NBP_E2E_STORAGE_CLASS"]
    username = f"e2e-{secrets.token_hex(4)}"
    ns = namespace_name(username, "nbp-e2e-")
    core = client.CoreV1Api(kube_api)
    hub_cm = run_hub(cluster, tmp_path_factory.mktemp("spawn-hub"), extra)
    url = hub_cm.__enter__()
    try:
        with login(url, username, PASSWORD) as c:
            c.get("/hub/spawn")
            xsrf = c.cookies.get("_xsrf") or ""
            c.post("/hub/spawn", data={"profile": "small", "configuration": "builder"}, headers={"X-XSRFToken": xsrf})
            deadline = time.monotonic() + 300
            while not (c.get(f"/hub/api/users/{username}").json().get("servers", {}).get("", {}) or {}).get("ready"):
                assert time.monotonic() < deadline, "server did not become ready in 300 s"
                time.sleep(2)
            (pod,) = core.list_namespaced_pod(ns, label_selector="component=singleuser-server").items
            assert pod.metadata.labels[f"{k.DOMAIN}/builder"] == "true"
            assert pod.spec.service_account_name == "notebook"
            pvc = core.read_namespaced_persistent_volume_claim("workspace", ns)
            assert pvc.spec.access_modes == ["ReadWriteMany"]
            c.delete(f"/hub/api/users/{username}/server", headers={"X-XSRFToken": xsrf})
            deadline = time.monotonic() + 120
            while core.list_namespaced_pod(ns, label_selector="component=singleuser-server").items:
                assert time.monotonic() < deadline, "pod still there 120 s after stop"
                time.sleep(1)
            assert core.read_namespaced_persistent_volume_claim("workspace", ns).metadata.deletion_timestamp is None
    finally:
        hub_cm.__exit__(None, None, None)
        core.delete_namespace(ns)
