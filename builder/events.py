"""Pure: the log stream's events, in BinderHub's vocabulary, and their Server-Sent Events encoding.

Resuming without server state: every log line's event id is its line number in the pod's log (1-based), and a
phase event carries the id of the last line sent before it. A client reconnecting with `Last-Event-ID: n`
gets the current phase again (phases are state, so repeating one is harmless) and then lines n+1 onwards.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .model import BuildPhase, BuildStatus

WAITING, BUILDING, PUSHING, BUILT, FAILED = "waiting", "building", "pushing", "built", "failed"
TERMINAL_EVENT_PHASES = frozenset({BUILT, FAILED})

# Kaniko logs "Pushing image to <destination>" when it starts pushing the image. With --cache it also logs,
# after every RUN it builds, "Pushing layer <cache repo>:<key> to cache now" and then "Pushing image to
# <cache repo>:<key>" (the key a sha256 hex digest) while the build goes on: neither is the image's push.
_PUSH_RE = re.compile(r"\bPushing image to (\S+)")
_CACHE_REF_RE = re.compile(r":[0-9a-f]{64}$")


def event_phase(status: BuildStatus) -> str:
    """The BinderHub-style phase for a Build status."""
    return {
        BuildPhase.PENDING: WAITING,
        BuildPhase.RUNNING: BUILDING,
        BuildPhase.SUCCEEDED: BUILT,
        BuildPhase.FAILED: FAILED,
        BuildPhase.CANCELLED: FAILED,
    }[status.phase]


def phase_event(status: BuildStatus, name: str, pushing: bool = False) -> dict[str, Any]:
    """A phase event's data: `built` has the digest and image; `failed` the reason."""
    phase = event_phase(status)
    if phase == BUILDING and pushing:
        phase = PUSHING
    data: dict[str, Any] = {"phase": phase, "build": name, "buildPhase": status.phase.value}
    if phase == BUILT:
        data.update(digest=status.digest, image=status.image, message=f"built {status.image or ''}".strip())
    elif phase == FAILED:
        data["message"] = status.message or ("build was cancelled" if status.phase == BuildPhase.CANCELLED
                                             else "build failed")
    elif status.message:
        data["message"] = status.message
    return data


def is_push_line(line: str) -> bool:
    """Whether a Kaniko log line says the image is being pushed."""
    m = _PUSH_RE.search(line)
    return m is not None and not _CACHE_REF_RE.search(m.group(1))


def log_event(line: str) -> dict[str, Any]:
    return {"phase": "log", "message": line}


def parse_last_event_id(value: str | None) -> int:
    """The number of log lines the client already has (0 for a fresh stream or an id we did not issue)."""
    try:
        n = int((value or "").strip())
    except ValueError:
        return 0
    return max(n, 0)


def encode_sse(data: dict[str, Any], event_id: int | None = None, event: str | None = None) -> bytes:
    """One SSE message. JSON has no raw newlines, so the data fits one `data:` line."""
    out = []
    if event_id is not None:
        out.append(f"id: {event_id}")
    if event:
        out.append(f"event: {event}")
    out.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(out) + "\n\n").encode()


def encode_heartbeat() -> bytes:
    """An SSE comment: keeps proxies from closing an idle stream and lets clients notice a dead one."""
    return b": heartbeat\n\n"


def retry_hint(ms: int) -> bytes:
    """Tells EventSource clients how long to wait before reconnecting."""
    return f"retry: {ms}\n\n".encode()
