"""Fixtures for the hub's integration tests: the PodDefault CRD, user namespaces that clean themselves up."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub_config import constants as k
from hub_config.settings import HubSettings

ROOT = Path(__file__).resolve().parents[3]
CRD_FILE = ROOT / "charts" / "notebook-platform" / "crds" / "poddefaults.yaml"
CRD_NAME = f"{k.PODDEFAULT_PLURAL}.{k.PODDEFAULT_GROUP}"


@pytest.fixture(scope="session")
def poddefault_crd(cluster: Any, kube_api: Any) -> str:
    """The chart's PodDefault CRD, applied (if the chart has it) and established; skips if unavailable."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from support import wait_for

    ext = client.ApiextensionsV1Api(kube_api)
    if CRD_FILE.is_file():
        cluster.kubectl("apply", "-f", str(CRD_FILE))
    try:
        ext.read_custom_resource_definition(CRD_NAME)
    except ApiException as e:
        if e.status == 404:
            pytest.skip(f"PodDefault CRD not installed and {CRD_FILE.relative_to(ROOT)} does not exist yet")
        raise

    def established() -> bool:
        crd = ext.read_custom_resource_definition(CRD_NAME)
        return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

    wait_for(established, timeout=30, what="PodDefault CRD established")
    return CRD_NAME


@pytest.fixture(scope="session", autouse=True)
def kubeconfig_env(cluster: Any) -> Iterator[None]:
    """KubeSpawner loads the default kubeconfig (it is built for in-cluster use): point it at ours.

    kubernetes_asyncio reads $KUBECONFIG once, at import, so its module default is patched as well.
    """
    from kubernetes_asyncio.config import kube_config

    old_env, old_default = os.environ.get("KUBECONFIG"), kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    os.environ["KUBECONFIG"] = kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(cluster.kubeconfig)
    yield
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = old_default
    if old_env is None:
        os.environ.pop("KUBECONFIG", None)
    else:
        os.environ["KUBECONFIG"] = old_env


@pytest.fixture
def hub_settings() -> Callable[..., HubSettings]:
    """Settings whose user namespaces carry the test label, so leftovers are easy to find."""
    def make(**overrides: Any) -> HubSettings:
        base: dict[str, Any] = {"namespace_prefix": "nbp-it-", "namespace_labels": {k.TEST_LABEL: "true"},
                                "preflight_webhook_wait": 0}
        return HubSettings(**{**base, **overrides})

    return make


@pytest.fixture
def user_factory(kube_api: Any) -> Iterator[Callable[[str], tuple[str, str]]]:
    """Makes (username, namespace) pairs with a random suffix; deletes the namespaces after the test."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from hub_config.namespaces import namespace_name

    made: list[str] = []

    def make(prefix: str = "user", namespace_prefix: str = "nbp-it-") -> tuple[str, str]:
        username = f"{prefix}-{secrets.token_hex(4)}"
        ns = namespace_name(username, namespace_prefix)
        made.append(ns)
        return username, ns

    yield make
    core = client.CoreV1Api(kube_api)
    for ns in made:
        try:
            core.delete_namespace(ns, propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise
