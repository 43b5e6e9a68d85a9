"""The small client a notebook imports: `from builder.client import build`.

    digest = build("/home/jovyan/proj", "registry.local:5000/alice/proj:v1")

It reads the pod's service-account token and namespace, maps the folder to its path on the workspace volume,
hashes the context (so an identical earlier build is reused), asks the Builder API, shows the phase and log
lines in the cell while it runs, and returns the digest, or raises BuildFailed saying why.

Configuration (environment, usually injected by a PodDefault): BUILDER_URL, BUILDER_CA_FILE (for https with
the platform's CA), BUILDER_WORKSPACE_ROOT (default /home/jovyan), BUILDER_WORKSPACE_PVC,
BUILDER_SERVICE_ACCOUNT_DIR. In a hub-spawned notebook the hub's own variables stand in for the unset ones:
NBP_BUILDER_URL (the default `builder` PodDefault), NBP_WORKSPACE_PVC and NBP_WORKSPACE_PATH (every server).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .constants import API_PREFIX, SERVICE_ACCOUNT_DIR
from .contexthash import content_hash

DEFAULT_URL = "http://notebook-platform-builder.notebook-platform.svc:8080"
DEFAULT_WORKSPACE_ROOT = "/home/jovyan"


def _env(name: str, hub_name: str, default: str | None = None) -> str | None:
    """`BUILDER_<name>`, else the variable the hub injects into every notebook (`NBP_*`), else `default`."""
    return os.environ.get(name) or os.environ.get(hub_name) or default


class BuildError(Exception):
    """The API refused the request (status and its `detail`), or the client is misconfigured."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BuildFailed(BuildError):
    """The build ran and failed (or was cancelled); `logs` has its last lines."""

    def __init__(self, message: str, build: str = "", logs: list[str] | None = None) -> None:
        super().__init__(f"build {build} failed: {message}" if build else message)
        self.build, self.logs = build, logs or []


@dataclass(frozen=True)
class Identity:
    token: str
    namespace: str


def read_identity(sa_dir: str | os.PathLike[str] | None = None) -> Identity:
    """The pod's service-account token and namespace (re-read each call: projected tokens rotate)."""
    base = Path(sa_dir or os.environ.get("BUILDER_SERVICE_ACCOUNT_DIR", SERVICE_ACCOUNT_DIR))
    try:
        return Identity((base / "token").read_text().strip(), (base / "namespace").read_text().strip())
    except OSError as e:
        raise BuildError(f"cannot read the service-account token and namespace from {base}: {e}") from None


def volume_path(path: str | os.PathLike[str], workspace_root: str | os.PathLike[str]) -> str:
    """The folder's path relative to the workspace volume root, symlinks resolved; refuses one outside it.

    This is where "escaping through a symlink" can be checked precisely, since the notebook sees the files;
    the API and kubelet's subPath handling guard the same boundary on the server side."""
    root = Path(workspace_root).resolve()
    real = Path(path).expanduser().resolve()
    if not real.is_dir():
        raise BuildError(f"{path} is not a directory")
    try:
        rel = real.relative_to(root)
    except ValueError:
        raise BuildError(
            f"{path} resolves to {real}, outside the workspace volume mounted at {root}; "
            "the builder can only read folders of that volume"
        ) from None
    return rel.as_posix() if str(rel) != "." else ""


@dataclass
class Progress:
    """Shows the phase and log lines: an updating line in a notebook (IPython), plain prints elsewhere."""

    quiet: bool = False
    out: Callable[[str], None] = field(default=print)
    _handle: Any = None

    def __post_init__(self) -> None:
        if self.quiet:
            return
        try:
            from IPython import get_ipython  # type: ignore[import-not-found]
            from IPython.display import display  # type: ignore[import-not-found]

            if get_ipython() is not None:
                self._handle = display({"text/plain": "builder: starting"}, raw=True, display_id=True)
        except ImportError:
            self._handle = None

    def phase(self, phase: str, message: str = "") -> None:
        if self.quiet:
            return
        text = f"builder: {phase}" + (f" - {message}" if message else "")
        if self._handle is not None:
            self._handle.update({"text/plain": text}, raw=True)
        else:
            self.out(text)

    def line(self, text: str) -> None:
        if not self.quiet:
            self.out(text)


def iter_sse(lines: Iterator[str]) -> Iterator[tuple[str | None, dict[str, Any] | None]]:
    """(id, data) per SSE message; (None, None) for a heartbeat comment."""
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if line.startswith(":"):
            yield None, None
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif line == "":
            if data:
                yield event_id, json.loads("\n".join(data))
            data = []


