"""JupyterHub's own floor for N concurrent starts: the same JupyterHub, with a spawner that does nothing.

    .venv/bin/python bench/jupyterhub_floor.py [--users 50]

The baseline for bench/hub_spawn.py's spawn overhead. It runs a JupyterHub of this checkout's environment
on loopback (bench/floor_hub_config.py: a temporary directory, sqlite in WAL mode as the chart's hub, no
proxy process, a spawner whose start() only records the time it was called), makes N users with an API
token each through the REST API, then all of them POST `/hub/api/users/{name}/server` at once, as
hub_spawn.py does against the installed hub. Before JupyterHub calls start() it has done its own per-start
work: the request's token check, the server and spawner rows, the server's API token and scopes, the OAuth
client (secret hashed with 16,384 SHA-512 rounds), several commits, all on its one event loop. No spawner
can start sooner, so request -> start() is the least a start can cost in this JupyterHub on this machine.

Prints request -> start() (p50, p95, max), the hub's CPU seconds for the burst and per start; the last
line is one JSON object. The hub process is stopped (by its PID) and its directory removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from timing import process_figures, summary

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_up(http: httpx.AsyncClient, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the floor hub exited with {proc.returncode}")
        try:
            if (await http.get("/hub/api/")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError("the floor hub did not answer within 60 s")


async def user_tokens(http: httpx.AsyncClient, admin: dict[str, str], names: list[str]) -> dict[str, str]:
    """Creates the users and a token each that may start its own server (what the real bench's users hold)."""
    r = await http.post("/hub/api/users", json={"usernames": names}, headers=admin)
    r.raise_for_status()
    tokens = {}
    for name in names:
        r = await http.post(f"/hub/api/users/{name}/tokens", json={"note": "floor bench"}, headers=admin)
        r.raise_for_status()
        tokens[name] = str(r.json()["token"])
    return tokens


@dataclass
class FloorHub:
    http: httpx.AsyncClient
    tokens: dict[str, str]
    starts: Path
    pid: int


async def burst(http: httpx.AsyncClient, tokens: dict[str, str], starts_file: Path,
                pid: int) -> dict[str, Any]:
    """All users POST their server at once; request -> start() per user, and the hub's CPU for the burst."""
    requested: dict[str, float] = {}
    statuses: list[int] = []

    async def one(name: str) -> None:
        requested[name] = time.time()
        r = await http.post(f"/hub/api/users/{name}/server", json={},
                            headers={"Authorization": f"token {tokens[name]}"}, timeout=60)
        statuses.append(r.status_code)

    cpu_before = process_figures(pid)["cpu_s"]
    posts = [asyncio.ensure_future(one(name)) for name in tokens]
    deadline = time.monotonic() + 120
    started: dict[str, float] = {}
    while len(started) < len(tokens) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if starts_file.exists():
            for line in starts_file.read_text().splitlines():
                row = json.loads(line)
                started[row["user"]] = row["t"]
    cpu_after = process_figures(pid)["cpu_s"]
    await asyncio.gather(*posts, return_exceptions=True)  # JupyterHub answers 202 after slow_spawn_timeout
    waits = [started[n] - requested[n] for n in tokens if n in started]
    out: dict[str, Any] = {"floor_users": len(tokens), "floor_started": len(waits),
                           "floor_post_statuses": sorted(set(statuses))}
    out.update(summary("floor_request_to_start", waits))
    if cpu_before is not None and cpu_after is not None:
        out["floor_hub_cpu_s"] = cpu_after - cpu_before
        out["floor_hub_cpu_per_start_ms"] = 1000 * (cpu_after - cpu_before) / len(tokens)
    return out


@contextlib.asynccontextmanager
async def floor_hub(users: int, extra_env: dict[str, str] | None = None) -> AsyncIterator[FloorHub]:
    """Runs a floor hub with `users` users holding a token each; stops it (by its PID) at the end."""
    port = free_port()
    admin_token = secrets.token_hex(24)
    with tempfile.TemporaryDirectory(prefix="floor-hub-") as d:
        starts = Path(d) / "starts.jsonl"
        env = {**os.environ, "FLOOR_DIR": d, "FLOOR_PORT": str(port), "FLOOR_STARTS": str(starts),
               "FLOOR_ADMIN_TOKEN": admin_token, **(extra_env or {}),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        jupyterhub = Path(sys.executable).parent / "jupyterhub"
        log = open(Path(d) / "jupyterhub.log", "wb")  # noqa: SIM115  (closed after the process ends)
        proc = subprocess.Popen([str(jupyterhub), "-f", str(HERE / "floor_hub_config.py")], cwd=d, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                         limits=httpx.Limits(max_connections=users + 10)) as http:
                await wait_up(http, proc)
                admin = {"Authorization": f"token {admin_token}"}
                tokens = await user_tokens(http, admin, [f"floor-{i}" for i in range(users)])
                yield FloorHub(http, tokens, starts, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


async def floor_figures(users: int) -> dict[str, Any]:
    """Runs a floor hub, the burst, and stops the hub; the figures as a dict (keys `floor_*`)."""
    async with floor_hub(users) as hub:
        await asyncio.sleep(1)  # let the setup's commits and log lines settle
        return await burst(hub.http, hub.tokens, hub.starts, hub.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    args = parser.parse_args()
    figures = asyncio.run(floor_figures(args.users))
    for key, value in figures.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    print(json.dumps({"bench": "jupyterhub_floor",
                      **{key: (round(v, 3) if isinstance(v, float) else v) for key, v in figures.items()}}))


if __name__ == "__main__":
    main()
