"""Helpers for tests (importable as `support`, since pytest puts tests/ on sys.path)."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def wait_for(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.2, what: str = ""
) -> object:
    """Polls a predicate in tests only (services use watches); returns its first truthy value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}; last value {last!r}")


def unique_name(prefix: str) -> str:
    """A DNS-1123 name unlikely to collide across xdist workers and reruns."""
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Cluster:
    """Where the local control plane is: enough for a client, a subprocess or `kubectl`."""

    kubeconfig: Path
    bin_dir: Path

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Runs the pinned kubectl against the cluster (used where the test is about kubectl's behaviour)."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=input, capture_output=True, text=True, check=check, timeout=120,
        )
