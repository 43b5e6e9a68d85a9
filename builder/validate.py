"""Semantic checks of a BuildRequest for one namespace: paths (400) and destinations (400 malformed, 403 not
allowed). Pure functions; the app turns `RequestRejected` into `{"detail": ...}`.

Why paths are checked here *and* further on: the builder cannot see the volume, so it cannot resolve
symlinks. It rejects what is visibly wrong (absolute, `..`, odd characters) here; the claim's volume agent
(`agents.py`) then resolves the path on the volume itself; and the Job mounts the context folder as the
volume's `subPath`, which kubelet resolves inside the volume and refuses to start a container whose subPath
escapes it through a symlink (the CVE-2017-1002101 fix). The client additionally resolves symlinks where it
can see the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import BuildRequest
from .reference import ImageReference, InvalidReference, is_allowed, parse_reference
from .settings import Settings

# Characters allowed in one path component: what people name folders, minus anything a shell, YAML or a
# terminal would treat specially. Spaces are allowed inside a name, not at its ends.
_COMPONENT_RE = re.compile(r"^[A-Za-z0-9._,+=@-](?:[A-Za-z0-9 ._,+=@-]*[A-Za-z0-9._,+=@-])?$")
MAX_COMPONENT = 255
MAX_DEPTH = 64


class RequestRejected(Exception):
    """A refusal with its HTTP status and the field it concerns."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.status, self.field, self.message = status, field, message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def normalise_relative_path(path: str, field: str, allow_root: bool) -> str:
    """Returns the canonical form of a volume-relative path ('' for the root) or raises a 400.

    Refused: absolute paths, `..` and `.` components, empty components (`a//b`), backslashes, control and other
    odd characters. A single trailing slash is tolerated (people type `proj/`).
    """
    if path.startswith("/"):
        raise RequestRejected(400, field, "must be relative to the volume root, not absolute")
    if "\\" in path:
        raise RequestRejected(400, field, "backslashes are not allowed in paths")
    if path in ("", "."):
        if allow_root:
            return ""
        raise RequestRejected(400, field, "must not be empty")
    trimmed = path[:-1] if path.endswith("/") else path
    parts = trimmed.split("/")
    if len(parts) > MAX_DEPTH:
        raise RequestRejected(400, field, f"more than {MAX_DEPTH} path components")
    for part in parts:
        if part == "..":
            raise RequestRejected(400, field, "'..' is not allowed: the path must stay inside the volume")
        if part in ("", "."):
            raise RequestRejected(400, field, "empty or '.' path components are not allowed")
        if len(part) > MAX_COMPONENT or not _COMPONENT_RE.match(part):
            raise RequestRejected(
                400, field, f"path component {part!r} has characters outside letters, digits, space and ._,+=@-"
            )
    return "/".join(parts)


def check_destination(
    destination: str, namespace: str, settings: Settings, field: str = "destination"
) -> ImageReference:
    """Parses the destination and checks it against the namespace's allow-list."""
    try:
        ref = parse_reference(destination)
    except InvalidReference as e:
        raise RequestRejected(400, field, f"not a valid image reference: {e}") from None
    if ref.digest:
        raise RequestRejected(400, field, "must be a tag, not a digest: the digest is the build's result")
    prefixes = settings.allowed_prefixes(namespace)
    if not is_allowed(ref, prefixes):
        raise RequestRejected(
            403, field, f"{ref.repository} is outside the repositories allowed for namespace {namespace}: "
            + ", ".join(f"{p}/..." for p in prefixes)
        )
    return ref


@dataclass(frozen=True)
class CheckedRequest:
    """A request that passed every check, with its canonical paths and parsed destination."""

    request: BuildRequest
    context_path: str
    dockerfile: str
    destination: ImageReference


def check_request(request: BuildRequest, namespace: str, settings: Settings) -> CheckedRequest:
    """All semantic checks, in the order a user would fix them."""
    context_path = normalise_relative_path(request.context.path, "context.path", allow_root=True)
    dockerfile = normalise_relative_path(request.dockerfile, "dockerfile", allow_root=False)
    destination = check_destination(request.destination, namespace, settings)
    canonical = request.model_copy(
        update={"context": request.context.model_copy(update={"path": context_path}), "dockerfile": dockerfile}
    )
    return CheckedRequest(canonical, context_path, dockerfile, destination)
