"""Build request and Build resource types (pydantic, so the OpenAPI document is exact).

Structure is checked here (types, lengths, names, unknown fields -> 422). Checks that need the namespace or the
settings (destination allow-list) or that the issue wants as 400 (paths) live in `validate.py`.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from .constants import API_GROUP_VERSION, KIND, LIST_KIND

# DNS-1123 subdomain: names of PVCs, Secrets, ServiceAccounts.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ObjectName = Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN, max_length=253)]
ContentHash = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
# Paths are length-limited here; their shape (no `..`, not absolute) is a 400 from validate.py.
RelPath = Annotated[str, StringConstraints(max_length=1024)]
BuildArgName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
LabelKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", max_length=253)]
# No NUL/newlines: values end up as argv entries and in annotations, where neither is wanted.
SafeValue = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x08\x0a-\x1f\x7f]*$", max_length=4096)]
StageName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128)]


class _Strict(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are refused (no smuggled pod spec)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel)


class ContextRef(_Strict):
    """A folder of a workspace volume in the caller's namespace."""

    pvc: ObjectName = Field(description="PersistentVolumeClaim holding the build context.")
    path: RelPath = Field(description="Folder relative to the volume root ('' or '.' for the root).")


class BuildRequest(_Strict):
    """What a caller may ask for. Anything that shapes the pod beyond this is the operator's settings."""

    context: ContextRef
    dockerfile: RelPath = Field(default="Dockerfile", description="Path relative to the context folder.")
    destination: Annotated[str, StringConstraints(max_length=512)] = Field(
        description="Image reference to push, e.g. registry/namespace/name:tag."
    )
    build_args: dict[BuildArgName, SafeValue] = Field(default_factory=dict, max_length=64)
    target: StageName | None = None
    labels: dict[LabelKey, SafeValue] = Field(default_factory=dict, max_length=64)
    cache: bool = True
    push_secret: ObjectName | None = Field(
        default=None, description="kubernetes.io/dockerconfigjson Secret used to push."
    )
    service_account_name: ObjectName | None = None
    content_hash: ContentHash | None = Field(
        default=None, description="sha256 of the context (see builder.client); enables reuse of a finished build."
    )


class BuildPhase(enum.StrEnum):
    """Derived from the Job and its pod; never stored except Cancelled (which no Kubernetes status says)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def finished(self) -> bool:
        return self in (BuildPhase.SUCCEEDED, BuildPhase.FAILED, BuildPhase.CANCELLED)


class BuildStatus(_Strict):
    phase: BuildPhase
    message: str = ""
    digest: str | None = None
    image: str | None = Field(default=None, description="destination repository @ digest, once built.")
    pod_name: str | None = None
    start_time: str | None = None
    completion_time: str | None = None


class BuildMetadata(_Strict):
    name: str
    namespace: str
    uid: str | None = None
    creation_timestamp: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)


class Build(_Strict):
    """The API's view of one Job."""

    api_version: str = API_GROUP_VERSION
    kind: str = KIND
    metadata: BuildMetadata
    spec: BuildRequest
    status: BuildStatus


class BuildList(_Strict):
    api_version: str = API_GROUP_VERSION
    kind: str = LIST_KIND
    items: list[Build]


class ErrorResponse(BaseModel):
    """Every refusal: `{"detail": "..."}` naming the reason or field."""

    detail: str
