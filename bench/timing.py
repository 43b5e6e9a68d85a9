"""Figures the hub benchmarks share: percentiles of a list of seconds, and a process's RSS and CPU time."""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path


def percentile(xs: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None for no data."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


def summary(name: str, xs: list[float]) -> dict[str, float | None]:
    return {f"{name}_p50_s": statistics.median(xs) if xs else None, f"{name}_p95_s": percentile(xs, 0.95),
            f"{name}_max_s": max(xs) if xs else None}


def process_figures(pid: int | None) -> dict[str, float | None]:
    """RSS (MiB) and CPU seconds (user+system) of a process, None if unreadable."""
    if pid is None:
        return {"rss_mib": None, "cpu_s": None}
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return {"rss_mib": None, "cpu_s": None}
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    ticks = os.sysconf("SC_CLK_TCK")
    return {"rss_mib": rss_kib / 1024, "cpu_s": (int(stat[11]) + int(stat[12])) / ticks}
