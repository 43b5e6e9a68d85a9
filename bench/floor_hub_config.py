"""JupyterHub configuration for bench/jupyterhub_floor.py: JupyterHub itself, with nothing of ours around it.

The spawner does no work: its start() appends (user, time) to the file named by FLOOR_STARTS and then waits
until it is stopped, so what a start costs before start() is JupyterHub's own request handling and database
work. (tests/unit/hub/test_hub_spawn_gate_jupyterhub.py runs it with a spawn gate, FLOOR_GATE_WIDTH, and starts
that hold their place FLOOR_HOLD seconds.) No proxy process is run. The database is sqlite in WAL mode, like
the chart's hub (hub_config.database).
"""

import asyncio
import json
import os
import time

from jupyterhub.proxy import Proxy
from jupyterhub.spawner import Spawner

from hub_config import spawn_gate
from hub_config.database import use_sqlite_wal

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (injected by traitlets' config loader)


class NoProxy(Proxy):
    """Routes nowhere: the floor measures the hub, and its spawners never serve."""

    should_start = False

    async def add_route(self, routespec: str, target: str, data: dict) -> None:  # type: ignore[override]
        return None

    async def delete_route(self, routespec: str) -> None:  # type: ignore[override]
        return None

    async def get_all_routes(self) -> dict:  # type: ignore[override]
        return {}


class RecordingSpawner(Spawner):
    """Records when JupyterHub hands the start over, then waits to be stopped."""

    async def start(self) -> str:  # type: ignore[override]
        called = time.time()
        hold = float(os.environ.get("FLOOR_HOLD", "0"))  # tests: a start that takes this long to "create its pod"
        if hold:
            await asyncio.sleep(hold)
        with open(os.environ["FLOOR_STARTS"], "a") as f:
            f.write(json.dumps({"user": self.user.name, "t": called, "left": time.time()}) + "\n")
        spawn_gate.leave(self)
        self._stopped = asyncio.Event()
        await self._stopped.wait()
        return "http://127.0.0.1:9"

    async def poll(self) -> int | None:  # type: ignore[override]
        return None

    async def stop(self, now: bool = False) -> None:  # type: ignore[override]
        stopped = getattr(self, "_stopped", None)
        if stopped is not None:
            stopped.set()


use_sqlite_wal()
# The floor has no gate (FLOOR_GATE_WIDTH 0); the gate's tests run this hub with one.
spawn_gate.install(int(os.environ.get("FLOOR_GATE_WIDTH", "0")), float(os.environ.get("FLOOR_GATE_HOLD_MAX", "2")))
c.JupyterHub.proxy_class = NoProxy
c.JupyterHub.spawner_class = RecordingSpawner
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.db_url = f"sqlite:///{os.environ['FLOOR_DIR']}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{os.environ['FLOOR_DIR']}/cookie_secret"
c.JupyterHub.pid_file = f"{os.environ['FLOOR_DIR']}/jupyterhub.pid"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{os.environ['FLOOR_PORT']}"
c.JupyterHub.concurrent_spawn_limit = 0
c.JupyterHub.services = [{"name": "floor-bench", "api_token": os.environ["FLOOR_ADMIN_TOKEN"]}]
c.JupyterHub.load_roles = [{"name": "floor-bench", "scopes": ["admin:users", "admin:servers", "tokens"],
                            "services": ["floor-bench"]}]
