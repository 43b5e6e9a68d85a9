"""Operator settings for the hub, read from `HUB_*` environment variables and an optional values file.

Why a settings class next to traitlets: the chart's `hub.settings` values map one-to-one onto these fields
(mounted as YAML, path in `HUB_SETTINGS_FILE`), and pydantic validates them once at start-up with readable
errors, instead of a traitlets error deep inside a spawn. `jupyterhub_config.py` turns them into traitlets
config, so everything KubeSpawner users know (`c.KubeSpawner.*`) still works and can still be overridden.

Precedence, highest first: explicit init arguments, environment (`HUB_STORAGE__CAPACITY=20Gi`, nested with
`__`, complex values as JSON), the values file, defaults.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

SETTINGS_FILE_ENV = "HUB_SETTINGS_FILE"

# A Kubernetes resource quantity ("500m", "2Gi", "1.5", "10G").
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SLUG = re.compile(r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$")
# Longest namespace prefix that still leaves room for KubeSpawner's 48-character safe username slug
# inside the 63-character DNS label limit.
MAX_NAMESPACE_PREFIX = 63 - 48


def _check_quantity(value: str | None) -> str | None:
    if value is not None and not _QUANTITY.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)")
    return value


class ImageChoice(BaseModel):
    """One entry of the image drop-down offered inside every profile."""

    slug: str
    display_name: str
    image: str
    default: bool = False

    @field_validator("slug")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"image slug {v!r} must be lowercase letters, digits, '-' or '_'")
        return v


class Profile(BaseModel):
    """A server size. GPU profiles set `gpus` (limit on `gpu_resource`) and get a matching toleration."""

    slug: str
    display_name: str
    description: str = ""
    default: bool = False
    cpu_guarantee: float | None = None
    cpu_limit: float | None = None
    mem_guarantee: str | None = None
    mem_limit: str | None = None
    gpus: int = Field(default=0, ge=0)
    gpu_resource: str = "nvidia.com/gpu"
    # Empty means: for a GPU profile, tolerate the usual `<gpu_resource>:NoSchedule` taint.
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    node_selector: dict[str, str] = Field(default_factory=dict)
    image: str | None = None
    # Escape hatch with KubeSpawner's own meaning (applied last).
    kubespawner_override: dict[str, Any] = Field(default_factory=dict)

    @field_validator("slug")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"profile slug {v!r} must be lowercase letters, digits, '-' or '_'")
        return v

    @field_validator("mem_guarantee", "mem_limit")
    @classmethod
    def _mem(cls, v: str | None) -> str | None:
        return _check_quantity(v)


class StorageSettings(BaseModel):
    """The per-user workspace volume: one RWX claim per user, kept across server restarts."""

    # None: the cluster's default StorageClass. For RWX pick NFS, CephFS, EFS, Filestore, local-path shared...
    storage_class: str | None = None
    capacity: str = "10Gi"
    access_modes: list[str] = Field(default_factory=lambda: ["ReadWriteMany"])
    pvc_name: str = "workspace"
    home_dir: str = "/home/jovyan"

    @field_validator("capacity")
    @classmethod
    def _capacity(cls, v: str) -> str:
        return _check_quantity(v) or v

    @field_validator("pvc_name")
    @classmethod
    def _pvc_name(cls, v: str) -> str:
        if not _DNS_LABEL.match(v) or len(v) > 63:
            raise ValueError(f"pvc_name {v!r} must be a DNS-1123 label")
        return v


class LimitRangeSettings(BaseModel):
    """Container defaults, so pods without explicit resources (build Jobs too) still fit the quota."""

    default_cpu: str = "1"
    default_memory: str = "2Gi"
    default_request_cpu: str = "100m"
    default_request_memory: str = "256Mi"
    max_cpu: str | None = None
    max_memory: str | None = None

    @field_validator("*")
    @classmethod
    def _quantities(cls, v: str | None) -> str | None:
        return _check_quantity(v)


class PodSecuritySettings(BaseModel):
    """Pod Security Admission levels for user namespaces (baseline lets Kaniko run as root, unprivileged)."""

    enforce: Literal["privileged", "baseline", "restricted"] = "baseline"
    enforce_version: str = "latest"
    warn: Literal["privileged", "baseline", "restricted"] | None = "restricted"
    audit: Literal["privileged", "baseline", "restricted"] | None = None


class DefaultPodDefault(BaseModel):
    """A PodDefault created in every user namespace; `spec` is Kubeflow's PodDefault spec, verbatim."""

    name: str
    spec: dict[str, Any]
    # Pre-check it on the spawn form.
    preselected: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _DNS_LABEL.match(v) or len(v) > 63:
            raise ValueError(f"PodDefault name {v!r} must be a DNS-1123 label")
        return v


