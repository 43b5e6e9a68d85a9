"""The spawn gate inside a real JupyterHub (a process on loopback, no cluster): JupyterHub's own REST start
handler, routed through the gate by `spawn_gate.install`, lets one start at a time set up when the width is
1, and all at once without a gate. The hub is bench/floor_hub_config.py's: a spawner whose start() holds its
place FLOOR_HOLD seconds (standing in for the pod create), then gives it back as NotebookSpawner does."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))

from jupyterhub_floor import floor_hub  # noqa: E402

USERS = 5
HOLD = 0.4


async def start_all(width: int, hold_max: float = 30) -> list[dict[str, Any]]:
    """Every user POSTs its server at once; returns each start's (called, left) times, in call order."""
    env = {"FLOOR_GATE_WIDTH": str(width), "FLOOR_GATE_HOLD_MAX": str(hold_max), "FLOOR_HOLD": str(HOLD)}
    async with floor_hub(USERS, env) as hub:
        posts = [asyncio.ensure_future(hub.http.post(f"/hub/api/users/{name}/server", json={},
                                                     headers={"Authorization": f"token {token}"}))
                 for name, token in hub.tokens.items()]
        deadline = time.monotonic() + 60
        rows: list[dict[str, Any]] = []
        while len(rows) < USERS and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            if hub.starts.exists():
                rows = [json.loads(line) for line in hub.starts.read_text().splitlines()]
        statuses = {r.status_code for r in await asyncio.gather(*posts)}
        assert statuses <= {201, 202}, statuses
    return sorted(rows, key=lambda r: r["t"])


def overlaps(rows: list[dict[str, Any]]) -> int:
    return sum(1 for a, b in itertools.pairwise(rows) if b["t"] < a["left"])


async def test_with_width_one_each_start_waits_for_the_one_before_to_give_its_place_back() -> None:
    rows = await start_all(width=1)
    assert len(rows) == USERS and {r["user"] for r in rows} == {f"floor-{i}" for i in range(USERS)}
    assert overlaps(rows) == 0
    assert rows[-1]["t"] - rows[0]["t"] >= (USERS - 1) * HOLD * 0.9


async def test_without_a_gate_the_starts_overlap() -> None:
    rows = await start_all(width=0)
    assert len(rows) == USERS
    assert overlaps(rows) == USERS - 1  # the same check as above can fail: every start is inside at once


async def test_a_start_that_never_gives_its_place_back_holds_the_next_one_at_most_hold_max() -> None:
    rows = await start_all(width=1, hold_max=0.1)  # places expire long before each start's HOLD ends
    assert len(rows) == USERS
    assert overlaps(rows) == USERS - 1
    assert rows[-1]["t"] - rows[0]["t"] < (USERS - 1) * HOLD
