"""Fixtures for the platform's end-to-end tests: the chart as `make up` installs it on the local node.

`platform` runs `make up` once per session (idempotent: quick when everything already runs, under the same
lock as the cluster and node fixtures) and then reads what a user would: the hub's URL (the proxy's NodePort
on the node address) and the shared password (from the hub's Secret). Nothing here starts a service of its
own: every request goes through the installed proxy, hub, webhook and builder. The fixture itself lives in
`platform_e2e.py`, so other e2e folders (tests/e2e/builder/) share it; with NBP_E2E_REUSE_PLATFORM=1 it uses
the installation as it runs, without `make up` (which would upgrade it to this checkout).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from platform_e2e import platform  # noqa: F401  (the session fixture, shared)
from support import chromium_context


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium per module (Debian's, never a downloaded browser), fresh profile directory."""
    with chromium_context(900) as context:
        yield context