class BuilderSettings(BaseModel):
    """Where notebooks find the builder; when `url` is set a default `builder` PodDefault injects it."""

    url: str | None = None
    registry: str | None = None
    poddefault_name: str = "builder"


class CullSettings(BaseModel):
    """jupyterhub-idle-culler, run by the hub as a managed service."""

    enabled: bool = True
    timeout: int = Field(default=3600, gt=0)
    every: int = Field(default=300, gt=0)
    max_age: int = Field(default=0, ge=0)
    concurrency: int = Field(default=10, gt=0)
    cull_users: bool = False


class HubSettings(BaseSettings):
    """Everything an operator sets for the hub; field names are the chart's `hub.settings` keys."""

    model_config = SettingsConfigDict(
        env_prefix="HUB_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    # -- authentication ----------------------------------------------------------------------------------
    # "shared-password" ships with JupyterHub: any username, one shared password, no external IdP needed.
    # Production: any authenticator class or entry-point name, configured through `authenticator_config`.
    authenticator_class: str = "shared-password"
    shared_password: SecretStr | None = None
    admin_password: SecretStr | None = None
    admin_users: list[str] = Field(default_factory=list)
    allowed_users: list[str] = Field(default_factory=list)
    allow_all: bool = True
    authenticator_config: dict[str, Any] = Field(default_factory=dict)

    # -- hub process ---------------------------------------------------------------------------------------
    bind_url: str = "http://:8000"
    base_url: str = "/"
    hub_bind_url: str = "http://0.0.0.0:8081"
    hub_connect_url: str | None = None
    db_url: str = "sqlite:///jupyterhub.sqlite"
    # A sqlite database in write-ahead-log mode (hub_config/database.py); false on a network file system.
    db_sqlite_wal: bool = True
    cookie_secret_file: str | None = None
    # False when configurable-http-proxy runs as its own pod (then `proxy_api_url` points at it).
    proxy_should_start: bool = True
    proxy_api_url: str | None = None
    log_level: str = "INFO"

    # -- spawning -------------------------------------------------------------------------------------------
    namespace_prefix: str = "nbp-"
    image: str = "quay.io/jupyter/base-notebook:latest"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    images: list[ImageChoice] = Field(default_factory=list)
    profiles: list[Profile] = Field(
        default_factory=lambda: [
            Profile(slug="small", display_name="Small (1 CPU, 2 GiB)", default=True,
                    cpu_guarantee=0.1, cpu_limit=1, mem_guarantee="512Mi", mem_limit="2Gi"),
        ]
    )
    start_timeout: int = Field(default=300, gt=0)
    http_timeout: int = Field(default=120, gt=0)
    default_url: str = "/lab"
    notebook_service_account: str = "notebook"
    # Dry-run every pod through admission before creating it. Not needed for readable refusals (a refused
    # create gives the same message); it costs one more admission round trip per start.
    preflight_dry_run: bool = False
    # A PodDefault created a moment ago may not be in the webhook's watch cache yet. For this many seconds
    # after provisioning applied the namespace's PodDefaults, a start dry-runs its pod first, repeating until
    # every matching PodDefault shows up as applied (at most this long). 0: never waits.
    preflight_webhook_wait: float = Field(default=5.0, ge=0)
    # The namespace is provisioned when the user logs in; a start within this many seconds of that (and
    # before any stop) does not provision again. 0: every start provisions fully.
    provision_fresh_seconds: float = Field(default=300.0, ge=0)
    # Start requests past authentication at once, the rest wait their turn in arrival order
    # (hub_config/spawn_gate.py). 0: no gate, every request's setup runs interleaved with all others.
    spawn_setup_concurrency: int = Field(default=10, ge=0)
    # A start holds its place until its pod create is sent, its request ends, or this many seconds pass.
    spawn_setup_hold_max: float = Field(default=2.0, gt=0)

    # Every this many seconds the hub collects garbage created since the last pass and freezes the survivors,
    # so the collector's automatic full collections skip its long-lived objects (hub_config/gc_policy.py).
    # 0: CPython's default collection only.
    gc_freeze_seconds: float = Field(default=60.0, ge=0)
    # Every this many passes (when no start or stop is pending) one full collection, which also reclaims
    # cycles among frozen objects. 0: never.
    gc_full_every: int = Field(default=60, ge=0)

    # -- per-user namespace ----------------------------------------------------------------------------------
    quota: dict[str, str] = Field(
        default_factory=lambda: {
            "requests.cpu": "4", "requests.memory": "16Gi", "limits.cpu": "8", "limits.memory": "32Gi",
            "requests.storage": "100Gi", "persistentvolumeclaims": "10", "pods": "20",
        }
    )
    limit_range: LimitRangeSettings = Field(default_factory=LimitRangeSettings)
    pod_security: PodSecuritySettings = Field(default_factory=PodSecuritySettings)
    namespace_labels: dict[str, str] = Field(default_factory=dict)
    namespace_annotations: dict[str, str] = Field(default_factory=dict)
    default_poddefaults: list[DefaultPodDefault] = Field(default_factory=list)
    # Names of PodDefaults (made by operators with kubectl, not by us) to pre-check on the form.
    preselected_configurations: list[str] = Field(default_factory=list)
    builder: BuilderSettings = Field(default_factory=BuilderSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    cull: CullSettings = Field(default_factory=CullSettings)

    @field_validator("namespace_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if len(v) > MAX_NAMESPACE_PREFIX:
            raise ValueError(f"namespace_prefix {v!r} is longer than {MAX_NAMESPACE_PREFIX} characters")
        if v and not re.match(r"^[a-z]([-a-z0-9]*)$", v):
            raise ValueError(f"namespace_prefix {v!r} must start with a letter: lowercase letters, digits, '-'")
        return v

    @field_validator("quota")
    @classmethod
    def _quota(cls, v: dict[str, str]) -> dict[str, str]:
        for key, qty in v.items():
            if not _check_quantity(str(qty)):
                raise ValueError(f"quota {key}: {qty!r} is not a quantity")
        return {k: str(q) for k, q in v.items()}

    @field_validator("shared_password")
    @classmethod
    def _password(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 8:
            raise ValueError("shared_password must be at least 8 characters (JupyterHub's own rule)")
        return v

    @model_validator(mode="after")
    def _profiles(self) -> HubSettings:
        slugs = [p.slug for p in self.profiles]
        if len(set(slugs)) != len(slugs):
            raise ValueError(f"profile slugs must be unique, got {slugs}")
        if sum(p.default for p in self.profiles) > 1:
            raise ValueError("at most one profile may be the default")
        names = [d.name for d in self.default_poddefaults]
        if len(set(names)) != len(names):
            raise ValueError(f"default_poddefaults names must be unique, got {names}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Adds the mounted values file (YAML or JSON) below the environment."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get(SETTINGS_FILE_ENV)
        if path:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{SETTINGS_FILE_ENV}={path} does not exist")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> HubSettings:
    """Reads settings from the environment and the values file (one call at hub start-up)."""
    return HubSettings(**overrides)
