"""The volume agent: a small server in the user's namespace that sees the workspace volume, read-only, so the
builder can refuse a bad build context at once (400) instead of starting a build that cannot work.

The builder runs in the platform's namespace and cannot mount a claim of the user's namespace; only a pod
there can. So, per claim, the builder starts one agent pod (see `agents.py`) that mounts the claim read-only
and answers one question: does this context folder (and its Dockerfile) resolve inside the volume? A symlink
pointing out of the volume, a file where a folder should be, or a missing Dockerfile is then a 400 naming the
field, before any Job exists. The kubelet's own subPath check on the build pod stays the actual boundary; the
agent turns its refusal into an answer people can act on.

The agent answers only with a bearer token the builder put on its pod (an annotation, passed in through the
downward API), exits after `--idle-seconds` without questions, and has no Kubernetes credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Header, Query
from fastapi.responses import JSONResponse

RESOLVE_ROUTE = "/resolve"
TOKEN_ENV = "VOLUME_AGENT_TOKEN"


@dataclass(frozen=True)
class Verdict:
    """`field` and `message` are empty when the context is usable."""

    field: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.field


def _inside(root: str, real: str) -> bool:
    return real == root or real.startswith(root.rstrip("/") + "/")


def inspect_context(root: Path, path: str, dockerfile: str) -> Verdict:
    """Whether `path` (relative to the volume root, already free of `..` and absolute forms: the builder
    checked) is a folder inside the volume with all symlinks resolved, and `dockerfile` (relative to it) a
    regular file inside that folder. The messages say where a path leads, relative to the volume only."""
    real_root = os.path.realpath(root)
    context = os.path.realpath(os.path.join(real_root, path))
    if not _inside(real_root, context):
        return Verdict("context.path", f"{path!r} resolves outside the volume (a symlink out of it); the build "
                                       "context must be a folder inside the workspace volume")
    if not os.path.exists(context):
        return Verdict("context.path", f"{path!r} does not exist in the volume")
    if not os.path.isdir(context):
        return Verdict("context.path", f"{path!r} is not a folder")
    docker = os.path.realpath(os.path.join(context, dockerfile))
    if not _inside(context, docker):
        return Verdict("dockerfile", f"{dockerfile!r} resolves outside the context folder {path!r}; Kaniko only "
                                     "sees that folder")
    if not os.path.isfile(docker):
        return Verdict("dockerfile", f"{dockerfile!r} is not a file in the context folder {path!r}")
    return Verdict()


def create_agent_app(root: Path, token: str, idle_seconds: float) -> FastAPI:
    """The agent's app: `GET /resolve?path=&dockerfile=` with the token; `/healthz` for the readiness probe.

    `app.state.idle()` tells how long no question was asked (the main loop exits after `idle_seconds`)."""
    app = FastAPI(title="notebook-platform volume agent", docs_url=None, redoc_url=None)
    last = {"asked": time.monotonic()}
    app.state.idle = lambda: time.monotonic() - last["asked"]
    app.state.idle_seconds = idle_seconds

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(RESOLVE_ROUTE)
    async def resolve(path: Annotated[str, Query(max_length=4096)],
                      dockerfile: Annotated[str, Query(max_length=4096)] = "Dockerfile",
                      authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        if not hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode()):
            return JSONResponse({"detail": "a valid bearer token is required"}, status_code=401)
        last["asked"] = time.monotonic()
        verdict = await asyncio.to_thread(inspect_context, root, path, dockerfile)
        return JSONResponse({"ok": verdict.ok, "field": verdict.field, "message": verdict.message})

    return app


def main() -> None:
    """Console script `notebook-platform-volume-agent` (the agent pod's command)."""
    import uvicorn

    p = argparse.ArgumentParser(description="Answers the builder whether a build context resolves inside the volume.")
    p.add_argument("--root", type=Path, required=True, help="where the claim is mounted (read-only)")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--idle-seconds", type=float, default=900.0)
    a = p.parse_args()
    token = os.environ.get(TOKEN_ENV, "")
    if len(token) < 32:
        raise SystemExit(f"{TOKEN_ENV} must hold the token the builder set (32 characters or more)")
    app = create_agent_app(a.root, token, a.idle_seconds)
    server = uvicorn.Server(uvicorn.Config(app, host="0.0.0.0", port=a.port, log_level="warning"))

    async def serve() -> None:
        async def exit_when_idle() -> None:
            while not server.should_exit:
                await asyncio.sleep(min(5.0, a.idle_seconds))
                if app.state.idle() >= a.idle_seconds:
                    server.should_exit = True

        watcher = asyncio.create_task(exit_when_idle())
        try:
            await server.serve()
        finally:
            watcher.cancel()

    asyncio.run(serve())
