"""Fixtures for the platform's end-to-end tests: the chart as `make up` installs it on the local node.

`platform` runs `make up` once per session (idempotent: quick when everything already runs, under the same
lock as the cluster and node fixtures) and then reads what a user would: the hub's URL (the proxy's NodePort
on the node address) and the shared password (from the hub's Secret). Nothing here starts a service of its
own: every request goes through the installed proxy, hub, webhook and builder.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from platform_e2e import CHROMIUM, CHROMIUM_ARGS, NAMESPACE, RELEASE, Platform, lib_settings, make_up
from support import Cluster


@pytest.fixture(scope="session")
def platform(cluster: Cluster) -> Platform:
    """The platform as `make up` leaves it, with what a user needs to reach it."""
    up_log = make_up()
    node_ip, port = lib_settings("NODE_IP", "REGISTRY_PORT")
    svc = cluster.kubectl("-n", NAMESPACE, "get", "service", f"{RELEASE}-proxy-public",
                          "-o", "jsonpath={.spec.type} {.spec.ports[0].nodePort}").stdout.split()
    assert svc[0] == "NodePort", svc
    secret = cluster.kubectl("-n", NAMESPACE, "get", "secret", f"{RELEASE}-hub",
                             "-o", "jsonpath={.data.shared-password}").stdout
    return Platform(cluster=cluster, url=f"http://{node_ip}:{svc[1]}", password=base64.b64decode(secret).decode(),
                    registry=f"{node_ip}:{port}", node_ip=node_ip, up_log=up_log)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium per module (Debian's, never a downloaded browser), fresh profile directory."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "Debian's chromium is needed at /usr/bin/chromium (apt-get install chromium)"
    with tempfile.TemporaryDirectory(prefix="nbp-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()
