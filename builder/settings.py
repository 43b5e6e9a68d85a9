"""Builder configuration: environment variables prefixed `BUILDER_`, one-to-one with the chart's values.

Lists are given as JSON in the environment (`BUILDER_INSECURE_REGISTRIES='["registry.local:5000"]'`), which is
how pydantic-settings reads complex fields.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator may tune; defaults suit the local cluster from `hack/`."""

    model_config = SettingsConfigDict(env_prefix="BUILDER_", extra="ignore")

    # Where images go. `registry` fills `{registry}` in the allow-list templates.
    registry: str = "registry.local:5000"
    # Registries spoken to over plain HTTP (the local one); Kaniko gets `--insecure*` flags only for these.
    insecure_registries: list[str] = Field(default_factory=list)
    # Repository prefixes a namespace may push to; `{registry}` and `{namespace}` are substituted.
    # A destination matches a prefix only on a path-component boundary (`reg/ns` does not allow `reg/ns-evil`).
    allowed_destinations: list[str] = Field(default_factory=lambda: ["{registry}/{namespace}"])
    # Kaniko's layer cache repository, derived from the destination repository so it stays inside the prefix.
    cache_repo_template: str = "{repository}/cache"

    kaniko_image: str = "registry.local:5000/notebook-platform/kaniko-executor:v1"
    kaniko_image_pull_policy: str = "IfNotPresent"
    # Extra executor flags every build gets (e.g. `--snapshot-mode=redo`); users cannot add flags.
    kaniko_extra_args: list[str] = Field(default_factory=lambda: ["--snapshot-mode=redo", "--push-retry=2"])

    active_deadline_seconds: int = Field(default=3600, ge=1)
    ttl_seconds_after_finished: int = Field(default=86400, ge=0)
    cpu_request: str = "500m"
    memory_request: str = "1Gi"
    cpu_limit: str = "2"
    memory_limit: str = "4Gi"
    ephemeral_storage_limit: str | None = "20Gi"

    # Builds that may be Pending or Running at once in one namespace; more get 429.
    max_concurrent_builds_per_namespace: int = Field(default=3, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    auth_cache_ttl_seconds: float = Field(default=10.0, ge=0)
    auth_cache_max_entries: int = Field(default=4096, ge=1)
    # A service account may only build in its own namespace, whatever RBAC says elsewhere.
    restrict_service_accounts_to_own_namespace: bool = True

    # None means in-cluster configuration (the pod's own service account).
    kubeconfig: Path | None = None
    # Each log stream holds two apiserver connections (log follow + pod watch) for its whole life.
    kube_connection_pool: int = Field(default=256, ge=8)
    kube_request_timeout_seconds: float = Field(default=20.0, gt=0)

    # Serve reads (list, get, the reuse lookup and the namespace limit) from a watch of every build Job and
    # pod instead of asking the apiserver each time. After creating a Job, wait at most this long for the watch
    # to deliver it before counting from the apiserver instead.
    watch_cache: bool = True
    cache_wait_seconds: float = Field(default=2.0, gt=0)

    # Before creating a build, ask a small pod in the caller's namespace that mounts the claim read-only whether
    # the context folder and Dockerfile resolve inside the volume (a symlink out of it is then a 400). One
    # agent per claim, started on its first build, gone after `volume_agent_idle_seconds` without questions.
    # Needs the watch cache. An agent not Ready within `volume_agent_wait_seconds` skips the check (the
    # kubelet's subPath check still confines the build).
    volume_agent: bool = True
    volume_agent_image: str = "registry.local:5000/notebook-platform/builder:latest"
    volume_agent_image_pull_policy: str = "IfNotPresent"
    volume_agent_idle_seconds: float = Field(default=900.0, gt=0)
    volume_agent_wait_seconds: float = Field(default=30.0, gt=0)
    volume_agent_timeout_seconds: float = Field(default=2.0, gt=0)

    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # Serve HTTPS when both are set (callers send bearer tokens); files are re-read when they change.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_reload_seconds: float = Field(default=30.0, gt=0)
    host: str = "0.0.0.0"
    port: int = 8080
    log_level: str = "INFO"

    def allowed_prefixes(self, namespace: str) -> list[str]:
        """The allow-list templates filled in for one namespace."""
        return [t.format(registry=self.registry, namespace=namespace) for t in self.allowed_destinations]
