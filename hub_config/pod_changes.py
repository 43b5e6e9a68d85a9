"""Wake KubeSpawner's waits when its pod reflector changes, instead of only on a timer.

KubeSpawner learns that a server's pod is running, or gone, from its watch-fed pod reflector, and checks it in
a polling loop (JupyterHub's `exponential_backoff`). Polling trades CPU for latency: at the hub's 0.25 s cap a
Ready pod was noticed 0.1-0.2 s late, and 50 starting servers polling four times a second cost the hub about
5 s of CPU per 50-server start (a py-spy profile, docs/benchmarks.md) on the same cores that start the servers.

Here the reflector's store is a dict that fires a `ChangeSignal` on every write (a watch event, or a relist
replacing the store). `prompt_backoff` waits for the next change or its timer, whichever comes first, so a
check runs right after the reflector sees the pod change, and the timer can be long.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubespawner.spawner import PodReflector

from hub_config.reflector_store import TypedStoreReflector


class ChangeSignal:
    """Wakes every waiter at the next `notify()`. One shared future per round, so a change costs one
    `set_result` however many spawns wait, and a wait that times out leaves nothing behind."""

    def __init__(self) -> None:
        self._next: asyncio.Future[None] | None = None
        self.changes = 0

    def notify(self) -> None:
        self.changes += 1
        pending, self._next = self._next, None
        if pending is not None and not pending.done():
            pending.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """True if a change came within `timeout` seconds, False if the timer ran out first."""
        if self._next is None or self._next.done():
            self._next = asyncio.get_running_loop().create_future()
        done, _ = await asyncio.wait({self._next}, timeout=max(0.0, timeout))
        return bool(done)


POD_CHANGES = ChangeSignal()


class NotifyingStore(dict[str, Any]):
    """The pod reflector's `namespace/name -> pod` dict; every write notifies `POD_CHANGES`."""

    def __init__(self, items: dict[str, Any] | None = None, signal: ChangeSignal = POD_CHANGES) -> None:
        super().__init__(items or {})
        self.signal = signal

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.signal.notify()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.signal.notify()

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        value = super().pop(key, *default)
        self.signal.notify()
        return value


class NotifyingPodReflector(TypedStoreReflector, PodReflector):
    """KubeSpawner's PodReflector whose store is a NotifyingStore, whichever way the store is (re)placed."""

    store_class = NotifyingStore

    def store_replaced(self, store: dict[str, Any]) -> None:
        POD_CHANGES.notify()  # a relist replaced the store: every waiter looks again
