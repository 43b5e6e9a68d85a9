"""Figures the hub benchmarks share: percentiles of a list of seconds, a process's RSS and CPU time, and how
busy the machine is (to start a run on a quiet machine)."""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import time
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


def machine_busy(window: float = 2.0) -> float:
    """Fraction of all CPUs busy (not idle, not iowait) over `window` seconds, from /proc/stat."""
    def read() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(values), values[3] + values[4]

    total0, idle0 = read()
    time.sleep(window)
    total1, idle1 = read()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


async def wait_until_quiet(max_busy: float, timeout: float, window: float = 2.0) -> tuple[float, float]:
    """Waits (at most `timeout` s) until the machine is at most `max_busy` busy over a window, so a run does
    not start inside the previous run's teardown. Returns (seconds waited, last busy fraction)."""
    start = time.monotonic()
    while True:
        busy = await asyncio.to_thread(machine_busy, window)
        waited = time.monotonic() - start
        if busy <= max_busy or waited >= timeout:
            return waited, busy
