"""The hub's warm-up against the real apiserver: a spawner of no user starts KubeSpawner's shared pod and event
watches and the PodDefault copy, which then hold what exists in users' namespaces before any start."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubespawner import KubeSpawner
from support import add_poddefault
from traitlets.config import Config

from hub_config import constants as k
from hub_config.config import configure
from hub_config.poddefault_cache import PodDefaultCache
from hub_config.settings import HubSettings
from hub_config.warm_up import NoUser, run

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_warm_up_starts_the_shared_watches_and_the_poddefault_copy(
    kube_api: Any, poddefault_crd: str, hub_settings: Callable[..., HubSettings],
    user_factory: Callable[..., tuple[str, str]],
) -> None:
    from hub_config.spawner import NotebookSpawner

    _, ns = user_factory("warm")
    client.CoreV1Api(kube_api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels={k.TEST_LABEL: "true"})))
    add_poddefault(kube_api, ns, "before-any-start", {"matchLabels": {"before": "true"}},
                   desc="made before the hub started")
    earlier = dict(KubeSpawner.reflectors)  # the class's: other tests of this process may have started some
    KubeSpawner.reflectors.clear()
    copy = PodDefaultCache()
    frozen: list[bool] = []
    try:
        spawner = NotebookSpawner(config=configure(Config(), hub_settings()), user=NoUser(), hub=None)
        assert await run(lambda: spawner, copy.start, then=lambda: frozen.append(True), delay=0) is True
        assert frozen == [True]
        pods, events = KubeSpawner.reflectors[("pods", None)], KubeSpawner.reflectors[("events", None)]
        assert pods.first_load_future.done() and events.first_load_future.done()
        assert pods.omit_namespace and events.omit_namespace  # one watch for every user's namespace
        for _ in range(100):  # the copy starts in the background, as it does for a real start
            if copy.ready():
                break
            await asyncio.sleep(0.1)
        names = [pd["metadata"]["name"] for pd in copy.in_namespace(ns) or []]
        assert names == ["before-any-start"]
    finally:
        await copy.stop()
        for key, reflector in list(KubeSpawner.reflectors.items()):
            if earlier.get(key) is not reflector:
                await reflector.stop()
        KubeSpawner.reflectors.clear()
        KubeSpawner.reflectors.update(earlier)
