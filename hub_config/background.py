"""Tasks the hub starts and does not await, held until they end.

The event loop keeps only a weak reference to its tasks: one that nobody holds can be garbage-collected while
it runs. The provisioner's login-time passes, the garbage-collector policy and the warm-up are all such
tasks; they are held here, in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_HELD: set[asyncio.Future[Any]] = set()


def keep(task: asyncio.Future[T]) -> asyncio.Future[T]:
    """Holds `task` until it is done; returns it."""
    _HELD.add(task)
    task.add_done_callback(_HELD.discard)
    return task


def held(task: asyncio.Future[Any]) -> bool:
    return task in _HELD


def on_running_loop(make: Callable[[], Coroutine[Any, Any, T]], name: str) -> asyncio.Task[T] | None:
    """`make()` as a held task on the running event loop (the hub loads its config inside it); None without
    a running loop (a config loaded by another tool), and then `make` is not called."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    task = loop.create_task(make(), name=name)
    keep(task)
    return task
