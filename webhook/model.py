"""Types at the webhook's edges: AdmissionReview v1 in and out, and the shapes of Pods and PodDefaults.

No I/O. The pure core (`mutate.py`) works on plain dicts as the apiserver sends them; the shape models here
are checked first so that hostile or broken input becomes a clear 400 (or a PodDefault that is skipped
with a logged reason) instead of a TypeError deep in the merge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webhook import constants as c
from webhook.selector import NOTHING, Selector, compile_selector

# --- AdmissionReview (admission.k8s.io/v1) ---------------------------------------------------------------


class _Open(BaseModel):
    """Kubernetes adds fields over time; unknown ones are kept, never a reason to reject."""

    model_config = ConfigDict(extra="allow")


class GroupVersionKind(_Open):
    group: str = ""
    version: str
    kind: str


class GroupVersionResource(_Open):
    group: str = ""
    version: str
    resource: str


class UserInfo(_Open):
    username: str | None = None
    uid: str | None = None
    groups: list[str] | None = None


class AdmissionRequest(_Open):
    uid: str = Field(min_length=1, description="Echoed in the response; the apiserver matches on it.")
    kind: GroupVersionKind
    resource: GroupVersionResource
    subResource: str | None = None
    requestKind: GroupVersionKind | None = None
    requestResource: GroupVersionResource | None = None
    name: str | None = None
    namespace: str | None = None
    operation: str
    userInfo: UserInfo | None = None
    object: dict[str, Any] | None = None
    oldObject: dict[str, Any] | None = None
    dryRun: bool | None = None
    options: dict[str, Any] | None = None


class Status(BaseModel):
    """The subset of metav1.Status the apiserver shows to the client when a request is denied."""

    code: int | None = None
    message: str | None = None
    reason: str | None = None


class AdmissionResponse(BaseModel):
    uid: str
    allowed: bool
    status: Status | None = None
    patch: str | None = Field(default=None, description="base64 of an RFC 6902 JSON Patch")
    patchType: Literal["JSONPatch"] | None = None
    warnings: list[str] | None = None
    auditAnnotations: dict[str, str] | None = None


class AdmissionReview(BaseModel):
    apiVersion: Literal["admission.k8s.io/v1"] = c.ADMISSION_API_VERSION
    kind: Literal["AdmissionReview"] = c.ADMISSION_KIND
    request: AdmissionRequest | None = None
    response: AdmissionResponse | None = None


POD_RESOURCE = ("", "v1", "pods")


def is_pod_request(req: AdmissionRequest) -> bool:
    """True for the pod resource itself (not subresources such as pods/exec or pods/binding)."""
    r = req.resource
    return (r.group, r.version, r.resource) == POD_RESOURCE and not req.subResource


# --- Shapes the core relies on ------------------------------------------------------------------------


class _Named(_Open):
    name: str


class _VolumeMount(_Open):
    name: str
    mountPath: str


class _Container(_Open):
    name: str
    env: list[_Named] | None = None
    envFrom: list[dict[str, Any]] | None = None
    volumeMounts: list[_VolumeMount] | None = None
    command: list[str] | None = None
    args: list[str] | None = None


class _Meta(_Open):
    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    resourceVersion: str | None = None


class _PodSpec(_Open):
    containers: list[_Container] = Field(min_length=1)
    initContainers: list[_Container] | None = None
    volumes: list[_Named] | None = None
    tolerations: list[dict[str, Any]] | None = None
    imagePullSecrets: list[dict[str, Any]] | None = None
    serviceAccountName: str | None = None
    automountServiceAccountToken: bool | None = None


class PodShape(_Open):
    """What `apply_poddefaults` needs of a pod; anything else is carried through untouched."""

    metadata: _Meta = Field(default_factory=_Meta)
    spec: _PodSpec


class _PodDefaultSpec(_Open):
    selector: dict[str, Any]
    desc: str | None = None
    serviceAccountName: str | None = None
    automountServiceAccountToken: bool | None = None
    env: list[_Named] | None = None
    envFrom: list[dict[str, Any]] | None = None
    volumes: list[_Named] | None = None
    volumeMounts: list[_VolumeMount] | None = None
    annotations: dict[str, str] | None = None
    labels: dict[str, str] | None = None
    tolerations: list[dict[str, Any]] | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    imagePullSecrets: list[_Named] | None = None
    initContainers: list[_Named] | None = None
    sidecars: list[_Named] | None = None


class PodDefaultShape(_Open):
    metadata: _Meta
    spec: _PodDefaultSpec


def shape_error(model: type[BaseModel], obj: Any) -> str | None:
    """None if `obj` has the shape, else a one-line reason naming the first offending field."""
    try:
        model.model_validate(obj)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"
    return None


# --- A PodDefault ready for admission -----------------------------------------------------------------


@dataclass(frozen=True)
class CompiledPodDefault:
    """A PodDefault as the API returned it, with its selector compiled once per resourceVersion.

    `error` is set when the object has a shape the webhook cannot apply (possible only with a CRD that
    does not validate, such as Kubeflow's older ones); such a PodDefault selects no pod. Canonical forms
    of its entries (see `normalize.py`) are memoised here, since the object never changes.
    """

    obj: dict[str, Any]
    selector: Selector
    error: str | None = None
    sidecar_names: frozenset[str] = field(default_factory=frozenset)
    name: str = ""
    namespace: str = ""
    resource_version: str = ""
    _canonical: dict[tuple[str, int], Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.obj.get("spec")
        return spec if isinstance(spec, dict) else {}

    def matches(self, labels: dict[str, str]) -> bool:
        return self.error is None and self.selector.matches(labels)

    def canonical(self, field_name: str, index: int, canon: Callable[[Any], Any]) -> Any:
        """`canon(spec[field_name][index])`, computed once."""
        key = (field_name, index)
        if key not in self._canonical:
            self._canonical[key] = canon(self.spec[field_name][index])
        return self._canonical[key]


def compile_poddefault(obj: dict[str, Any]) -> CompiledPodDefault:
    """Checks a PodDefault's shape and compiles its selector; never raises."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
    rv = str(meta.get("resourceVersion") or "")
    problem = shape_error(PodDefaultShape, obj)
    if problem is not None:
        return CompiledPodDefault(obj, NOTHING, error=f"invalid PodDefault: {problem}", name=name,
                                  namespace=namespace, resource_version=rv)
    spec = obj["spec"]
    selector = compile_selector(spec.get("selector"))
    sidecars = frozenset(s["name"] for s in spec.get("sidecars") or [])
    error = f"invalid selector: {selector.error}" if selector.error else None
    return CompiledPodDefault(obj, selector, error=error, sidecar_names=sidecars, name=name, namespace=namespace,
                              resource_version=rv)