class BuilderClient:
    """HTTP calls to the Builder API for one namespace, with the caller's token."""

    def __init__(self, url: str | None = None, identity: Identity | None = None, timeout: float = 30.0) -> None:
        self.url = (url or _env("BUILDER_URL", "NBP_BUILDER_URL", DEFAULT_URL) or DEFAULT_URL).rstrip("/")
        self.identity = identity or read_identity()
        ca = os.environ.get("BUILDER_CA_FILE")  # for an https BUILDER_URL signed by the platform's own CA
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, read=None), verify=verify)

    @property
    def base(self) -> str:
        return f"{self.url}{API_PREFIX}/namespaces/{self.identity.namespace}/builds"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.identity.token}"}

    @staticmethod
    def _check(resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise BuildError(f"builder API refused ({resp.status_code}): {detail}", resp.status_code)
        return resp.json()

    def create(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        resp = self.http.post(self.base, json=body, headers=self._headers())
        return self._check(resp), resp.status_code == 201

    def get(self, name: str) -> dict[str, Any]:
        return self._check(self.http.get(f"{self.base}/{name}", headers=self._headers()))  # type: ignore[no-any-return]

    def cancel(self, name: str) -> dict[str, Any]:
        return self._check(self.http.delete(f"{self.base}/{name}", headers=self._headers()))  # type: ignore[no-any-return]

    def events(self, name: str, last_id: str | None = None) -> Iterator[tuple[str | None, dict[str, Any] | None]]:
        headers = self._headers() | {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        with self.http.stream("GET", f"{self.base}/{name}/logs", headers=headers) as resp:
            if resp.status_code >= 400:
                resp.read()
                self._check(resp)
            yield from iter_sse(resp.iter_lines())


def follow(client: BuilderClient, name: str, progress: Progress, retries: int = 5) -> str:
    """Follows a build's events to the end: the digest, or BuildFailed. Reconnects with Last-Event-ID."""
    last_id: str | None = None
    tail: list[str] = []
    failures = 0
    while True:
        try:
            for event_id, data in client.events(name, last_id):
                if data is None:
                    continue
                last_id = event_id or last_id
                phase = data.get("phase")
                if phase == "log":
                    tail = [*tail, data.get("message", "")][-50:]
                    progress.line(data.get("message", ""))
                elif phase == "built":
                    progress.phase("built", data.get("image") or "")
                    return str(data["digest"])
                elif phase == "failed":
                    progress.phase("failed", data.get("message", ""))
                    raise BuildFailed(data.get("message", "unknown reason"), name, tail)
                else:
                    progress.phase(str(phase), data.get("message", ""))
            failures += 1  # the stream ended without a result: reconnect
        except httpx.TransportError:
            failures += 1
        if failures > retries:
            raise BuildError(f"lost the log stream of build {name} {retries} times; see GET .../builds/{name}")
        time.sleep(min(2 ** failures, 10))


def build(
    path: str | os.PathLike[str] = ".",
    destination: str = "",
    *,
    dockerfile: str = "Dockerfile",
    build_args: dict[str, str] | None = None,
    target: str | None = None,
    labels: dict[str, str] | None = None,
    cache: bool = True,
    push_secret: str | None = None,
    service_account_name: str | None = None,
    reuse: bool = True,
    pvc: str | None = None,
    workspace_root: str | None = None,
    url: str | None = None,
    service_account_dir: str | None = None,
    quiet: bool = False,
) -> str:
    """Builds the folder `path` (inside the workspace volume) and pushes it to `destination`.

    Returns the image digest (`sha256:...`). Raises BuildError when the API refuses (the message names the
    field or permission) and BuildFailed when the build itself fails or is cancelled."""
    if not destination:
        raise BuildError("destination is required, e.g. registry.local:5000/<namespace>/<name>:<tag>")
    pvc = pvc or _env("BUILDER_WORKSPACE_PVC", "NBP_WORKSPACE_PVC")
    if not pvc:
        raise BuildError("which volume? pass pvc= or set BUILDER_WORKSPACE_PVC")
    root = workspace_root or _env("BUILDER_WORKSPACE_ROOT", "NBP_WORKSPACE_PATH") or DEFAULT_WORKSPACE_ROOT
    rel = volume_path(path, root)
    progress = Progress(quiet=quiet)
    body: dict[str, Any] = {
        "context": {"pvc": pvc, "path": rel},
        "dockerfile": dockerfile,
        "destination": destination,
        "buildArgs": build_args or {},
        "labels": labels or {},
        "cache": cache,
    }
    if target:
        body["target"] = target
    if push_secret:
        body["pushSecret"] = push_secret
    if service_account_name:
        body["serviceAccountName"] = service_account_name
    if reuse:
        progress.phase("hashing", str(Path(path)))
        body["contentHash"] = content_hash(Path(path).expanduser().resolve(), dockerfile)
    client = BuilderClient(url, read_identity(service_account_dir))
    created, is_new = client.create(body)
    name = created["metadata"]["name"]
    if not is_new:
        status = created["status"]
        progress.phase("built", f"reused build {name}: {status.get('image')}")
        return str(status["digest"])
    progress.phase("waiting", f"build {name} created")
    return follow(client, name, progress)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep:
            raise SystemExit(f"{flag} expects KEY=VALUE, got {v!r}")
        out[key] = val
    return out


def main(argv: list[str] | None = None) -> int:
    """Console script `nbp-build PATH DESTINATION`: logs to stderr, the digest on stdout."""
    p = argparse.ArgumentParser(prog="nbp-build", description="Build a folder of your workspace with Kaniko.")
    p.add_argument("path")
    p.add_argument("destination")
    p.add_argument("--dockerfile", default="Dockerfile")
    p.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--target")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--no-reuse", action="store_true", help="always build, even if identical content was built")
    p.add_argument("--push-secret")
    p.add_argument("--service-account")
    p.add_argument("--pvc")
    p.add_argument("--workspace-root")
    p.add_argument("--url")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # progress to stderr, the digest alone on stdout
            digest = build(
                a.path, a.destination, dockerfile=a.dockerfile, build_args=_pairs(a.build_arg, "--build-arg"),
                labels=_pairs(a.label, "--label"), target=a.target, cache=not a.no_cache, reuse=not a.no_reuse,
                push_secret=a.push_secret, service_account_name=a.service_account, pvc=a.pvc,
                workspace_root=a.workspace_root, url=a.url, quiet=a.quiet,
            )
    except BuildError as e:
        print(f"nbp-build: {e}", file=sys.stderr)
        return 1
    print(digest)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
