"""The hub's watches start when the hub does, not inside the first burst of starts after it.

KubeSpawner starts its shared pod and event reflectors on the first start that needs them, and so did the
hub's PodDefault copy (hub_config.poddefault_cache). Each one's first act is a list of everything it watches
in all namespaces: after an evening of benchmarks the local cluster held 4,000 Pod events, 5.4 MB of JSON.
Listed and indexed inside a burst of 50 starts, that made the first burst after a hub restart cost 1.33 s
of overhead at the median against 0.72-0.99 s for the bursts after it (docs/benchmarks.md).

Here a spawner that belongs to no user, and is never started, starts them a few seconds after the hub's
config is loaded, and what their first lists made is frozen for the garbage collector (the `then` of
`start`). If that fails (the apiserver is away, RBAC is missing), it logs a warning and the first real start
tries again the usual way: a warm-up must not be what stops a hub.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hub_config import background
from hub_config.poddefault_cache import POD_DEFAULTS

log = logging.getLogger(__name__)

DELAY_SECONDS = 2.0  # after the config is loaded: the hub's own initialisation runs first


@dataclass(frozen=True)
class NoUser:
    """What KubeSpawner's constructor reads of a user (its name templates), for a spawner never started."""

    name: str = "hub-warm-up"
    id: int = 0
    url: str = ""


async def warm_up(spawner: Any, start_poddefaults: Callable[[Any], None]) -> None:
    """Starts the spawner class's shared reflectors (KubeSpawner keeps them on the class, so every later
    start finds them running) and the PodDefault copy."""
    await spawner._start_watching_pods()
    if spawner.events_enabled:
        await spawner._start_watching_events()
    start_poddefaults(spawner)


async def run(make_spawner: Callable[[], Any], start_poddefaults: Callable[[Any], None],
              then: Callable[[], object] | None = None, delay: float = DELAY_SECONDS,
              sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> bool:
    """Waits `delay`, then warms up, then calls `then` (the hub: freeze the new objects for the garbage
    collector, hub_config.gc_policy); True when every watch is running. Never raises but CancelledError:
    KubeSpawner ends the process (sys.exit) when a reflector fails to start, which is its answer for a
    real start, not for this one."""
    await sleep(delay)
    try:
        await warm_up(make_spawner(), start_poddefaults)
    except asyncio.CancelledError:
        raise
    except (Exception, SystemExit) as e:  # KubeSpawner calls sys.exit when a reflector fails to start
        log.warning("the hub's watches did not start ahead of the first spawn (it will start them): %r", e)
        return False
    log.info("the hub's pod, event and PodDefault watches are running")
    if then is not None:
        then()
    return True


def hub_spawner() -> Any:
    """A spawner of the running hub's class and config, for no user: its reflectors are the class's."""
    from jupyterhub.app import JupyterHub

    app = JupyterHub.instance()
    return app.spawner_class(config=app.config, user=NoUser(), hub=app.hub)


def start(make_spawner: Callable[[], Any] = hub_spawner,
          start_poddefaults: Callable[[Any], None] = POD_DEFAULTS.start,
          then: Callable[[], object] | None = None) -> asyncio.Task[bool] | None:
    """Schedules the warm-up on the running event loop (the hub loads its config inside it); None without
    one (a config loaded by another tool)."""
    return background.on_running_loop(lambda: run(make_spawner, start_poddefaults, then), name="hub-warm-up")
