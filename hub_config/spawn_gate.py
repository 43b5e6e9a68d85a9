"""Start requests set up in the order they came, a few at a time, instead of all at once in lockstep.

JupyterHub handles a start request on its one event loop: the request's authentication, its database work
(server row, API token, OAuth client) and then the spawner's start, which awaits API calls. When 50 requests
arrive together, asyncio runs each one's next step behind that step of all the others, so even the first
request's pod is created only after every request's setup is done: every user waits as long as the last one
(docs/benchmarks.md measured request -> pod created spanning 1.1-1.4 s for all 50 users alike).

`SpawnGate` lets at most `width` start requests past authentication at once, in arrival order. A request
holds its place until its spawner has sent the pod create (the spawner calls `leave`), its handler finishes,
or `hold_max` seconds pass, whichever comes first, so a slow or failing start never holds the others up for
longer than that. The gate orders work; it never refuses a request (JupyterHub's `concurrent_spawn_limit`
still does that).

The gated handlers are JupyterHub's own start handlers (the REST `POST /users/{name}/server[s/{server}]` and
the spawn form's `POST /spawn[/{name}[/{server}]]`) subclassed with an awaited `prepare`; `install` puts them
in JupyterHub's route tables before the hub builds its application from them.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

from jupyterhub import apihandlers, handlers
from jupyterhub.apihandlers.users import UserServerAPIHandler
from jupyterhub.handlers.pages import SpawnHandler

Key = tuple[str, str]


class Ticket:
    """One request's place past the gate; `release` is idempotent."""

    def __init__(self, gate: SpawnGate, key: Key | None) -> None:
        self.gate, self.key = gate, key
        self.released = False
        self.timer: asyncio.TimerHandle | None = None

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.timer is not None:
            self.timer.cancel()
        self.gate._left(self)


class SpawnGate:
    """A FIFO semaphore whose holders are found again by (user name, server name)."""

    def __init__(self, width: int, hold_max: float) -> None:
        if width < 1:
            raise ValueError("width must be at least 1")
        self.width, self.hold_max = width, hold_max
        self._inside: dict[Key | None, collections.deque[Ticket]] = collections.defaultdict(collections.deque)
        self._count = 0
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self.expired = 0  # tickets released by the timer: starts that took longer than hold_max to send a pod

    @property
    def inside(self) -> int:
        return self._count

    async def enter(self, key: Key | None) -> Ticket:
        """Waits for a place (first come, first served) and takes it for `key`."""
        if self._count >= self.width or self._waiting:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter  # `_left` hands the place over: the count stays as it was
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._hand_over()  # we were given the place after all: pass it on
                else:
                    self._waiting.remove(waiter)
                raise
        else:
            self._count += 1
        ticket = Ticket(self, key)
        self._inside[key].append(ticket)
        ticket.timer = asyncio.get_running_loop().call_later(self.hold_max, self._expire, ticket)
        return ticket

    def leave(self, key: Key) -> None:
        """The start for `key` no longer needs its place (its pod create is on its way, or it failed)."""
        tickets = self._inside.get(key)
        if tickets:
            tickets[0].release()

    def _expire(self, ticket: Ticket) -> None:
        if not ticket.released:
            self.expired += 1
            ticket.release()

    def _left(self, ticket: Ticket) -> None:
        tickets = self._inside.get(ticket.key)
        if tickets is not None:
            tickets.remove(ticket)
            if not tickets:
                del self._inside[ticket.key]
        self._hand_over()

    def _hand_over(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._count -= 1


# The hub's gate; None until `install` (then every gated handler uses it).
GATE: SpawnGate | None = None


def leave(spawner: Any) -> None:
    """For the spawner: give up its start's place, if it holds one."""
    user = getattr(spawner, "user", None)
    if GATE is not None and user is not None:
        GATE.leave((user.name, spawner.name or ""))


class GatedStart:
    """Mixin for JupyterHub's start handlers: a POST takes its place at the gate after authentication."""

    _ticket: Ticket | None = None

    async def prepare(self) -> None:
        await super().prepare()  # type: ignore[misc]  # authentication first: strangers never queue
        finished = getattr(self, "_finished", False)  # prepare answered already (a redirect, say)
        if GATE is not None and self.request.method == "POST" and not finished:  # type: ignore[attr-defined]
            self._ticket = await GATE.enter(self.gate_key())

    def gate_key(self) -> Key | None:
        args: list[str] = list(self.path_args or [])  # type: ignore[attr-defined]
        user = args[0] if args else getattr(self.current_user, "name", None)  # type: ignore[attr-defined]
        return (user, args[1] if len(args) > 1 else "") if user else None

    def on_finish(self) -> None:
        if self._ticket is not None:
            self._ticket.release()
        super().on_finish()  # type: ignore[misc]


class GatedUserServerAPIHandler(GatedStart, UserServerAPIHandler):
    """`POST /hub/api/users/{name}/server[s/{server}]`, gated."""


class GatedSpawnHandler(GatedStart, SpawnHandler):
    """The spawn form's `POST /hub/spawn[/{name}[/{server}]]`, gated."""


GATED: dict[type, type] = {UserServerAPIHandler: GatedUserServerAPIHandler, SpawnHandler: GatedSpawnHandler}


def gate_routes(routes: list[tuple[Any, ...]], replace: Callable[[type], type | None]) -> int:
    """Replaces, in place, each route's handler class that `replace` maps; returns how many it replaced."""
    n = 0
    for i, (pattern, handler, *rest) in enumerate(routes):
        new = replace(handler)
        if new is not None:
            routes[i] = (pattern, new, *rest)
            n += 1
    return n


def install(width: int, hold_max: float) -> SpawnGate | None:
    """Sets up the hub's gate (width 0: none) and routes JupyterHub's start handlers through it."""
    global GATE
    GATE = SpawnGate(width, hold_max) if width > 0 else None
    if GATE is not None:
        for routes in (apihandlers.default_handlers, handlers.default_handlers):
            gate_routes(routes, GATED.get)
    return GATE
