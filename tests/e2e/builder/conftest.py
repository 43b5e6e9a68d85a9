"""Fixtures for the builder's end-to-end tests: the builder REST API of the installed platform, called as a user.

`platform` is the platform tests' session fixture (tests/e2e/platform/platform_e2e.py: `make up`, or the running
installation with NBP_E2E_REUSE_PLATFORM=1). `builder_user` is a user as the hub makes one: a namespace
provisioned by `hub_config.namespaces.ensure_user_namespace` with the installed hub's own settings (labels,
quota, LimitRange, the `notebook` service account and its builder Role), the workspace claim (RWX, `shared-path`)
under the name the Role grants, and a token of the `notebook` service account (TokenRequest), as a notebook pod
holds. Requests go to the builder pod behind the platform's Service (its pod IP: this machine reaches pod IPs).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from builder_e2e import BuilderUser, builder_endpoint, hub_settings, workspace_claim
from platform_e2e import NAMESPACE, RELEASE, Platform, platform  # noqa: F401  (the shared session fixture)
from support import unique_name

from hub_config.namespaces import ensure_user_namespace, namespace_name

TEST_LABEL = "notebook-platform.io/test=true"


@pytest.fixture(scope="module")
def builder_user(platform: Platform, kube_api: object) -> Iterator[BuilderUser]:  # noqa: F811
    """A freshly provisioned user namespace with its workspace claim and the notebook service account's token."""
    from kubernetes import client
    from kubernetes_asyncio import config as aconfig

    settings = hub_settings(platform)
    username = unique_name("e2e-build")
    ns = namespace_name(username, settings.namespace_prefix)

    async def provision() -> None:
        api = await aconfig.new_client_from_config(config_file=str(platform.cluster.kubeconfig))
        try:
            await ensure_user_namespace(api, username, ns, settings)
        finally:
            await api.close()

    core = client.CoreV1Api(kube_api)
    try:
        asyncio.run(provision())
        platform.kubectl("label", "namespace", ns, TEST_LABEL)
        core.create_namespaced_persistent_volume_claim(ns, workspace_claim(settings))
        sa = settings.notebook_service_account
        token = core.create_namespaced_service_account_token(
            sa, ns, {"spec": {"expirationSeconds": 3600}}).status.token
        yield BuilderUser(username=username, namespace=ns, service_account=sa, pvc=settings.storage.pvc_name,
                          token=str(token), url=builder_endpoint(platform, NAMESPACE, f"{RELEASE}-builder"))
    finally:
        platform.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
