"""A real JupyterHub process with our config: log in with the shared password, see the form, preview.

Needs `configurable-http-proxy` (npm) on PATH, in `node_modules/.bin`, or named by `NBP_CHP`, and the local
control plane; skipped otherwise. No notebook pod is started here: a hub on the host's loopback is not reachable
from pods, so starting, stopping and the kept workspace are shown on the installed platform
(tests/e2e/platform/test_platform_workspace.py). The preview goes through the real admission chain with a dry
run, so it needs only the apiserver.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from harness import PASSWORD, login, run_hub

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


def test_logging_in_provisions_the_namespace_before_any_start(hub: str, user: str, kube_api: Any) -> None:
    from kubernetes import client
    from support import wait_for

    core = client.CoreV1Api(kube_api)
    ns = namespace_name(user, "nbp-e2e-")

    def provisioned() -> bool:
        try:
            core.read_namespace(ns)
            return bool(client.RbacAuthorizationV1Api(kube_api).list_namespaced_role_binding(ns).items)
        except client.exceptions.ApiException as e:
            if e.status == 404:
                return False
            raise

    assert not provisioned()
    with login(hub, user, PASSWORD) as c:
        assert c.get("/hub/api/user").json()["name"] == user
        # The login answered at once; provisioning runs behind it, and is done within moments.
        wait_for(provisioned, timeout=30, interval=0.2, what=f"namespace {ns} provisioned after login")
        assert c.get(f"/hub/api/users/{user}").json()["servers"] == {}  # and no server was started
    labels = core.read_namespace(ns).metadata.labels
    assert labels["notebook-platform.io/poddefaults"] == "enabled"
