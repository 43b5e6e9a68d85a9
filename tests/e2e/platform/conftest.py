"""Fixtures for the platform's end-to-end tests: the chart as `make up` installs it on the local node.

`platform` runs `make up` once per session (idempotent: quick when everything already runs, under the same
lock as the cluster and node fixtures) and then reads what a user would: the hub's URL (the proxy's NodePort
on the node address) and the shared password (from the hub's Secret). Nothing here starts a service of its
own: every request goes through the installed proxy, hub, webhook and builder. The fixture itself lives in
`platform_e2e.py`, so other e2e folders (tests/e2e/builder/) share it; with NBP_E2E_REUSE_PLATFORM=1 it uses
the installation as it runs, without `make up` (which would upgrade it to this checkout).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from platform_e2e import CHROMIUM, CHROMIUM_ARGS, platform  # noqa: F401  (the session fixture, shared)


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
