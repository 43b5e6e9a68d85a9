"""Graceful shutdown for a webhook replica: drain keep-alive connections before the process stops.

The apiserver keeps a pool of keep-alive connections to the webhook's Service. When a replica stops, any
connection still in that pool is closed by the server; a request the apiserver writes on it at that instant
is lost (the apiserver sees EOF and, with failurePolicy Fail, rejects the pod). A pause before SIGTERM alone
does not help: the pooled connections are still there at the end of it.

So the pod's preStop hook runs `notebook-platform-webhook-drain`, which signals the server (SIGUSR1) and then
waits. From the signal on, every response carries `Connection: close`: the apiserver retires each pooled
connection after its next answer and opens new ones, which land on the replicas still in the Service. When
SIGTERM comes, the connections left are ones the apiserver has not used for the whole pause.

The signal (rather than an HTTP endpoint) keeps the switch out of reach of anything that can reach the
webhook's port: only a process inside the container can drain it.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

DRAIN_SIGNAL = signal.SIGUSR1
CLOSE_HEADER = (b"connection", b"close")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Drain:
    """A one-way switch: once draining, always draining (the process is on its way out)."""

    def __init__(self) -> None:
        self.draining = False

    def start(self) -> None:
        self.draining = True


class CloseWhenDraining:
    """ASGI middleware: while draining, ask the client to close the connection after each response.

    Pure ASGI (not Starlette's BaseHTTPMiddleware), and `send` is wrapped only once draining, so until then
    the admission path pays one attribute check."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app, self.drain = app, drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.drain.draining:
            await self.app(scope, receive, send)
            return

        async def send_with_close(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message["headers"] = [*headers, CLOSE_HEADER]
            await send(message)

        await self.app(scope, receive, send_with_close)


def main(argv: list[str] | None = None) -> None:
    """Console script `notebook-platform-webhook-drain`, the pod's preStop hook."""
    parser = argparse.ArgumentParser(description="Start draining the webhook server, then wait.")
    parser.add_argument("--pid", type=int, default=1, help="The server's process (PID 1 in its container).")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="How long to wait before the kubelet may send SIGTERM (endpoint removal and "
                             "the apiserver's pool need this long to move away from this replica).")
    args = parser.parse_args(argv)
    if args.seconds < 0:
        parser.error("--seconds must not be negative")
    try:
        os.kill(args.pid, DRAIN_SIGNAL)
    except ProcessLookupError:
        parser.exit(1, f"no process {args.pid} to drain\n")
    time.sleep(args.seconds)


if __name__ == "__main__":
    main()
