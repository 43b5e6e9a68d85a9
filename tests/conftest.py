"""Shared pytest fixtures.

Integration and e2e tests run against the real local cluster from `hack/` (started on demand with
`make cluster`, reused when healthy). Every test gets its own namespace so tests can run in any order
and in parallel xdist workers without touching each other's objects.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Cluster, run_locked, unique_name, wait_for

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
TEST_LABEL = "notebook-platform.io/test"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by folder, so `-m unit` / `-m integration` / `-m e2e` select them without decorators."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """Starts (or reuses) the local control plane once per session and waits until it is ready."""
    if os.environ.get("NBP_KUBECONFIG"):
        return Cluster(Path(os.environ["NBP_KUBECONFIG"]), LOCAL / "bin")
    # A file lock keeps parallel xdist workers from starting two clusters at once.
    lock = LOCAL / "cluster-start.lock"
    LOCAL.mkdir(exist_ok=True)
    run_locked(lock, ["make", "-s", "-C", str(ROOT), "cluster"], timeout=900)
    return Cluster(LOCAL / "kubeconfig", LOCAL / "bin")


@pytest.fixture(scope="session")
def kube_api(cluster: Cluster) -> Iterator[object]:
    """A synchronous `kubernetes.client.ApiClient` with the admin kubeconfig."""
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield api
    api.close()


@pytest.fixture
async def kube_async(cluster: Cluster):  # type: ignore[no-untyped-def]
    """An asynchronous `kubernetes_asyncio.client.ApiClient`, one per test (each test owns its loop use)."""
    from kubernetes_asyncio import config as aconfig

    api = await aconfig.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield api
    finally:
        await api.close()


@pytest.fixture
def namespace_factory(kube_api: object) -> Iterator[Callable[..., str]]:
    """Creates namespaces (with optional labels) and deletes them after the test, even if it failed."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(kube_api)
    made: list[str] = []

    def make(prefix: str = "t", labels: dict[str, str] | None = None) -> str:
        name = unique_name(prefix)
        body = {"metadata": {"name": name, "labels": {TEST_LABEL: "true", **(labels or {})}}}
        core.create_namespace(body)
        made.append(name)
        # Pods are refused until the service-account controller has made `default`; wait for it here
        # rather than in every test that creates a pod right away.
        wait_for(lambda: core.list_namespaced_service_account(name, field_selector="metadata.name=default").items,
                 what=f"the default service account in {name}")
        return name

    yield make
    for name in made:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as e:  # a test may delete its own namespace; that is fine
            if e.status not in (404, 409):
                raise


@pytest.fixture
def namespace(namespace_factory: Callable[..., str]) -> str:
    """A fresh, empty namespace for one test."""
    return namespace_factory()
