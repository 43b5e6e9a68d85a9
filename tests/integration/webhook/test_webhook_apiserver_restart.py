"""The PodDefault cache survives a kube-apiserver restart: it reconnects, resumes and stays correct.

Runs on a throwaway control plane of its own (the shared one must never be restarted under other tests).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig
from support import cluster_script, throwaway_cluster, wait_for

from webhook import constants as c
from webhook.cache import PodDefaultCache

CRD_FILE = Path(__file__).resolve().parents[3] / "charts" / "notebook-platform" / "crds" / "poddefaults.yaml"


async def eventually(predicate: Any, timeout: float = 60.0) -> float:
    """Waits for a condition on the cache; returns how long it took."""
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, "condition not met in time"
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


def _pd(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": f"{c.GROUP}/{c.VERSION}", "kind": "PodDefault", "metadata": {"name": name},
            "spec": {"selector": {}, "desc": name, "env": [{"name": "V", "value": value}]}}


async def test_cache_resumes_after_apiserver_restart_and_sees_later_changes(
    cluster: Any, tmp_path: Path
) -> None:
    with throwaway_cluster(tmp_path / "state") as (second, env):
        second.kubectl("apply", "-f", str(CRD_FILE))
        wait_for(lambda: second.kubectl("get", "crd", c.CRD_NAME, "-o",
                                        "jsonpath={.status.conditions[?(@.type=='Established')].status}",
                                        check=False).stdout == "True", what="CRD established")
        api = await aconfig.new_client_from_config(config_file=str(second.kubeconfig))
        objs = aclient.CustomObjectsApi(api)
        core = aclient.CoreV1Api(api)
        await core.create_namespace({"metadata": {"name": "team"}})
        await objs.create_namespaced_custom_object(c.GROUP, c.VERSION, "team", c.PLURAL, _pd("a", "1"))
        cache = PodDefaultCache()
        task = asyncio.create_task(cache.run(api, resync_period=600))
        try:
            await eventually(lambda: cache.ready and {p.name for p in cache.for_namespace("team")} == {"a"})

            pid = int((tmp_path / "state" / "run" / "kube-apiserver.pid").read_text())
            os.kill(pid, signal.SIGKILL)  # a crash; a graceful stop drains for tens of seconds
            wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="apiserver exit")
            await asyncio.sleep(1.0)  # the watch sees the connection drop while the apiserver is away
            assert not task.done(), "the cache keeps running while the apiserver is down"
            assert {p.name for p in cache.for_namespace("team")} == {"a"}, "it still serves what it had"

            up = await asyncio.to_thread(cluster_script, env, "up")
            assert up.returncode == 0, up.stderr
            assert "started kube-apiserver" in up.stdout and "etcd already running" in up.stdout

            await objs.create_namespaced_custom_object(c.GROUP, c.VERSION, "team", c.PLURAL, _pd("b", "2"))
            await objs.delete_namespaced_custom_object(c.GROUP, c.VERSION, "team", c.PLURAL, "a")
            took = await eventually(lambda: {p.name for p in cache.for_namespace("team")} == {"b"})
            assert took < 60
            edited = await objs.patch_namespaced_custom_object(
                c.GROUP, c.VERSION, "team", c.PLURAL, "b", [{"op": "replace", "path": "/spec/desc", "value": "edited"}])
            rv = edited["metadata"]["resourceVersion"]
            await eventually(lambda: [p.resource_version for p in cache.for_namespace("team")] == [rv])
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await api.close()
