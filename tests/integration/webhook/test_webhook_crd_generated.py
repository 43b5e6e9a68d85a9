"""The committed PodDefault CRD is exactly what `hack/gen-crd.py` makes from the pinned apiserver's OpenAPI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def test_committed_crd_matches_the_apiserver_generated_one(cluster: Any) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "hack" / "gen-crd.py"), "--check",
                          "--kubeconfig", str(cluster.kubeconfig)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
