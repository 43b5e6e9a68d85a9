"""A server whose image does not exist fails at once, with the kubelet's reason, and is stopped cleanly.

A real hub (this checkout's config, on loopback) spawns on the real node; the notebook image names a repository
the local registry does not have. The kubelet's first pull answers "not found"; the hub gives up then, not after
`start_timeout` (set to 10 minutes here so that waiting it out would fail the test), shows the reason in the
progress stream, and deletes the pod. The workspace claim stays.
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from harness import api_client, delete_namespace, notebook_pods, progress_until, run_hub, user_namespace
from support import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))
from platform_e2e import Platform, lib_settings, platform  # noqa: F401  (the node and registry: make up)


def test_a_missing_notebook_image_fails_the_spawn_at_once_with_the_reason(
        platform: Platform, cluster: Any, kube_api: Any, tmp_path_factory: pytest.TempPathFactory) -> None:  # noqa: F811
    from kubernetes import client

    node_ip, registry_port = lib_settings("NODE_IP", "REGISTRY_PORT")
    missing = f"{node_ip}:{registry_port}/nbp/no-such-notebook:{secrets.token_hex(3)}"
    username = f"e2e-img-{secrets.token_hex(3)}"
    ns = user_namespace(username)
    env = {"HUB_IMAGE": missing, "HUB_STORAGE__STORAGE_CLASS": "shared-path", "HUB_START_TIMEOUT": "600"}
    try:
        with run_hub(cluster, tmp_path_factory.mktemp("image-hub"), env) as url, api_client(url, username) as api:
            started = time.monotonic()
            r = api.post(f"/users/{username}/server", json={"profile": "small"})
            if r.status_code == 202:  # still starting after the hub's slow_spawn_timeout: the progress stream
                failed, seen = progress_until(api, username, lambda e: bool(e.get("failed")), timeout=180)
                assert failed is not None, [e.get("message") for e in seen]
                message = failed["message"]
            else:  # failed within it: the POST itself answers with the reason
                assert r.status_code == 500, r.text
                message = r.json()["message"]
            elapsed = time.monotonic() - started
            assert "could not be pulled" in message and "not found" in message and missing in message, message
            assert elapsed < 120, f"gave up only after {elapsed:.0f} s"
            wait_for(lambda: not notebook_pods(kube_api, ns), timeout=120, interval=1, what="the pod deleted")
            assert not (api.get(f"/users/{username}").json()["servers"].get("") or {})
            claims = client.CoreV1Api(kube_api).list_namespaced_persistent_volume_claim(ns).items
            assert [c.metadata.deletion_timestamp for c in claims] == [None]
            print(f"\nspawn with a missing image failed after {elapsed:.1f} s: {message[:200]}")
    finally:
        delete_namespace(kube_api, ns)
